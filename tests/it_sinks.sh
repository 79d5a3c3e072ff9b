#!/bin/sh
# it_sinks.sh — the finding sinks (sink/) against real receivers on loopback: tests/sink_receiver.py over
# HTTP and over HTTPS with a certificate made here (openssl, valid one day, for IP 127.0.0.1), driven by
# build/tests/test_sink_http (snk_deliver: delivered, certificate refused without CA_FILE, 429/503
# Retry-After, 500, 400, 410, 408, a redirect not followed, a timeout, a refused port, a wrong secret, a
# response over the cap, Slack and PagerDuty). Then what the receivers recorded: every signature they
# checked was good except the wrong secret's one, the bodies have their shapes, nothing followed the redirect.
# Prints `ok - name` / `not ok - name`; exits non-zero when any check fails. Loopback only; the receivers
# are stopped by pid and stop themselves after 300 s in any case.
. "$(dirname "$0")/lib.sh"
make_tmp
PROBE=$root/$BUILD/tests/test_sink_http
SECRET=it-sinks-shared-secret-0001
# libcurl would send loopback requests through a proxy from the environment: not here
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy=127.0.0.1 NO_PROXY=127.0.0.1

if [ ! -x "$PROBE" ]; then
  nok "the delivery probe is built ($PROBE missing: make unit builds it)"
  exit 1
fi
if ! command -v openssl >/dev/null 2>&1; then
  nok "openssl is installed (scripts/deps.sh test installs it)"
  exit 1
fi

# ---- the certificate and the receivers ---------------------------------------------------------------------
if openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 1 \
     -keyout "$TEST_TMP/key.pem" -out "$TEST_TMP/cert.pem" >"$TEST_TMP/openssl.log" 2>&1; then
  ok "a self-signed certificate for 127.0.0.1"
else
  nok "a self-signed certificate for 127.0.0.1"; sed 's/^/#   /' "$TEST_TMP/openssl.log"; exit 1
fi

# receiver_start NAME [ARGS...]: its port in ${NAME}_PORT
receiver_start() {
  _name=$1; shift
  "$PY" "$here/sink_receiver.py" --secret "$SECRET" --log "$TEST_TMP/$_name.log" --max-seconds 300 "$@" \
    >"$TEST_TMP/$_name.port" 2>"$TEST_TMP/$_name.err" &
  record_pid $!
  _i=0
  while [ ! -s "$TEST_TMP/$_name.port" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
  _port=$(head -n 1 "$TEST_TMP/$_name.port")
  [ -n "$_port" ] || { sed 's/^/#   /' "$TEST_TMP/$_name.err"; return 1; }
  eval "${_name}_PORT=$_port"
  : >>"$TEST_TMP/$_name.log"
}
check "the HTTP receiver listens on loopback" receiver_start plain
check "the HTTPS receiver listens on loopback" receiver_start tls --tls "$TEST_TMP/cert.pem" "$TEST_TMP/key.pem"
[ "$fails" -eq 0 ] || exit 1

# ---- deliveries ----------------------------------------------------------------------------------------------
CMOCKA_MESSAGE_OUTPUT=TAP SINK_RECV_HTTP_PORT=$plain_PORT SINK_RECV_HTTPS_PORT=$tls_PORT \
  SINK_RECV_CA="$TEST_TMP/cert.pem" SINK_RECV_SECRET=$SECRET run_driver 120 "$PROBE" >"$TEST_TMP/probe.out" 2>&1
rc=$?
grep -E '^(ok|not ok) ' "$TEST_TMP/probe.out" | sed 's/^\(ok\|not ok\) [0-9]* - /\1 - deliver: /'
grep -E '^# ' "$TEST_TMP/probe.out"
if grep -q 'SKIP' "$TEST_TMP/probe.out" || [ "$(grep -c '^ok ' "$TEST_TMP/probe.out")" -ne 8 ]; then
  nok "all 8 delivery tests ran with both receivers up"
elif [ "$rc" -eq 0 ]; then
  ok "the delivery probe exits 0"
else
  nok "the delivery probe exits 0 (status $rc)"
fi

# ---- what the receivers saw ----------------------------------------------------------------------------------
"$PY" - "$TEST_TMP/plain.log" "$TEST_TMP/tls.log" <<'EOF'
import json, sys
plain = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tls = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
fails = 0
def check(name, cond, detail=""):
    global fails
    print(("ok - " if cond else "not ok - ") + name + ("" if cond else " # " + str(detail)[:400]))
    fails += not cond
hooks = [r for r in plain if r["path"] == "/hook"]
bad = [r for r in plain if r["sig"] == "bad"]
good = [r for r in plain if r["sig"] == "ok"]
check("the receiver counted exactly one bad signature (the wrong secret)", len(bad) == 1, bad)
check("every other webhook request (12 in all) carried a good signature", len(hooks) == 12 and
      len(good) == len(hooks) - 1, [(r["path"], r["sig"]) for r in plain])
first = hooks[0] if hooks else {}
b = first.get("body") or {}
check("webhook body: event, idempotency key, revision, the finding",
      b.get("event") == "finding.created" and b.get("idempotency_key") == "cwf-ASIAEXAMPLEKEY000001:1"
      and b.get("revision") == 1 and (b.get("finding") or {}).get("id") == "cwf-ASIAEXAMPLEKEY000001"
      and first.get("event") == "finding.created" and first.get("content_type") == "application/json", first)
check("the second event on the kept-alive handle is an update", len(hooks) > 1 and
      (hooks[1].get("body") or {}).get("event") == "finding.updated", hooks[1:2])
check("the redirect was not followed", not [r for r in plain if r["path"] == "/after-redirect"],
      [r["path"] for r in plain])
slack = [r["body"] for r in plain if r["path"] == "/slack"]
check("Slack: one message with text and blocks, the mention escaped", len(slack) == 1 and
      isinstance(slack[0].get("blocks"), list) and "<@U123>" not in json.dumps(slack[0]) and
      "&lt;@U123&gt;" in json.dumps(slack[0]), slack)
pd = [r["body"] for r in plain if r["path"] == "/pd"]
check("PagerDuty: a trigger with routing key, dedup key and payload", len(pd) == 1 and
      pd[0].get("event_action") == "trigger" and pd[0].get("routing_key") == "probe-routing-key" and
      pd[0].get("dedup_key") == "cwf-ASIAEXAMPLEKEY000001" and pd[0]["payload"]["severity"] == "error", pd)
tls_req = [r for r in tls if "path" in r]
check("HTTPS: one request, signed, after the CA was given", len(tls_req) == 1 and tls_req[0]["sig"] == "ok", tls)
check("HTTPS: the attempt without the CA never got past the handshake",
      any("tls_error" in r for r in tls), tls)
sys.exit(1 if fails else 0)
EOF
[ $? -eq 0 ] || fails=$((fails + 1))

[ "$fails" -eq 0 ]
