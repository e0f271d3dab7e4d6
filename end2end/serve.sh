#!/usr/bin/env bash
# Starts the release server for the end-to-end suite on 127.0.0.1:$PAIRPAD_E2E_PORT
# with a fresh data directory, run from the repository root (Playwright's
# webServer does this). The data directory is removed when the server exits.
set -u
port="${PAIRPAD_E2E_PORT:-3917}"
bin=target/release/pairpad
if [ ! -x "$bin" ]; then
  echo "end2end: $bin is missing; build it with: cargo leptos build --release" >&2
  exit 1
fi
data="$(mktemp -d "${TMPDIR:-/tmp}/pairpad-e2e.XXXXXX")"
trap 'rm -rf "$data"' EXIT
"$bin" --addr "127.0.0.1:$port" --data-dir "$data" --site-root target/site --create-limit 0 &
server=$!
# Pass SIGTERM/SIGINT on and wait for the graceful shutdown before cleaning up.
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"' TERM INT
wait "$server"
