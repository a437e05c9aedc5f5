#!/usr/bin/env bash
# Redis time per call of the fleet store's RECORD script (src/fleet/redis.rs), read from
# INFO commandstats of a private redis-server:
#
#   benches/record-script.sh                       # the script as it is in the working tree
#   benches/record-script.sh HEAD~5                # ... and as it was at a revision, interleaved
#   MACHINES=1000 EACH=20 ROUNDS=3 benches/record-script.sh HEAD~5
#   CALLGRIND=1 benches/record-script.sh HEAD~5   # instructions per call, under valgrind
#
# Microseconds move with whatever else the machine is doing; CALLGRIND=1 counts the Redis
# server's instructions per call instead (valgrind's callgrind, instrumenting only while the
# calls run), which repeats exactly for the same script, calls and redis-server build.
#
# The calls are what a live fleet sends: MACHINES machines reporting EACH times, 10 s apart,
# oldest first, sent with `redis-cli --pipe` (so the client's speed does not matter). Each
# revision gets the arguments its script takes: 6 keys and 21 arguments before the `@open`
# string ("v1"), then 7 keys and 22 ("v2"), then 7 keys and 11 with the tiers in the script
# ("v3"), now batches of BATCH reports per call (default 16; "v4": 2 shared keys, then 5 keys
# and 6 arguments per report, the sample packed as doubles; "v5": the same arguments, no keys
# per report, the rollups folded from a log). The figure is per report.
set -euo pipefail
cd "$(dirname "$0")/.."
MACHINES=${MACHINES:-1000}
EACH=${EACH:-20}
ROUNDS=${ROUNDS:-2}
BATCH=${BATCH:-16}

extract() { # $1: revision or "" (working tree) -> Lua (prelude + helpers + RECORD) on stdout
  if [ -z "$1" ]; then
    cargo run -q --release --example record_lua
    return
  fi
  # An older revision: its script from the source, with the constants it generated.
  local src pre
  src=$(git show "$1:src/fleet/redis.rs"); pre=$(git show "$1:src/store/redis.rs")
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
# Revisions with `record_constants` (the tier table as Lua constants): the same constants.
consts = ""
if "fn record_constants" in src:
    consts = ("local TIERS = {{0, 3600000, 720}, {60000, 86400000, 1440}, {600000, 604800000, 1008}}\n"
              "local SKEW, SPAN, LONGEST = 300000, 604800000, \"604800000\"\n")
    if "LOG_MAX" in src:
        consts = consts.replace("LONGEST = 300000, 604800000, \"604800000\"", "LOG_MAX = 300000, 604800000, 20")
        consts += ("local PREFIX, ARGS_PER_REPORT = '{fleet}:m:', 6\n"
                   "local COUNT = {[0] = '0', " + ", ".join(f"'{n}'" for n in range(1, 21)) + "}\n")
    elif "KEYS_PER_REPORT" in src:
        consts += "local KEYS_PER_REPORT, ARGS_PER_REPORT = 5, 6\n"
# The constants go first: since "v5" the shared helpers (`fold`) use them too.
print(pre[:pre.index("\";")] + "\n" + consts + raw("const BUCKETS: &str") + "\n" + raw("const RECORD: &str"))'
}

