#!/bin/sh
# bench_scan.sh — `credwatch scan` on one core and on every core (issue 17), from `make bench`:
#   1. an archive of SCAN_FILES gzip CloudTrail files of 5,000 records each (bench_decode
#      --write-archive, a new key every 7 records; 200 files, 1,000,000 records by default: a scan's
#      fixed costs, faulting in ~64 MB of batch buffers and starting threads, are then ~3 % of it, where
#      at 300,000 records they were ~8 %; the figures are for archives of 10^9), scanned SCAN_RUNS times
#      each way:
#        - `--jobs 1` pinned to one core (taskset -c 0): the one-core figure;
#        - `--jobs N` (N = the CPUs) unpinned: the all-cores figure;
#        - BASE_BIN (optional: another build's credwatch, e.g. the release before issue 17) pinned
#          to one core, the baseline "today's one-core figure" the issue's 2x target is against;
#      beside the decoder's own records/s on one core (bench_decode, same run), both on its plain
#      JSON in memory (the issue's figure) and on the archive's own gzip files (bench_decode
#      --decode-files: inflate, parse, classify, nothing applied: what the scan cannot avoid).
#      Medians; ratios: all cores / one core, per core / decode (target >= 0.60) against each,
#      all cores / BASE_BIN (target >= 2). The decoder over the gzip files runs once in every round,
#      beside the scans it is compared with, and the per-core figure is the median of the rounds'
#      ratios: this shared machine's speed drifts by a third over minutes, which a decoder figure
#      taken once, before the scans, would put into the ratio.
#   1b. the same over an archive with few findings (bench_decode --write-archive ... 0 100)
#   2. peak resident memory of `scan --jobs N` over SCAN_GB GB of gzip archives (a distinct part of
#      SCAN_PART_FILES files, then hard links to it in more folders up to the size: their records are
#      duplicates of the first part's, decoded and judged all the same), beside the same scan over the
#      part alone: the bound must not depend on the archive's size.
# Scratch in a temporary folder removed on exit. Figures are medians; the machine is shared.
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root" || exit 1
BIN=$root/$BUILD/credwatch
GEN=$root/$BUILD/tests/bench_decode
SCAN_FILES=${SCAN_FILES:-200}
SCAN_RUNS=${SCAN_RUNS:-3}
SCAN_GB=${SCAN_GB:-1}
SCAN_PART_FILES=${SCAN_PART_FILES:-200}
BASE_BIN=${BASE_BIN:-}
[ -x "$BIN" ] && [ -x "$GEN" ] || { echo "scan: needs $BIN and $GEN (make)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pin=""
if command -v taskset >/dev/null 2>&1 && taskset -c 0 true 2>/dev/null; then pin="taskset -c 0"; fi
cpus=$(nproc)

mkdir -p "$tmp/a"
records=$("$GEN" --write-archive "$tmp/a" "$SCAN_FILES" 5000 0) || { echo "scan: generation failed"; exit 1; }
"$GEN" >"$tmp/decode.out"
decode=$(sed -n 's/^decode: yajl \([0-9]*\) records\/s.*/\1/p' "$tmp/decode.out")
decode_cpu=$(sed -n 's/^decode: \([0-9]*\) records per CPU-second.*/\1/p' "$tmp/decode.out")
# records per CPU-second of the decoder alone over the files in folder $1 (one run)
decode_dir() {  # 0 when it failed: a round with 0 is left out, the others stay paired by round
  x=$(DECODE_RUNS=1 "$GEN" --decode-files "$1"/* | sed -n 's/^decode files: [0-9]* records, \([0-9]*\) records per CPU-second.*/\1/p')
  echo "${x:-0}"
}

# the wall time and the CPU time (user + system, every thread) of one scan, "WALL:CPU" in seconds
timed() {
  /usr/bin/python3 -c '
import resource, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%f:%f" % (time.monotonic() - t0, r.ru_utime + r.ru_stime) if p.returncode == 0 else "0:0")
' "$@"
}
one="" all="" base="" dec=""
i=0
while [ "$i" -lt "$SCAN_RUNS" ]; do   # alternating, so a change in the machine's load hits all of them
  dec="$dec $(decode_dir "$tmp/a")"
  one="$one $(timed $pin "$BIN" scan --quiet --jobs 1 "$tmp/a")"
  all="$all $(timed "$BIN" scan --quiet --jobs "$cpus" "$tmp/a")"
  [ -n "$BASE_BIN" ] && base="$base $(timed $pin "$BASE_BIN" scan --quiet "$tmp/a")"
  i=$((i + 1))
done
/usr/bin/python3 - "$records" "$cpus" "${decode:-0}" "${decode_cpu:-0}" "$one" "$all" "$base" "$dec" <<'PYEOF'
import statistics, sys
records, cpus, decode, decode_cpu = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
decs = [float(x) for x in sys.argv[8].split()]
files_cpu = statistics.median([d for d in decs if d]) if any(decs) else 0
med = lambda s, k: statistics.median([float(x.split(":")[k]) for x in s.split()]) if s.split() else 0
# per round: all cores' records per CPU-second / the decoder's over the same files in the same round
rounds = [(records / float(x.split(":")[1])) / d for x, d in zip(sys.argv[6].split(), decs) if d and float(x.split(":")[1])]
one, all_, base = med(sys.argv[5], 0), med(sys.argv[6], 0), med(sys.argv[7], 0)
c1, ca, cb = med(sys.argv[5], 1), med(sys.argv[6], 1), med(sys.argv[7], 1)
if not (one and all_):
    print("scan: a scan FAILED"); sys.exit(1)
r1, ra = records / one, records / all_
# CPU per record does not depend on what else runs on the machine; records/s does
print("scan: CPU per record: one core %.2f us, all cores %.2f us%s; the decoder alone %.2f us (plain JSON in memory)"
      % (c1 / records * 1e6, ca / records * 1e6, ", BASE_BIN %.2f us" % (cb / records * 1e6) if cb else "",
         1e6 / decode_cpu if decode_cpu else 0))
if decode_cpu:
    eff = (records / ca) / decode_cpu
    print("scan: per core by CPU time, all cores' records per CPU-second / the decoder's = %.2f (target >= 0.60: %s); "
          "that is the per-core figure the cores would give if the machine were the scan's alone"
          % (eff, "met" if eff >= 0.6 else "NOT met"))
if files_cpu and rounds:
    effg = statistics.median(rounds)
    print("scan: the decoder over the same gzip files (inflate + parse + classify, nothing applied): %.2f us a record "
          "(median of the rounds); all cores' records per CPU-second / that, median of the rounds' ratios = %.2f "
          "(rounds: %s; target >= 0.60: %s); one core / that = %.2f"
          % (1e6 / files_cpu, effg, " ".join("%.2f" % r for r in rounds), "met" if effg >= 0.6 else "NOT met",
             (records / c1) / files_cpu))
print("scan: %d records in gzip files; one core (--jobs 1, pinned): %.0f records/s; all %d cores (--jobs %d): %.0f records/s; "
      "all/one %.2f" % (records, r1, cpus, cpus, ra, ra / r1))
if decode:
    print("scan: decoder alone, one core: %.0f records/s; per core, all cores / decode = %.2f (target >= 0.60: %s); "
          "one core / decode = %.2f" % (decode, ra / cpus / decode, "met" if ra / cpus / decode >= 0.6 else "NOT met",
                                      r1 / decode))
if base:
    rb = records / base
    print("scan: BASE_BIN one core: %.0f records/s; all cores / BASE_BIN one core = %.2f (target >= 2: %s); "
          "one core / BASE_BIN = %.2f" % (rb, ra / rb, "met" if ra / rb >= 2 else "NOT met", r1 / rb))
PYEOF

# 1b. the same scans over an archive with few findings, as a real trail has: every 100th key used
#     from outside (1,429 findings of 142,857 keys at 200 files, where the archive above has 100,000): what the state
#     and finding writes of the first one cost, beside the decoder over these files
mkdir -p "$tmp/r"
"$GEN" --write-archive "$tmp/r" "$SCAN_FILES" 5000 0 100 >/dev/null || { echo "scan: generation failed"; exit 1; }
rone="" rall="" rdec=""
i=0
while [ "$i" -lt "$SCAN_RUNS" ]; do
  rdec="$rdec $(decode_dir "$tmp/r")"
  rone="$rone $(timed $pin "$BIN" scan --quiet --jobs 1 "$tmp/r")"
  rall="$rall $(timed "$BIN" scan --quiet --jobs "$cpus" "$tmp/r")"
  i=$((i + 1))
done
/usr/bin/python3 - "$records" "$cpus" "${decode_cpu:-0}" "$rdec" "$rone" "$rall" <<'PYEOF'
import statistics, sys
records, cpus, decode_cpu = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
decs = [float(x) for x in sys.argv[4].split()]
files_cpu = statistics.median([d for d in decs if d]) if any(decs) else 0
med = lambda s, k: statistics.median([float(x.split(":")[k]) for x in s.split()]) if s.split() else 0
w1, wa, c1, ca = med(sys.argv[5], 0), med(sys.argv[6], 0), med(sys.argv[5], 1), med(sys.argv[6], 1)
if not (w1 and wa and c1 and ca):
    print("scan: a scan of the few-findings archive FAILED"); sys.exit(1)
rounds = [(records / float(x.split(":")[1])) / d for x, d in zip(sys.argv[6].split(), decs) if d and float(x.split(":")[1])]
effg = statistics.median(rounds) if rounds else 0
print("scan, few findings (1 key in 100 stolen): one core %.0f records/s (%.2f us a record), all %d cores %.0f records/s "
      "(%.2f us a record); per core by CPU time / the plain decoder = %.2f, / the decoder over these gzip files "
      "(%.2f us, median of the rounds) = %.2f, median of the rounds' ratios (rounds: %s; target >= 0.60: %s); "
      "one core / that = %.2f"
      % (records / w1, c1 / records * 1e6, cpus, records / wa, ca / records * 1e6,
         (records / ca) / decode_cpu if decode_cpu else 0, 1e6 / files_cpu if files_cpu else 0,
         effg, " ".join("%.2f" % r for r in rounds), "met" if effg >= 0.6 else "NOT met",
         (records / c1) / files_cpu if files_cpu else 0))
PYEOF

# peak memory over SCAN_GB GB
mkdir -p "$tmp/gb/part0"
"$GEN" --write-archive "$tmp/gb/part0" "$SCAN_PART_FILES" 5000 0 >/dev/null || { echo "scan: generation failed"; exit 1; }
part=$(du -sb "$tmp/gb/part0" | cut -f1)
copies=$(( (SCAN_GB * 1000000000 + part - 1) / part ))
c=1
while [ "$c" -lt "$copies" ]; do
  mkdir "$tmp/gb/part$c" && ln "$tmp/gb/part0"/* "$tmp/gb/part$c"/ || { echo "scan: hard links failed"; exit 1; }
  c=$((c + 1))
done
peak() {  # peak RSS (KB) and wall seconds of one scan
  /usr/bin/python3 -c '
import resource, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if p.returncode == 0 else -1, time.monotonic() - t0)
' "$@"
}
set -- $(peak "$BIN" scan --quiet --jobs "$cpus" "$tmp/gb/part0"); kb_part=$1; s_part=$2
set -- $(peak "$BIN" scan --quiet --jobs "$cpus" "$tmp/gb"); kb_gb=$1; s_gb=$2
/usr/bin/python3 - "$part" "$copies" "$SCAN_PART_FILES" "$kb_part" "$s_part" "$kb_gb" "$s_gb" <<'PYEOF'
import sys
part, copies, files = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
kb_part, s_part, kb_gb, s_gb = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
recs = files * 5000
print("scan: peak RSS over %.2f GB of gzip (%d records; %d x a %.1f MB part): %.1f MB in %.0f s (%.0f records/s); "
      "over the part alone (%.1f MB, %d records): %.1f MB; ratio %.2f"
      % (part * copies / 1e9, recs * copies, copies, part / 1e6, kb_gb / 1024, s_gb, recs * copies / s_gb,
         part / 1e6, recs, kb_part / 1024, kb_gb / max(kb_part, 1)))
if kb_gb < 0 or kb_part < 0:
    print("scan: a peak-memory scan FAILED"); sys.exit(1)
PYEOF
