#!/usr/bin/env bash
# Redis time per call of the fleet store's RECORD script (src/fleet/redis.rs), measured by
# redis-benchmark against a private redis-server and read from INFO commandstats:
#
#   benches/record-script.sh                       # the script as it is in the working tree
#   benches/record-script.sh HEAD~5                # ... and as it was at a revision, interleaved
#   MACHINES=1000 CALLS=30000 benches/record-script.sh HEAD~5
#
# Every call reports "now" for one of MACHINES random machines (redis-benchmark's
# __rand_int__), so calls merge into existing buckets the way a live fleet's do.
set -euo pipefail
cd "$(dirname "$0")/.."
MACHINES=${MACHINES:-10000}
CALLS=${CALLS:-30000}
ROUNDS=${ROUNDS:-2}

extract() { # $1: file text on stdin -> Lua (prelude + RECORD) on stdout
  python3 -c '
import sys
src, pre = sys.stdin.read(), open("src/store/redis.rs").read()
body = src[src.index("const RECORD: &str = r#\"") + len("const RECORD: &str = r#\""):]
body = body[:body.index("\"#;")]
pre = pre[pre.index("const LUA_PRELUDE"):]
pre = pre[pre.index("\"") + 1:]
print(pre[:pre.index("\";")] + "\n" + body)'
}

WORK=$(mktemp -d)
trap 'kill "${RPID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
extract <src/fleet/redis.rs >"$WORK/now.lua"
LABELS=(now)
if [ $# -gt 0 ]; then
  git show "$1:src/fleet/redis.rs" | extract >"$WORK/then.lua"
  LABELS=(then now)
fi
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
RPID=$!
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
NOW=$(( $(date +%s) * 1000 ))
REPORT='{"machine_id":"x","hostname":"bench.example","os":"Debian","kernel":"6.1","agent_version":"0.1.0","timestamp":"2026-01-01T00:00:00Z","uptime_secs":1,"cpu_percent":12.5,"cpu_cores":2,"load":[2.3,1.9,1.2],"memory":{"total_bytes":25276071936,"used_bytes":959315968},"swap":{"total_bytes":0,"used_bytes":0},"disks":[{"mount":"/","total_bytes":270553174016,"used_bytes":197484097536}],"network":{"rx_bytes":369256085,"tx_bytes":537595}}'
echo "RECORD script, $CALLS calls over $MACHINES machines, $ROUNDS rounds (µs of Redis time per call)"
for round in $(seq "$ROUNDS"); do
  for label in "${LABELS[@]}"; do
    redis-cli -p "$PORT" FLUSHALL >/dev/null
    SHA=$(redis-cli -p "$PORT" SCRIPT LOAD "$(cat "$WORK/$label.lua")")
    redis-cli -p "$PORT" CONFIG RESETSTAT >/dev/null
    redis-benchmark -p "$PORT" -n "$CALLS" -c 8 -r "$MACHINES" EVALSHA "$SHA" 6 \
      '{fleet}:m:@index' '{fleet}:m:__rand_int__' '{fleet}:m:@keys' '{fleet}:m:__rand_int__@raw' \
      '{fleet}:m:__rand_int__@1m' '{fleet}:m:__rand_int__@10m' __rand_int__ "$REPORT" "$NOW" bench \
      12.5 30.1 2.3 70.2 369256085 537595 0 3600000 720 60000 86400000 1440 600000 604800000 1008 \
      300000 604800000 >/dev/null 2>&1
    per=$(redis-cli -p "$PORT" INFO commandstats | grep -o 'cmdstat_evalsha:[^ ]*' | grep -o 'usec_per_call=[0-9.]*' | cut -d= -f2)
    echo "  round $round $label: $per"
  done
done
