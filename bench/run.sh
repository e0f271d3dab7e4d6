#!/usr/bin/env bash
# Benchmark runner: pairpad vs the reference y-websocket server (@y/websocket-server),
# same scenarios, same machine, one run. Each scenario gets a freshly started server
# (and a fresh data dir for pairpad), so peak RSS (VmHWM) belongs to that scenario
# alone; only one server runs at a time. Results: bench/results/<timestamp>/
# (one JSON per scenario and target, server logs, summary.md) and a side-by-side
# table on stdout.
#
# Usage: bench/run.sh                 (from anywhere; needs target/release/pairpad)
# Environment knobs (defaults in brackets):
#   TARGETS        targets to run                        ["reference pairpad"]
#   SCENARIOS      scenarios to run                      ["light heavy stress idle"]
#   LIGHT          sessions x clients x edits/s x secs   [50x4x5x20]
#   HEAVY          the heaviest load one generator thread sustains on a 2-core
#                  machine with room to spare            [100x4x5x20]
#   STRESS         past that: 2 generator threads, which then compete with the
#                  server for the 2 cores; read its latencies with that in mind
#                                                        [200x4x5x20]
#   STRESS_WORKERS generator threads for STRESS          [2]
#   IDLE           idle sessions x clients               [2500x4]
#   NOISE_LIMIT    re-run a load scenario (at most twice more) when other
#                  processes used more than this % of a core during it  [25]
#   PAIRPAD_BIN    pairpad binary                        [target/release/pairpad]
#   PAIRPAD_ARGS   extra pairpad flags                   []
#   REF_PORT / PAIRPAD_PORT                              [18234 / 18235]
#   QUIET_WAIT     before each scenario, wait up to this many seconds for the
#                  machine to be idle (other work skews every number)  [900]
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGETS=${TARGETS:-"reference pairpad"}
SCENARIOS=${SCENARIOS:-"light heavy stress idle"}
LIGHT=${LIGHT:-50x4x5x20}
HEAVY=${HEAVY:-100x4x5x20}
STRESS=${STRESS:-200x4x5x20}
STRESS_WORKERS=${STRESS_WORKERS:-2}
NOISE_LIMIT=${NOISE_LIMIT:-25}
IDLE=${IDLE:-2500x4}
PAIRPAD_BIN=${PAIRPAD_BIN:-target/release/pairpad}
PAIRPAD_ARGS=${PAIRPAD_ARGS:-}
REF_PORT=${REF_PORT:-18234}
PAIRPAD_PORT=${PAIRPAD_PORT:-18235}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-bench/results/$STAMP}
mkdir -p "$OUT"

log() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

for t in $TARGETS; do
  case $t in reference|pairpad) ;; *) die "unknown target $t" ;; esac
done
if [[ " $TARGETS " == *" pairpad "* ]] && [[ ! -x $PAIRPAD_BIN ]]; then
  die "$PAIRPAD_BIN not found (build it first, or run with TARGETS=reference)"
fi
REF_SERVER=node_modules/@y/websocket-server/src/server.js
[[ -f $REF_SERVER ]] || die "$REF_SERVER not found (npm install first)"

