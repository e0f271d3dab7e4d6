#!/usr/bin/env bash
# Starts the release server for the end-to-end suite on 127.0.0.1:$PAIRPAD_E2E_PORT
# with a fresh data directory, run from the repository root (Playwright's
# webServer does this). The binary and target/site are copied into a temporary
# directory first, so a rebuild during the run cannot pull files from under the
# tests; the directory is removed when the server exits. The server's output
# goes to $PAIRPAD_E2E_SERVER_LOG_FILE (the global teardown reads it), and to
# stdout as well when PAIRPAD_E2E_SERVER_LOG is set.
set -u
port="${PAIRPAD_E2E_PORT:-3917}"
log="${PAIRPAD_E2E_SERVER_LOG_FILE:-${TMPDIR:-/tmp}/pairpad-e2e-server-$port.log}"
bin=target/release/pairpad
site=target/site
for needed in "$bin" "$site/pkg/pairpad.wasm"; do
  if [ ! -e "$needed" ]; then
    echo "end2end: $needed is missing; build with: cargo leptos build --release" >&2
    exit 1
  fi
done
work="$(mktemp -d "${TMPDIR:-/tmp}/pairpad-e2e.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp "$bin" "$work/pairpad" && cp -a "$site" "$work/site" || exit 1
: > "$log"
# Straight to the file: no pipe that could die before the server's last words.
"$work/pairpad" --addr "127.0.0.1:$port" --data-dir "$work/data" --site-root "$work/site" --create-limit 0 \
  >> "$log" 2>&1 &
server=$!
if [ -n "${PAIRPAD_E2E_SERVER_LOG:-}" ]; then
  tail -n +1 -f --pid="$server" "$log" &
fi
# Pass SIGTERM/SIGINT on and wait for the graceful shutdown before cleaning up.
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"' TERM INT
wait "$server"
