#!/usr/bin/env bash
# Builds cityhub, serves the demo city on a free loopback port with a fresh
# data directory, waits until it is ready, then checks in headless Chromium
# that GraphiQL loads from the binary alone (no request to any other host)
# and answers the demo's cross-domain query.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

go build -o "$tmp/cityhub" ./cmd/cityhub
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$tmp/cityhub" serve --listen "127.0.0.1:$port" --data-dir "$tmp/data" >"$tmp/cityhub.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$tmp/cityhub.log"; echo "cityhub exited"; exit 1; fi
  sleep 1
done
curl -fsS "http://127.0.0.1:$port/readyz" || { cat "$tmp/cityhub.log"; exit 1; }
echo
(cd scripts/graphiql-check && npm ci --no-audit --no-fund >/dev/null)
node scripts/graphiql-check/check.mjs "http://127.0.0.1:$port/" --screenshot "${GRAPHIQL_SCREENSHOT:-$tmp/graphiql.png}"