# The idle scenario holds every connection twice on this machine (client and server
# side, separate processes); each process needs more descriptors than that.
idle_conns=$(( ${IDLE%x*} * ${IDLE#*x} ))
if (( $(ulimit -n) < idle_conns + 500 )); then
  ulimit -n $(( idle_conns + 1000 )) 2>/dev/null || die "ulimit -n is $(ulimit -n); the idle scenario needs > $((idle_conns + 500))"
fi

SERVER_PID=""
DATA_DIR=""
stop_server() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do            # up to 10 s for a graceful exit
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      log "server $SERVER_PID did not exit within 10 s of SIGTERM; sending SIGKILL"
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
  if [[ -n $DATA_DIR ]]; then rm -rf "$DATA_DIR"; DATA_DIR=""; fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# Busy share of all CPUs (percent) over a 2 s window, from /proc/stat.
busy_percent() {
  local a b
  a=$(head -1 /proc/stat); sleep 2; b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    n = split(a, x, " "); split(b, y, " "); tot = 0; idle = 0
    for (i = 2; i <= n; i++) tot += y[i] - x[i]
    idle = (y[5] - x[5]) + (y[6] - x[6])
    printf "%d", (tot > 0) ? 100 * (tot - idle) / tot : 0 }'
}

# Waits (bounded by QUIET_WAIT seconds) until the machine is nearly idle.
wait_quiet() {
  local deadline=$(( SECONDS + ${QUIET_WAIT:-900} )) busy
  while :; do
    busy=$(busy_percent)
    if (( busy < 10 )); then
      busy=$(busy_percent)                # twice in a row
      if (( busy < 10 )); then return 0; fi
    fi
    if (( SECONDS >= deadline )); then
      log "WARNING: machine still ${busy}% busy after waiting ${QUIET_WAIT:-900} s; running anyway (see 'other processes' CPU' in the table)"
      return 0
    fi
    log "machine ${busy}% busy with other work; waiting for it to calm down"
    sleep 10
  done
}

port_of() { if [[ $1 == pairpad ]]; then echo "$PAIRPAD_PORT"; else echo "$REF_PORT"; fi; }

# start_server TARGET LOGFILE: starts the server in the background, waits (bounded)
# until it answers HTTP.
start_server() {
  local target=$1 logfile=$2 port url
  port=$(port_of "$target")
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
    die "something already listens on 127.0.0.1:$port"
  fi
  if [[ $target == pairpad ]]; then
    DATA_DIR=$(mktemp -d /tmp/pairpad-bench-XXXXXX)
    # shellcheck disable=SC2086
    "$PAIRPAD_BIN" --addr "127.0.0.1:$port" --data-dir "$DATA_DIR" --create-limit 0 \
      --ip-connection-limit 0 --site-root target/site --log warn $PAIRPAD_ARGS >"$logfile" 2>&1 &
    url="http://127.0.0.1:$port/api/health"
  else
    HOST=127.0.0.1 PORT=$port node "$REF_SERVER" >"$logfile" 2>&1 &
    url="http://127.0.0.1:$port/"
  fi
  SERVER_PID=$!
  for _ in $(seq 1 200); do               # up to 20 s to come up
    if curl -s -o /dev/null --max-time 1 "$url"; then
      log "$target up (pid $SERVER_PID, port $port)"
      sleep 1                             # let start-up allocations settle before the baseline
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$logfile" >&2; die "$target exited during start-up"; }
    sleep 0.1
  done
  die "$target did not answer $url within 20 s"
}

# run_one SCENARIO TARGET
run_one() {
  local scenario=$1 target=$2 port json logfile spec r c e d workers status=0
  port=$(port_of "$target")
  json="$OUT/$scenario-$target.json"
  logfile="$OUT/$scenario-$target.server.log"
  rm -f "$json.error"
  wait_quiet
  start_server "$target" "$logfile"
  log "$scenario against $target"
  case $scenario in
    light|heavy|stress)
      case $scenario in
        light) spec=$LIGHT; workers=1 ;;
        heavy) spec=$HEAVY; workers=1 ;;
        stress) spec=$STRESS; workers=$STRESS_WORKERS ;;
      esac
      IFS=x read -r r c e d <<<"$spec"
      timeout $(( d + 300 )) node bench/loadgen.mjs --target "$target" --port "$port" --server-pid "$SERVER_PID" \
        --sessions "$r" --clients "$c" --rate "$e" --duration "$d" --workers "$workers" \
        --label "$scenario ${r}x${c}x${e}/s ${d}s" --json "$json" --quiet || status=$?
      ;;
    idle)
      IFS=x read -r r c <<<"$IDLE"
      timeout 900 node bench/idle.mjs --target "$target" --port "$port" --server-pid "$SERVER_PID" \
        --sessions "$r" --clients "$c" --label "idle ${r}x${c}" --json "$json" --quiet || status=$?
      ;;
  esac
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "WARNING: $target exited during $scenario"
    echo "{\"target\":\"$target\",\"scenario\":\"$scenario\",\"error\":\"server exited during the run\"}" >"$json.error"
  fi
  stop_server
  if (( status != 0 )); then
    log "WARNING: $scenario against $target failed (exit $status)"
    echo "{\"target\":\"$target\",\"scenario\":\"$scenario\",\"error\":\"benchmark exited with status $status\"}" >"$json.error"
  fi
  sleep 2                                 # let sockets in TIME_WAIT and the CPU calm down
}

log "results in $OUT; load average $(cut -d' ' -f1-3 /proc/loadavg)"
{
  echo "date: $(date -Is)"
  echo "host: $(nproc) CPUs, $(awk '/MemTotal/{printf "%.0f MiB", $2/1024}' /proc/meminfo), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "node: $(node --version)"
  if [[ -x $PAIRPAD_BIN ]]; then echo "pairpad: $PAIRPAD_BIN ($(stat -c '%y' "$PAIRPAD_BIN"))"; fi
  echo "reference: @y/websocket-server $(node -p "require('./node_modules/@y/websocket-server/package.json').version")"
  echo "scenarios: light=$LIGHT heavy=$HEAVY stress=$STRESS (generator threads $STRESS_WORKERS) idle=$IDLE (RxCxE/sxD)"
} >"$OUT/env.txt"

# noisy JSON: true when other processes took more than NOISE_LIMIT % of a core
noisy() {
  node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    process.exit(r.machineCpu && r.machineCpu.othersPercent > Number(process.argv[2]) ? 0 : 1)' "$1" "$NOISE_LIMIT" 2>/dev/null
}

for scenario in $SCENARIOS; do
  case $scenario in light|heavy|stress|idle) ;; *) die "unknown scenario $scenario" ;; esac
  for target in $TARGETS; do
    for attempt in 1 2 3; do
      run_one "$scenario" "$target"
      json="$OUT/$scenario-$target.json"
      if [[ $scenario != idle && -f $json ]] && noisy "$json" && (( attempt < 3 )); then
        log "other processes used > ${NOISE_LIMIT}% of a core during $scenario/$target; running it again"
        mv "$json" "$OUT/$scenario-$target.noisy-$attempt.json"
        continue
      fi
      break
    done
  done
done

node bench/table.mjs "$OUT" | tee "$OUT/summary.md"
log "done: $OUT"
