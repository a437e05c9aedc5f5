#!/usr/bin/env bash
# Redis time per call of the fleet store's RECORD script (src/fleet/redis.rs), read from
# INFO commandstats of a private redis-server:
#
#   benches/record-script.sh                       # the script as it is in the working tree
#   benches/record-script.sh HEAD~5                # ... and as it was at a revision, interleaved
#   MACHINES=1000 EACH=20 ROUNDS=3 benches/record-script.sh HEAD~5
#
# The calls are what a live fleet sends: MACHINES machines reporting EACH times, 10 s apart,
# oldest first, sent with `redis-cli --pipe` (so the client's speed does not matter). A
# revision whose script takes 6 keys and 21 arguments (before the `@open` string) gets those.
set -euo pipefail
cd "$(dirname "$0")/.."
MACHINES=${MACHINES:-1000}
EACH=${EACH:-20}
ROUNDS=${ROUNDS:-2}

extract() { # $1: revision or "" (working tree) -> Lua (prelude + helpers + RECORD) on stdout
  local src pre
  if [ -n "$1" ]; then src=$(git show "$1:src/fleet/redis.rs"); pre=$(git show "$1:src/store/redis.rs")
  else src=$(cat src/fleet/redis.rs); pre=$(cat src/store/redis.rs); fi
  SRC="$src" PRE="$pre" python3 -c '
import os
src, pre = os.environ["SRC"], os.environ["PRE"]
def raw(name):
    if name not in src: return ""
    s = src[src.index(name):]
    open_, close = ("r#\"", "\"#;") if s.index("r#\"") < s.index("\n") else ("r\"", "\";")
    s = s[s.index(open_) + len(open_):]
    return s[:s.index(close)]
pre = pre[pre.index("const LUA_PRELUDE"):]
pre = pre[pre.index("\"") + 1:]
print(pre[:pre.index("\";")] + "\n" + raw("const BUCKETS: &str") + "\n" + raw("const RECORD: &str"))'
}

calls() { # $1: sha, $2: "new" or "old" argument layout -> RESP on stdout
  python3 - "$1" "$2" "$MACHINES" "$EACH" <<'PY'
import json, random, sys, time
sha, layout, machines, each = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
now = int(time.time() * 1000)
start = now - each * 10_000
report = json.dumps({"machine_id": "x", "hostname": "bench.example", "os": "Debian", "kernel": "6.1",
                     "agent_version": "0.1.0", "timestamp": "2026-01-01T00:00:00Z", "uptime_secs": 1,
                     "cpu_percent": 12.5, "cpu_cores": 2, "load": [2.3, 1.9, 1.2],
                     "memory": {"total_bytes": 25276071936, "used_bytes": 959315968},
                     "swap": {"total_bytes": 0, "used_bytes": 0},
                     "disks": [{"mount": "/", "total_bytes": 270553174016, "used_bytes": 197484097536}],
                     "network": {"rx_bytes": 369256085, "tx_bytes": 537595}}, separators=(",", ":"))
out = sys.stdout.buffer
for k in range(each):
    for m in range(machines):
        ts, cpu, mid = start + k * 10_000 + m * 7, round(random.uniform(0, 100), 2), f"m{m:05d}"
        key = "{fleet}:m:" + mid
        keys = ["{fleet}:m:@index", key, "{fleet}:m:@keys", key + "@raw", key + "@1m", key + "@10m"]
        args = [mid, report, str(ts), "bench", str(cpu), "30.1", "2.3", "70.2", str(369256085 + k),
                str(537595 + k), "0", "3600000", "720", "60000", "86400000", "1440", "600000",
                "604800000", "1008", "300000", "604800000"]
        if layout == "new":
            keys.append(key + "@open")
            args.append(json.dumps({"t": ts, "n": 1, "cpu_sum": cpu, "cpu_max": cpu, "mem_sum": 30.1,
                                    "load_sum": 2.3, "disk_max": 70.2, "rx": 369256085 + k,
                                    "tx": 537595 + k}))
        parts = ["EVALSHA", sha, str(len(keys))] + keys + args
        out.write(b"*%d\r\n" % len(parts))
        for p in parts:
            b = p.encode()
            out.write(b"$%d\r\n%s\r\n" % (len(b), b))
PY
}

WORK=$(mktemp -d)
trap 'kill "${RPID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
extract "" >"$WORK/now.lua"
LABELS=(now)
if [ $# -gt 0 ]; then
  extract "$1" >"$WORK/then.lua"
  LABELS=(then now)
fi
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
RPID=$!
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "RECORD script: $MACHINES machines × $EACH reports, $ROUNDS rounds (µs of Redis time per call)"
for round in $(seq "$ROUNDS"); do
  for label in "${LABELS[@]}"; do
    redis-cli -p "$PORT" FLUSHALL >/dev/null
    SHA=$(redis-cli -p "$PORT" SCRIPT LOAD "$(cat "$WORK/$label.lua")")
    layout=old; grep -q 'KEYS\[7\]' "$WORK/$label.lua" && layout=new
    calls "$SHA" "$layout" >"$WORK/calls.resp"
    redis-cli -p "$PORT" CONFIG RESETSTAT >/dev/null
    errors=$(redis-cli -p "$PORT" --pipe <"$WORK/calls.resp" | grep -o 'errors: [0-9]*')
    per=$(redis-cli -p "$PORT" INFO commandstats | grep -o 'cmdstat_evalsha:[^ ]*' | grep -o 'usec_per_call=[0-9.]*' | cut -d= -f2)
    echo "  round $round $label: $per ($errors)"
  done
done
