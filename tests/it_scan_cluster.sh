#!/bin/sh
# it_scan_cluster.sh — `credwatch scan` over an archive split across processes (issue 17): the parts'
# state in a Redis Cluster (3 masters, loopback) or one Redis, then `scan --report`.
#   An archive in three parts (tests/scan_parts.py gen: keys whose issuance, inside uses and outside uses
#   fall in different parts, keys wholly in one part, duplicates delivered in two parts, keys without a
#   finding) is scanned once in memory, whole; then by 3 concurrent processes, one part each, on the
#   cluster; `scan --report` must print the same findings (same ids, same documents but for the fields
#   scan_parts.py STRIPPED names: the store's wall-clock created_at and updated_at), and the 3 processes'
#   own outputs together the same ids. Then: part 2's process SIGKILLed while it writes, the parts rerun,
#   the same result again (a rerun is idempotent); the 3-part run on one (non-cluster) Redis; the state's
#   lifetime (--state-ttl); a finding one part raised that the whole evidence does not support, left out
#   of the report; a store that cannot be reached, TLS and timeout settings refused as serve refuses them.
# Only processes this script started are stopped, by pid. Prints `ok - ` / `not ok - ` lines.
. "$(dirname "$0")/lib.sh"
make_tmp
PARTS="$here/scan_parts.py"
T=$TEST_TMP
SCAN_LIMIT=120   # s: one scan process, a bound for a hang, far above its time on a loaded machine

if [ ! -x "$BIN" ]; then echo "not ok - binary $BIN exists"; exit 1; fi
if ! command -v redis-server >/dev/null 2>&1; then echo "not ok - redis-server is installed"; exit 1; fi

# ---- the archive, and the one in-memory scan of all of it ------------------------------------------
# --filler: 20,000 more keys in part 2 (no findings), so that its process is still writing when killed
"$PY" "$PARTS" gen "$T/arch" --keys 60 --filler 20000 >"$T/gen.json" || { nok "generate the archive"; exit 1; }
"$BIN" scan "$T/arch/p1" "$T/arch/p2" "$T/arch/p3" >"$T/whole.out" 2>"$T/whole.err"
rc=$?
check "the whole archive in memory: exit 0" [ "$rc" -eq 0 ]
check "the whole archive in memory: exactly the generated stolen keys, sorted by finding id" "$PY" -c '
import json, sys
want = json.load(open(sys.argv[1]))["expected"]
got = [json.loads(l)["id"] for l in open(sys.argv[2]) if l.strip()]
sys.exit(0 if got == want else print("# %d ids, want %d" % (len(got), len(want))) or 1)' "$T/gen.json" "$T/whole.out"

# the three parts, one process each, concurrently; $1: name, the rest: the store options
run_parts() {
  _name=$1; shift
  for _p in 1 2 3; do
    timeout -k 5 "$SCAN_LIMIT" "$BIN" scan "$@" "$T/arch/p$_p" >"$T/$_name.s$_p" 2>"$T/$_name.e$_p" &
    eval "_pid$_p=\$!"
    record_pid "$(eval echo \$_pid$_p)"
  done
  _bad=0
  for _p in 1 2 3; do
    wait "$(eval echo \$_pid$_p)" || { _bad=1; echo "# part $_p:"; sed 's/^/#   /' "$T/$_name.e$_p"; }
  done
  return $_bad
}
# scan --report into $T/$1.report (stderr $T/$1.rerr); the rest: the store options
report() {
  _name=$1; shift
  timeout -k 5 "$SCAN_LIMIT" "$BIN" scan --report "$@" >"$T/$_name.report" 2>"$T/$_name.rerr"
}
compare() { # name, share files...
  _name=$1; shift
  "$PY" "$PARTS" compare "$T/whole.out" "$T/$_name.report" "$@"
}
flush() { for _p in "$@"; do $REDIS_CLI -p "$_p" FLUSHALL >/dev/null || return 1; done; }
dbsize() { # total keys over the nodes given
  _n=0
  for _p in "$@"; do _n=$((_n + $($REDIS_CLI -p "$_p" DBSIZE 2>/dev/null || echo 0))); done
  echo "$_n"
}

