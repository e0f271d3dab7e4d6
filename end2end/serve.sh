#!/usr/bin/env bash
# Starts the release server for the end-to-end suite on 127.0.0.1:$PAIRPAD_E2E_PORT
# with a fresh data directory, run from the repository root (Playwright's
# webServer does this). The binary and target/site are copied into a temporary
# directory first, so a rebuild during the run cannot pull files from under the
# tests; the directory is removed when the server exits.
set -u
port="${PAIRPAD_E2E_PORT:-3917}"
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
"$work/pairpad" --addr "127.0.0.1:$port" --data-dir "$work/data" --site-root "$work/site" --create-limit 0 &
server=$!
# Pass SIGTERM/SIGINT on and wait for the graceful shutdown before cleaning up.
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"' TERM INT
wait "$server"
