#!/usr/bin/env bash
# Cluster benchmark (issue 14): the load generator against two pairpad instances
# on one Redis, each session's clients all on instance 1 ("one instance") and then
# split, every other client on instance 2 ("split over two": each relayed edit
# crosses instances through Redis). Reports relay latency p50/p99 and the CPU of
# each instance and of redis-server over the edit window. Measures, asserts
# nothing. Starts its own redis-server (unix socket, AOF on, appendfsync always)
# and pairpad instances; needs target/release/pairpad and redis-server.
#
#   bench/cluster.sh                     # 50 sessions x 4 clients x 5 edits/s x 20 s
#   SESSIONS=100 DURATION=30 bench/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PAIRPAD_BIN:-target/release/pairpad}
SESSIONS=${SESSIONS:-50}
CLIENTS=${CLIENTS:-4}
RATE=${RATE:-5}
DURATION=${DURATION:-20}
OUT=${OUT:-bench/results/$(date +%Y%m%d-%H%M%S)-cluster}
mkdir -p "$OUT"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

redis-server --port 0 --unixsocket "$work/redis.sock" --unixsocketperm 700 --save '' \
  --appendonly yes --appendfsync always --dir "$work" --daemonize no \
  --logfile "$work/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
for _ in $(seq 100); do [ -S "$work/redis.sock" ] && break; sleep 0.05; done

free_port() { node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
start_instance() { # $1 = name; prints "pid port"
  local port
  port=$(free_port)
  mkdir -p "$work/$1"
  "$BIN" --addr "127.0.0.1:$port" --data-dir "$work/$1" --site-root target/site \
    --redis-url "redis+unix://$work/redis.sock" --create-limit 0 --ip-connection-limit 0 \
    --session-ip-connection-limit 0 --log warn >"$OUT/$1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break
    sleep 0.05
  done
  echo "$pid $port"
}
read -r one_pid one_port < <(start_instance one)
pids+=("$one_pid")
read -r two_pid two_port < <(start_instance two)
pids+=("$two_pid")

common=(--target pairpad --port "$one_port" --sessions "$SESSIONS" --clients "$CLIENTS"
  --rate "$RATE" --duration "$DURATION" --server-pid "$one_pid" --watch-pids "$two_pid,$redis_pid" --quiet)
echo "== one instance (instance 2 and redis-server watched) =="
node bench/loadgen.mjs "${common[@]}" --label "one instance" --json "$OUT/one.json"
echo
echo "== split over two instances =="
node bench/loadgen.mjs "${common[@]}" --split-port "$two_port" --label "split over two" --json "$OUT/split.json"
echo
echo "results in $OUT (pid $one_pid = instance 1, $two_pid = instance 2, $redis_pid = redis-server)"
