#!/bin/sh
# bench_scan_multi.sh — records/s of `credwatch scan` on a Redis Cluster (3 masters, loopback) with 1, 2
# and 3 concurrent processes sharing one archive, beside the in-memory single-process scan of the same
# archive in the same run (called by tests/bench.sh; rerunnable, all scratch in a temporary folder).
# The archive: tests/scan_parts.py gen, three parts, ~1 in 7 keys stolen (some of them made to span the
# parts), the others' records within one part. The N processes get disjoint shares along the parts (1: all;
# 2: p1 + half of p2, the rest; 3: one part each), and, as the worst split, 3 processes get the files dealt
# in turn (every key's records in every process). A run's rate is all records / wall time from the first
# start to the last exit, the cluster emptied before each run; medians of RUNS runs, rounds interleaved.
# Beside each rate, CPU per record of the scan processes (rusage) and of the redis-servers (/proc): stable
# when the machine is shared, where the rates are not.
# Every process, and the three redis-servers, share this machine's cores: with 2 cores, 3 processes plus
# 3 Redis nodes contend for them, so the ratio measures contention here, not what N machines give.
. "$(dirname "$0")/lib.sh"
make_tmp
RUNS=${RUNS:-3}
KEYS=${KEYS:-1500}            # per group of scan_parts.py (7 groups, 5 with a finding)
FILLER=${FILLER:-60000}       # keys without a finding, 4 uses each, spread over the parts
T=$TEST_TMP

if [ ! -x "$BIN" ]; then echo "bench_scan_multi: needs $BIN"; exit 1; fi
if ! command -v redis-server >/dev/null 2>&1; then echo "bench_scan_multi: needs redis-server"; exit 1; fi
"$PY" "$here/scan_parts.py" gen "$T/arch" --keys "$KEYS" --filler "$FILLER" --filler-uses 4 --spread --files 20 \
  >"$T/gen.json" || { echo "bench_scan_multi: generation failed"; exit 1; }
records=$("$PY" -c 'import json,sys; print(sum(json.load(open(sys.argv[1]))["records"]))' "$T/gen.json")
find "$T/arch" -name '*.json.gz' | sort >"$T/files"

set -- $(cluster_ports)
[ $# -eq 3 ] || { echo "bench_scan_multi: no free ports"; exit 1; }
P1=$1; P2=$2; P3=$3
cluster_start "$P1" "$P2" "$P3" || { echo "bench_scan_multi: cluster did not start"; exit 1; }
SEEDS="127.0.0.1:$P1,127.0.0.1:$P2,127.0.0.1:$P3"

REDIS_PIDS=$(tr '\n' ' ' <"$PIDFILE")   # only the cluster's servers so far
# Interleaved rounds (memory, 1, 2, 3 processes), so a change of load on the machine touches every figure
# alike. Per run: wall time, CPU of the scan processes (their rusage) and of the 3 redis-servers (/proc).
"$PY" - "$BIN" "$SEEDS" "$T/files" "$T/arch" "$RUNS" "$records" "$REDIS_PIDS" "$P1 $P2 $P3" <<'EOF'
import os, statistics, subprocess, sys, time
bin_, seeds, files_list, arch, runs, records = sys.argv[1:7]
runs, records = int(runs), int(records)
rpids, ports = sys.argv[7].split(), sys.argv[8].split()
files = open(files_list).read().split()
tick = os.sysconf("SC_CLK_TCK")

def redis_cpu():
    t = 0
    for p in rpids:
        f = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
        t += (int(f[11]) + int(f[12])) / tick
    return t

def run(cmds):
    for p in ports:
        subprocess.run(["redis-cli", "-p", p, "FLUSHALL"], stdout=subprocess.DEVNULL, check=True)
    r0, t0 = redis_cpu(), time.monotonic()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL) for c in cmds]
    cpu = 0.0
    for pr in procs:
        _, status, ru = os.wait4(pr.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit("bench_scan_multi: a scan exited %d" % os.waitstatus_to_exitcode(status))
        cpu += ru.ru_utime + ru.ru_stime
    return time.monotonic() - t0, cpu, redis_cpu() - r0

def by_part(n):
    """n disjoint shares of the files along the parts: 1: all; 2: p1 and half of p2's files, the rest; 3: one
    part each. A key's records then meet in one process but for the keys made to span parts (and, with 2,
    those of p2 cut in two)."""
    part = {p: [f for f in files if "/p%d/" % p in f] for p in (1, 2, 3)}
    half = len(part[2]) // 2
    return {1: [files], 2: [part[1] + part[2][:half], part[2][half:] + part[3]],
            3: [part[1], part[2], part[3]]}[n]

def dealt(n):
    """file i to process i mod n: every key's records spread over every process (the worst split)."""
    return [files[i::n] for i in range(n)]

def redis_cmds(shares):
    return [[bin_, "scan", "--quiet", "--redis-cluster", seeds] + sh for sh in shares]

res = {k: [] for k in ("mem", 1, 2, 3, "dealt")}
for _ in range(runs):
    res["mem"].append(run([[bin_, "scan", "--quiet", arch]]))
    for n in (1, 2, 3):
        res[n].append(run(redis_cmds(by_part(n))))
    res["dealt"].append(run(redis_cmds(dealt(3))))
med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in res.items()}
rate = {k: records / m[0] for k, m in med.items()}
load = open("/proc/loadavg").read().split()[:3]
print("scan multi: %d records in %d gzip files, medians of %d runs, %d cores, load average %s at the end"
      % (records, len(files), runs, os.cpu_count(), " ".join(load)))
m = med["mem"]
print("scan multi: memory, 1 process: %.0f records/s (%.2f s); CPU %.1f us/record" % (rate["mem"], m[0], m[1] / records * 1e6))
for n in (1, 2, 3, "dealt"):
    m = med[n]
    what = ("%d process%s by part" % (n, "es" if n != 1 else "")) if n != "dealt" else "3 processes, files dealt in turn"
    print("scan multi: redis cluster, %s: %.0f records/s (%.2f s), x%.2f of 1 process, %.2f of memory; "
          "CPU us/record: scan %.1f + redis %.1f"
          % (what, rate[n], m[0], rate[n] / rate[1], rate[n] / rate["mem"], m[1] / records * 1e6, m[2] / records * 1e6))
EOF
