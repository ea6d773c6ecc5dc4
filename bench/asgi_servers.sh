#!/usr/bin/env bash
# Uvicorn against Granian serving the same app, one worker each, loaded by wrk.
# Usage: bash bench/asgi_servers.sh   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
test -x .venv/bin/granian || .venv/bin/pip install -q granian
export TIMELINE_DATABASE_URL="sqlite:///$dir/store" TIMELINE_RUN_PROJECTIONS=true
.venv/bin/timeline seed >/dev/null
run() {  # name, command...
  local name=$1; shift
  "$@" >"$dir/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 50); do curl -sf http://127.0.0.1:8899/health >/dev/null && break; sleep 0.2; done
  for path in /health "/timeline?limit=20"; do
    wrk -t2 -c32 -d6s "http://127.0.0.1:8899$path" | awk -v n="$name" -v p="$path" \
      '/Requests\/sec/ {printf "%-8s %-22s %10s req/s\n", n, p, $2}'
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
for round in 1 2; do
  run uvicorn .venv/bin/uvicorn --factory service.http.asgi:app --port 8899 --log-level warning --no-access-log
  run granian .venv/bin/granian --interface asgi --factory --port 8899 --log-level warning service.http.asgi:app
done
rm -rf "$dir"