# ---- a store that cannot be reached, and options that do not go together ----------------------------
dead=$(free_port)
timeout 30 "$BIN" scan --redis-cluster "127.0.0.1:$dead" "$T/arch/p1" >"$T/dead.out" 2>"$T/dead.err"
rc=$?
check "unreachable cluster: exit 2, nothing printed, the reason named" sh -c \
  "[ $rc -eq 2 ] && [ ! -s '$T/dead.out' ] && grep -q -- '--redis-cluster: the store cannot be used: .*127.0.0.1:$dead' '$T/dead.err'"
timeout 30 "$BIN" scan --report --redis-url "redis://127.0.0.1:$dead" >/dev/null 2>"$T/dead2.err"
rc=$?
check "unreachable Redis for --report: exit 2 naming it" sh -c "[ $rc -eq 2 ] && grep -q 'cannot be used' '$T/dead2.err'"
"$BIN" scan --report "$T/arch/p1" >/dev/null 2>"$T/opt.err"
rc=$?
check "--report without a Redis store: exit 2, said" sh -c "[ $rc -eq 2 ] && grep -q 'give --redis-url or --redis-cluster' '$T/opt.err'"
"$BIN" scan --redis-url "redis://127.0.0.1:$dead" --state-ttl 5 "$T/arch/p1" >/dev/null 2>"$T/opt.err"
rc=$?
check "--state-ttl below 1h: exit 2, said" sh -c "[ $rc -eq 2 ] && grep -q -- '--state-ttl: 5 is outside 1h..90d' '$T/opt.err'"
env -u CREDWATCH_REDIS_URL "$BIN" scan --redis-url env "$T/arch/p1" >/dev/null 2>"$T/opt.err"
rc=$?
check "--redis-url env with CREDWATCH_REDIS_URL unset: exit 2, said" sh -c "[ $rc -eq 2 ] && grep -q 'CREDWATCH_REDIS_URL is unset' '$T/opt.err'"

CREDWATCH_REDIS_CA_FILE="$T/missing.pem" "$BIN" scan --redis-url "rediss://127.0.0.1:$dead" "$T/arch/p1" \
  >/dev/null 2>"$T/opt.err"
rc=$?
check "TLS as serve: a missing CREDWATCH_REDIS_CA_FILE exits 2 naming the variable" sh -c \
  "[ $rc -eq 2 ] && grep -q 'CREDWATCH_REDIS_CA_FILE: CA file $T/missing.pem' '$T/opt.err'"
CREDWATCH_REDIS_TIMEOUT_MS=0 "$BIN" scan --redis-cluster "127.0.0.1:$dead" "$T/arch/p1" >/dev/null 2>"$T/opt.err"
rc=$?
check "CREDWATCH_REDIS_TIMEOUT_MS out of range: exit 2 naming it" sh -c \
  "[ $rc -eq 2 ] && grep -q 'CREDWATCH_REDIS_TIMEOUT_MS: \"0\" is not milliseconds' '$T/opt.err'"