calls() { # $1: sha, $2: argument layout (v1 … v5) -> RESP on stdout
  python3 - "$1" "$2" "$MACHINES" "$EACH" "$BATCH" <<'PY'
import json, random, struct, sys, time
sha, layout, machines, each = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
batch = int(sys.argv[5]) if layout in ("v4", "v5") else 1
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
def send(keys, args):
    parts = [b"EVALSHA", sha.encode(), str(len(keys)).encode()] + keys + args
    out.write(b"*%d\r\n" % len(parts))
    for p in parts:
        out.write(b"$%d\r\n%s\r\n" % (len(p), p))
pending = []
for k in range(each):
    for m in range(machines):
        ts, cpu, mid = start + k * 10_000 + m * 7, round(random.uniform(0, 100), 2), f"m{m:05d}"
        key = "{fleet}:m:" + mid
        keys = ["{fleet}:m:@index", key, "{fleet}:m:@keys", key + "@raw", key + "@1m", key + "@10m"]
        args = [mid, report, str(ts), "bench", str(cpu), "30.1", "2.3", "70.2", str(369256085 + k),
                str(537595 + k), "0", "3600000", "720", "60000", "86400000", "1440", "600000",
                "604800000", "1008", "300000", "604800000"]
        point = json.dumps({"t": ts, "n": 1, "cpu_sum": cpu, "cpu_max": cpu, "mem_sum": 30.1,
                            "load_sum": 2.3, "disk_max": 70.2, "rx": 369256085 + k, "tx": 537595 + k})
        if layout in ("v4", "v5"):
            sample = struct.pack("<6d", cpu, 30.1, 2.3, 70.2, 369256085 + k, 537595 + k)
            # v5 names a machine's keys in the script: only the two shared keys are declared.
            ks = [] if layout == "v5" else [x.encode() for x in keys[1:2] + keys[3:] + [key + "@open"]]
            pending.append((ks, [mid.encode(), report.encode(), str(ts).encode(), b"bench", sample,
                                 point.encode()]))
            if len(pending) == batch:
                send([b"{fleet}:m:@index", b"{fleet}:m:@keys"] + [x for ks, _ in pending for x in ks],
                     [x for _, a in pending for x in a])
                pending = []
            continue
        if layout != "v1":
            keys.append(key + "@open")
            if layout == "v3":
                args = args[:10]
            args.append(point)
        send([x.encode() for x in keys], [x.encode() for x in args])
if pending:
    send([b"{fleet}:m:@index", b"{fleet}:m:@keys"] + [x for ks, _ in pending for x in ks],
         [x for _, a in pending for x in a])
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
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
serve() { # [valgrind args...] -> starts redis-server on $PORT, RPID
  PORT=$(free_port)
  "$@" redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>"$WORK/server.log" &
  RPID=$!
  for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && return; sleep 0.2; done
  echo "redis-server did not start: $(cat "$WORK/server.log")" >&2; exit 1
}
load() { # $1: label -> SHA loaded, calls in $WORK/calls.resp
  SHA=$(redis-cli -p "$PORT" SCRIPT LOAD "$(cat "$WORK/$1.lua")")
  local layout=v3
  grep -q 'KEYS\[7\]' "$WORK/$1.lua" || layout=v1
  grep -q 'ARGV\[22\]' "$WORK/$1.lua" && layout=v2
  grep -q 'KEYS_PER_REPORT' "$WORK/$1.lua" && layout=v4
  grep -q 'LOG_MAX' "$WORK/$1.lua" && layout=v5
  calls "$SHA" "$layout" >"$WORK/calls.resp"
}
send() { redis-cli -p "$PORT" --pipe <"$WORK/calls.resp" | grep -o 'errors: [0-9]*'; }
if [ -n "${CALLGRIND:-}" ]; then
  command -v valgrind >/dev/null || { echo "CALLGRIND=1 needs valgrind (apt-get install valgrind)" >&2; exit 1; }
  echo "RECORD script: $MACHINES machines × $EACH reports (Redis instructions per call, callgrind)"
  for label in "${LABELS[@]}"; do
    serve valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.out"
    load "$label"
    callgrind_control -i on "$RPID" >/dev/null 2>&1
    errors=$(send)
    callgrind_control -i off "$RPID" >/dev/null 2>&1
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    wait "$RPID" || true
    ir=$(grep -o 'Collected : [0-9]*' "$WORK/server.log" | grep -o '[0-9]*$')
    echo "  $label: $((ir / (MACHINES * EACH))) per report ($errors)"
  done
  exit 0
fi
serve
echo "RECORD script: $MACHINES machines × $EACH reports, $ROUNDS rounds (µs of Redis time per call)"
for round in $(seq "$ROUNDS"); do
  for label in "${LABELS[@]}"; do
    redis-cli -p "$PORT" FLUSHALL >/dev/null
    load "$label"
    redis-cli -p "$PORT" CONFIG RESETSTAT >/dev/null
    errors=$(send)
    usec=$(redis-cli -p "$PORT" INFO commandstats | grep -o 'cmdstat_evalsha:[^ ]*' | grep -o 'usec=[0-9]*' | cut -d= -f2)
    per=$(python3 -c "print(f'{$usec / ($MACHINES * $EACH):.2f} per report')")
    echo "  round $round $label: $per ($errors)"
  done
done
