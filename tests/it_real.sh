#!/bin/sh
# it_real.sh — public CloudTrail from real attack simulations (tests/data/real/, see its README):
# `credwatch scan` must account for every record exactly as tests/data/real/expected.json says
# (records, keys, findings, skipped with each reason, duplicates, ignored). Loopback only: no network.
. "$(dirname "$0")/lib.sh"
exec "$PY" - "$BIN" "$root" <<'PYEOF'
import collections, glob, json, os, re, subprocess, sys
BIN, ROOT = sys.argv[1], sys.argv[2]
DATA = os.path.join(ROOT, "tests", "data", "real")
RANGES = os.path.join(ROOT, "tests", "data", "aws-ip-ranges-2026-08-22.json")
expected = json.load(open(os.path.join(DATA, "expected.json")))
fails = 0
SUMMARY = re.compile(r"(\d+) records, (\d+) keys, (\d+) findings, (\d+) records skipped, (\d+) duplicates, "
                     r"(\d+) not uses of a temporary key")
files = sorted(os.path.relpath(p, DATA) for p in glob.glob(os.path.join(DATA, "*", "*.json")))
if sorted(files) != sorted(expected):
    print("not ok - expected.json names every real log: %s" % sorted(set(files) ^ set(expected)))
    fails += 1
total = collections.Counter()
for name in files:
    want = expected.get(name)
    p = subprocess.run([BIN, "scan", "--aws-ip-ranges", RANGES, os.path.join(DATA, name)],
                       capture_output=True, text=True, timeout=60)
    m = SUMMARY.search(p.stderr)
    findings = [l for l in p.stdout.splitlines() if l.strip()]
    if not m or want is None:
        print("not ok - %s: scan summary (%s)" % (name, p.stderr.strip()[-200:]))
        fails += 1
        continue
    rec, keys, nf, sk, du, ig = map(int, m.groups())
    reasons = collections.Counter(re.findall(r"record \d+ skipped: (.*)", p.stderr))
    got = {"records": rec, "keys": keys, "findings": nf, "skipped": sk, "duplicates": du, "ignored": ig,
           "applied": rec - sk - du - ig, "skip_reasons": dict(reasons)}
    okay = got == want and len(findings) == want["findings"] and p.returncode == 0
    print(("ok - " if okay else "not ok - ") + "%s: %d records (%d applied, %d ignored, %d skipped), %d findings"
          % (name, rec, got["applied"], ig, sk, nf) + ("" if okay else " -- got %s, want %s" % (got, want)))
    fails += not okay
    total.update({k: v for k, v in got.items() if isinstance(v, int)})
print(("ok - " if total["records"] == total["applied"] + total["ignored"] + total["skipped"] + total["duplicates"]
       else "not ok - ") + "every one of the %d real records is applied, ignored or skipped with a reason" % total["records"])
sys.exit(1 if fails else 0)
PYEOF
