#!/bin/sh
# it_real.sh — public CloudTrail from real attack simulations (tests/data/real/, see its README):
# `credwatch scan` must account for every record exactly as tests/data/real/expected.json says
# (records, keys, findings, skipped with each reason, duplicates, ignored). Loopback only: no network.
#
# An entry with "derived_from" is not a file: it names a real log and the one derivation this script
# makes of it in a temporary directory ("eventTime=@timestamp": the OTRF capture, whose Logstash
# export removed eventTime, with each record's @timestamp copied into eventTime; the product itself
# never reads @timestamp, so the raw file keeps its own entry: every record skipped).
# An entry may also name, per key, the finding document scan prints ("finding_docs"), the key's
# context as `credwatch serve` shows it at GET /v1/keys/{id} ("key_contexts", the records posted to
# one serve of our own, stopped by its pid), and the class an address has in the AWS ranges the test
# loads ("address_classes", read from that file directly, so that the engine's reading is checked).
. "$(dirname "$0")/lib.sh"
exec "$PY" - "$BIN" "$root" <<'PYEOF'
import collections, glob, ipaddress, json, os, re, shutil, subprocess, sys, tempfile
BIN, ROOT = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(ROOT, "tests"))
import harness
DATA = os.path.join(ROOT, "tests", "data", "real")
RANGES = os.path.join(ROOT, "tests", "data", "aws-ip-ranges-2026-08-22.json")
expected = json.load(open(os.path.join(DATA, "expected.json")))
fails = 0
SUMMARY = re.compile(r"(\d+) records, (\d+) keys, (\d+) findings, (\d+) records skipped, (\d+) duplicates, "
                     r"(\d+) not uses of a temporary key")
COUNTS = ("records", "keys", "findings", "skipped", "duplicates", "ignored", "applied", "skip_reasons")


def report(okay, line, why=""):
    global fails
    print(("ok - " if okay else "not ok - ") + line + ("" if okay or not why else " -- " + why))
    fails += not okay


files = sorted(os.path.relpath(p, DATA) for p in glob.glob(os.path.join(DATA, "*", "*.json")))
derived = sorted(n for n, e in expected.items() if "derived_from" in e)
plain = sorted(n for n in expected if n not in derived)
report(files == plain, "expected.json names every real log, and every entry that is not derived names a file",
       str(sorted(set(files) ^ set(plain))))
for n in derived:
    report(expected[n]["derived_from"] in files and expected[n].get("derivation") == "eventTime=@timestamp",
           "%s: derived from a real log by a derivation this script knows" % n, json.dumps(expected[n].get("derived_from")))

tmp = tempfile.mkdtemp(prefix="cw-real-")


def load_records(path):
    """A real log's records: a JSON array (Stratus), {"Records": [...]}, or one object a line (OTRF)."""
    text = open(path).read()
    try:
        doc = json.loads(text)
        return doc["Records"] if isinstance(doc, dict) else doc
    except ValueError:
        return [json.loads(l) for l in text.splitlines() if l.strip()]


def derive(name):
    """The derived copy, in the temporary directory: eventTime from Logstash's @timestamp
    ("2020-09-14T00:48:30.000Z", which the product reads as is: fractions are accepted)."""
    e = expected[name]
    out = os.path.join(tmp, name.replace("/", "_").replace("#", "_"))
    with open(out, "w") as g:
        for r in load_records(os.path.join(DATA, e["derived_from"])):
            r.setdefault("eventTime", r["@timestamp"])
            g.write(json.dumps(r) + "\n")
    return out


def address_class(ip):
    """The class of an address in the ranges file: aws:<region>:<service> (the most specific service
    prefix, AMAZON only when no other service lists it) or external."""
    a = ipaddress.ip_address(ip)
    best = None
    for key, k in (("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")):
        for p in RANGES_DOC.get(key, []):
            n = ipaddress.ip_network(p[k])
            if a.version == n.version and a in n:
                rank = (n.prefixlen, p["service"] != "AMAZON")
                if best is None or rank > best[0]:
                    best = (rank, "aws:%s:%s" % (p["region"], p["service"]))
    return best[1] if best else "external"