# ---- a 3-master cluster ------------------------------------------------------------------------------
set -- $(cluster_ports)
if [ $# -ne 3 ]; then nok "three free loopback ports"; exit 1; fi
P1=$1; P2=$2; P3=$3
if ! cluster_start "$P1" "$P2" "$P3"; then
  nok "3-master Redis Cluster on loopback"; sed 's/^/#   /' "$T/cluster-create.log"; exit 1
fi
ok "3-master Redis Cluster on 127.0.0.1:$P1,$P2,$P3"
SEEDS="127.0.0.1:$P1,127.0.0.1:$P2,127.0.0.1:$P3"

check "cluster: 3 concurrent processes, one part each, exit 0" run_parts c --redis-cluster "$SEEDS"
report c --redis-cluster "$SEEDS"
rc=$?
check "cluster: scan --report exits 0" [ "$rc" -eq 0 ]
check "cluster: the report is the whole scan's findings, document for document; the shares' union is the report" \
  compare c "$T/c.s1" "$T/c.s2" "$T/c.s3"
n=$(grep -c . "$T/whole.out")
check "cluster: the report's summary line on stderr" grep -qE "^credwatch scan: report: $n findings in the redis-cluster store \\([0-9]+ critical" "$T/c.rerr"
check "cluster: each part's summary names its own share" grep -q "findings (this process's share)" "$T/c.e1"
timeout -k 5 "$SCAN_LIMIT" "$BIN" scan --report --fail-on-findings --quiet --format ocsf --redis-cluster "$SEEDS" >"$T/c.ocsf" 2>"$T/c.oerr"
rc=$?
check "cluster: --report --fail-on-findings exits 1, --format ocsf gives every finding, --quiet says nothing" sh -c \
  "[ $rc -eq 1 ] && [ \$(grep -c class_uid '$T/c.ocsf') -eq $n ] && [ ! -s '$T/c.oerr' ]"
key=$(sed -n '1s/.*"access_key_id":"\([A-Z0-9]*\)".*/\1/p' "$T/whole.out")
ttl=$($REDIS_CLI -c -p "$P1" PTTL "cw:k2:{$key}")
check "cluster: a key's state lives 7 days by default (PTTL $ttl ms)" sh -c "[ '$ttl' -gt 604680000 ] && [ '$ttl' -le 604800000 ]"

# ---- part 2's process killed while it writes; the parts rerun: the same result ------------------------
flush "$P1" "$P2" "$P3" || nok "FLUSHALL"
killed=0
for attempt in 1 2 3; do
  flush "$P1" "$P2" "$P3"
  # one thread and 4 KiB batches: the first write comes after a handful of events and the rest of the
  # part takes many round trips, so the window to kill it in is seconds wide even on a fast machine
  "$BIN" scan --quiet --jobs 1 --batch-bytes 4096 --redis-cluster "$SEEDS" "$T/arch/p2" >/dev/null 2>"$T/k.err" &
  kpid=$!
  record_pid "$kpid"
  i=0
  while [ "$i" -lt 600 ] && kill -0 "$kpid" 2>/dev/null; do   # bounded: 600 polls
    [ "$(dbsize "$P1" "$P2" "$P3")" -gt 0 ] && { kill -KILL "$kpid" 2>/dev/null; break; }
    sleep 0.05
    i=$((i + 1))
  done
  wait "$kpid"
  rc=$?
  [ "$rc" -eq 137 ] && { killed=1; break; }
  echo "# attempt $attempt: part 2's process ended with status $rc before it could be killed"
done
written=$(dbsize "$P1" "$P2" "$P3")
check "kill: the 3 parts (part 2 again) exit 0" run_parts k --redis-cluster "$SEEDS"
full=$(dbsize "$P1" "$P2" "$P3")
check "kill: part 2's process was SIGKILLed after it wrote state and before it finished ($written of the $full Redis keys after all parts; attempt $attempt)" \
  sh -c "[ $killed -eq 1 ] && [ $written -gt 0 ] && [ $written -lt $full ]"
report k --redis-cluster "$SEEDS"
check "kill: the report after the rerun is the whole scan's findings, document for document" compare k
# and a part scanned twice in full changes nothing
check "rerun: part 1 scanned once more exits 0" timeout -k 5 "$SCAN_LIMIT" "$BIN" scan --quiet --redis-cluster "$SEEDS" "$T/arch/p1" >/dev/null
report k2 --redis-cluster "$SEEDS"
check "rerun: the report is unchanged, document for document" compare k2

# ---- one Redis (not a cluster) ---------------------------------------------------------------------------
RP=$(free_port)
if redis_start "$RP"; then
  check "redis: 3 concurrent processes, one part each, exit 0" run_parts r --redis-url "redis://127.0.0.1:$RP"
  report r --redis-url "redis://127.0.0.1:$RP"
  check "redis: the report is the whole scan's findings, document for document; the shares' union is the report" \
    compare r "$T/r.s1" "$T/r.s2" "$T/r.s3"
  $REDIS_CLI -p "$RP" FLUSHALL >/dev/null
  CREDWATCH_REDIS_URL="redis://127.0.0.1:$RP" timeout -k 5 "$SCAN_LIMIT" "$BIN" scan --quiet --redis-url env \
    --state-ttl 36h "$T/arch/p1" >/dev/null
  rc=$?
  key=$(sed -n 's/.*"access_key_id":"\(ASIAQW[0-9]*\)".*/\1/p' "$T/r.s1" | head -n 1)
  ttl=$($REDIS_CLI -p "$RP" TTL "cw:k2:{$key}")
  check "redis: --redis-url env reads CREDWATCH_REDIS_URL; --state-ttl 36h keeps the state 36 h (TTL $ttl s)" \
    sh -c "[ $rc -eq 0 ] && [ '$ttl' -gt 129480 ] && [ '$ttl' -le 129600 ]"
  # A finding one part raised on some of a key's records and the whole does not support: part 1 has the
  # issuance and an unmarked call from 3.5.140.9 (outside: a finding), part 2, scanned after it, the key's
  # earlier marked call from the same address (its own address: the call is inside). One scan of both has no
  # finding; the report must not print the one part 1 stored, and says so.
  PARTS_DIR=$here "$PY" - "$T/ex" <<'EOF'
import json, os, sys
sys.path.insert(0, os.environ["PARTS_DIR"])
import scan_parts as sp
top, k = sys.argv[1], "ASIAQEXPLAINED000001"
for d in ("p1", "p2"):
    os.makedirs(os.path.join(top, d), exist_ok=True)
json.dump({"Records": [sp.issue(k, "2024-03-13T08:00:00Z", "fn-x"),
                       sp.use(k, "2024-03-13T08:10:00Z", "3.5.140.9", "Boto3/1.34.20 md/Botocore#1.34.20",
                              "s3.amazonaws.com", "ListBuckets", "fn-x")]}, open(os.path.join(top, "p1", "a.json"), "w"))
json.dump({"Records": [sp.use(k, "2024-03-13T08:05:00Z", "3.5.140.9", sp.UA_PY, "s3.amazonaws.com", "GetObject",
                              "fn-x")]}, open(os.path.join(top, "p2", "b.json"), "w"))
EOF
  $REDIS_CLI -p "$RP" FLUSHALL >/dev/null
  "$BIN" scan --quiet "$T/ex/p1" "$T/ex/p2" >"$T/ex.whole"
  "$BIN" scan --quiet --redis-url "redis://127.0.0.1:$RP" "$T/ex/p1" >"$T/ex.s1"
  "$BIN" scan --quiet --redis-url "redis://127.0.0.1:$RP" "$T/ex/p2" >"$T/ex.s2"
  report ex --redis-url "redis://127.0.0.1:$RP"
  rc=$?
  check "unsupported: part 1 alone raised the finding (its share), one scan of both has none" \
    sh -c "grep -q cwf-ASIAQEXPLAINED000001 '$T/ex.s1' && [ ! -s '$T/ex.whole' ]"
  check "unsupported: the report leaves it out and counts it (exit 0)" sh -c \
    "[ $rc -eq 0 ] && [ ! -s '$T/ex.report' ] && grep -q '0 findings in the redis store .*; 1 not supported by all of their key' '$T/ex.rerr'"
else
  nok "redis-server on 127.0.0.1:$RP"
fi

[ "$fails" -eq 0 ]