RANGES_DOC = json.load(open(RANGES))
paths = {}
total = collections.Counter()
for name in files + derived:
    want = expected[name]
    path = paths[name] = derive(name) if name in derived else os.path.join(DATA, name)
    p = subprocess.run([BIN, "scan", "--aws-ip-ranges", RANGES, path], capture_output=True, text=True, timeout=60)
    m = SUMMARY.search(p.stderr)
    findings = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    if not m:
        report(False, "%s: scan summary" % name, p.stderr.strip()[-200:])
        continue
    rec, keys, nf, sk, du, ig = map(int, m.groups())
    reasons = collections.Counter(re.findall(r"record \d+ skipped: (.*)", p.stderr))
    got = {"records": rec, "keys": keys, "findings": nf, "skipped": sk, "duplicates": du, "ignored": ig,
           "applied": rec - sk - du - ig, "skip_reasons": dict(reasons)}
    counts = {k: want[k] for k in COUNTS}
    okay = got == counts and len(findings) == want["findings"] and p.returncode == 0
    report(okay, "%s: %d records (%d applied, %d ignored, %d skipped), %d findings"
           % (name, rec, got["applied"], ig, sk, nf), "got %s, want %s" % (got, counts))
    if name not in derived:  # a derived copy holds the same records again
        total.update({k: v for k, v in got.items() if isinstance(v, int)})
    docs = {f["access_key_id"]: f for f in findings}
    for akid, fw in sorted(want.get("finding_docs", {}).items()):
        f = docs.get(akid)
        why = "no finding" if f is None else ""
        for field in ("severity", "workload", "function_name", "region"):
            if not why and f.get(field) != fw[field]:
                why = "%s is %r, expected %r" % (field, f.get(field), fw[field])
        if not why and sorted(f["outside_source_ips"]) != sorted(fw["outside_source_ips"]):
            why = "outside %s" % f["outside_source_ips"]
        if not why and sorted(f["outside_actions"]) != sorted(fw["outside_actions"]):
            why = "actions %s" % f["outside_actions"]
        if not why and sorted(r["code"] for r in f["reasons"]) != sorted(fw["reasons"]):
            why = "reasons %s" % sorted(r["code"] for r in f["reasons"])
        nets = {s["ip"]: s["network"] for s in (f or {}).get("outside_sources", [])}
        for ip, net in fw.get("networks", {}).items():
            if not why and not nets.get(ip, "").startswith(net):
                why = "network of %s is %s" % (ip, nets.get(ip))
        report(not why, "%s: %s's finding: %s, workload %s, %s" % (name, akid, fw["severity"],
               fw["workload"], ", ".join(fw["reasons"])), why)
    for ip, cls in sorted(want.get("address_classes", {}).items()):
        report(address_class(ip) == cls, "%s: %s is %s in the AWS ranges loaded" % (name, ip, cls), address_class(ip))

report(total["records"] == total["applied"] + total["ignored"] + total["skipped"] + total["duplicates"],
       "every one of the %d real records is applied, ignored or skipped with a reason" % total["records"])

# The key contexts, through `credwatch serve` (scan prints findings only): each log posted to one
# instance of our own; keys of different logs never meet.
with_ctx = [n for n in files + derived if expected[n].get("key_contexts")]
srv = None
try:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CREDWATCH_")}
    srv = harness.Instance(BIN, os.path.join(tmp, "serve.log"), {"CREDWATCH_AWS_IP_RANGES": RANGES,
                           "CREDWATCH_THREADS": "2"}, name="serve", base_env=base)
    cl = harness.Client(srv.port)
    for name in with_ctx:
        st, _, body = cl.request("POST", "/v1/ingest/cloudtrail", json.dumps({"Records": load_records(paths[name])}),
                                 {"Content-Type": "application/json"})
        report(st == 200, "%s: posted to serve" % name, "%s %s" % (st, body))
        for akid, kw in sorted(expected[name]["key_contexts"].items()):
            st, _, ctx = cl.request("GET", "/v1/keys/" + akid)
            why = "GET %s" % st if st != 200 else ""
            if not why:
                got = {"workload": ctx["workload"], "verdict_rules": ctx["verdict_rules"], "issued": ctx["issued"],
                       "inside_count": ctx["inside"]["count"], "outside_count": ctx["outside"]["count"],
                       "not_judged_count": ctx["not_judged"]["count"],
                       "not_judged_ips": sorted(ctx["not_judged"]["source_ips"]),
                       "finding": ctx.get("finding_id") is not None}
                for field, v in kw.items():
                    if got[field] != (sorted(v) if field == "not_judged_ips" else v):
                        why = "%s is %r, expected %r" % (field, got[field], v)
                        break
            report(not why, "%s: key %s: %s" % (name, akid, ", ".join("%s %s" % (k, json.dumps(v))
                                                                     for k, v in sorted(kw.items()))),
                   why + ("" if not why or st != 200 else ": %s" % json.dumps(ctx)))
    cl.close()
except Exception as e:  # a serve that did not start, a request that failed: a failure, not a traceback
    report(False, "key contexts through serve", repr(e))
finally:
    if srv:
        report(srv.stop(timeout=30) == 0, "serve drained and exited 0")
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if fails else 0)
PYEOF
