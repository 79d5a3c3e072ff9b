#!/bin/sh
# it_redis_tls.sh — credwatch over TLS to Redis (rediss://), loopback only, with a test CA and
# certificates made here by tests/redis_tls_certs.sh (openssl):
#   1. the store contract (test_store's Redis group, CW_TEST_REDIS_URL) on a Redis with a TLS port only
#      that requires client certificates (tls-auth-clients yes): CA file, client certificate and key;
#   2. refusals, each with a message that says which, in /readyz and the start log, answered at once:
#      a server certificate of another CA, an expired one, one for another host name; and no client
#      certificate, or one of another CA, where the server requires one; a handshake that never finishes
#      (bounded by CREDWATCH_REDIS_TIMEOUT_MS); plain redis:// to a TLS port; a bad CA file stops the start;
#   3. tests/it_multi.sh over TLS (several instances, exactly-once under contention, Redis SIGKILLed and
#      restarted under load, drain), CW_REDIS_TLS_DIR switching its Redis to TLS;
#   4. tests/it_cluster.sh over TLS: a 3-master cluster with the bus on TLS, the store contract on it, two
#      instances through resharding (MOVED/ASK to nodes reached over TLS), a master stopped and killed.
# SKIP_TLS_SUITES=1 runs only 1 and 2. Prints `ok - name` / `not ok - name`; exits non-zero if anything
# failed. Only processes this script (and the scripts it runs) started are stopped. Builds nothing.
. "$(dirname "$0")/lib.sh"
STORE_TEST=$root/$BUILD/tests/test_store
READY_WAIT_S=10     # a refusal is reported by /readyz within this (the first attempt is at start)
make_tmp

if [ ! -x "$BIN" ]; then echo "not ok - binary $BIN exists"; exit 1; fi
if [ ! -x "$STORE_TEST" ]; then echo "not ok - $STORE_TEST exists"; exit 1; fi
if ! command -v redis-server >/dev/null 2>&1; then echo "not ok - redis-server is installed"; exit 1; fi
C=$TEST_TMP/certs
if sh "$here/redis_tls_certs.sh" "$C" >"$TEST_TMP/certs.log" 2>&1; then
  ok "a test CA, server certificates (127.0.0.1, expired, another host) and client certificates made with openssl"
else
  nok "test certificates made with openssl"; sed 's/^/#   /' "$TEST_TMP/certs.log"; exit 1
fi

# tls_redis PORT CERT AUTH-CLIENTS: a redis-server of ours with a TLS port only, its certificate CERT
# (waited for without checking it: some are meant to be refused)
tls_redis() {
  redis-server --port 0 --tls-port "$1" --tls-cert-file "$C/$2.crt" --tls-key-file "$C/$2.key" \
    --tls-ca-cert-file "$C/ca.crt" --tls-auth-clients "$3" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$TEST_TMP" >>"$TEST_TMP/redis-$1.log" 2>&1 &
  record_pid $!
  _i=0
  until redis-cli --tls --insecure --cert "$C/client.crt" --key "$C/client.key" -p "$1" ping 2>/dev/null | grep -q PONG; do
    _i=$((_i + 1)); [ $_i -gt 100 ] && return 1; sleep 0.1
  done
}

P_MAIN=$(free_port)
if tls_redis "$P_MAIN" server yes; then
  ok "redis-server with a TLS port only (127.0.0.1:$P_MAIN), client certificates required"
else
  nok "redis-server with a TLS port answers"; exit 1
fi

# 1. The store contract over TLS, with the CA file and a client certificate.
if CMOCKA_MESSAGE_OUTPUT=STDOUT CW_TEST_REDIS_URL="rediss://127.0.0.1:$P_MAIN" CW_TEST_REDIS_CA="$C/ca.crt" \
   CW_TEST_REDIS_CERT="$C/client.crt" CW_TEST_REDIS_KEY="$C/client.key" timeout -k 5 120 "$STORE_TEST" \
   >"$TEST_TMP/test_store.log" 2>&1; then
  n=$(grep -c '^\[       OK \]' "$TEST_TMP/test_store.log")
  ok "store contract over TLS with a client certificate: test_store with CW_TEST_REDIS_URL=rediss:// passes ($n tests)"
else
  nok "store contract over TLS (test_store with CW_TEST_REDIS_URL=rediss://)"
  sed 's/^/#   /' "$TEST_TMP/test_store.log" | tail -40
fi

# 2. Refusals. refused NAME URL EXPECT [VAR=value...]: an instance on URL is not ready, and /readyz and
# the start log both carry EXPECT (a fixed string), within READY_WAIT_S; the instance is stopped.
refused() {
  _name=$1; _url=$2; _want=$3; shift 3
  if ! serve_start CREDWATCH_REDIS_URL="$_url" CREDWATCH_REDIS_TIMEOUT_MS=1000 "$@"; then
    nok "$_name: the instance starts (not ready)"; sed 's/^/#   /' "$TEST_TMP/server.log"; return
  fi
  _t0=$(date +%s)
  _body=
  while [ $(($(date +%s) - _t0)) -lt "$READY_WAIT_S" ]; do
    rm -f "$TEST_TMP/readyz.json"
    _code=$(curl -s -m 5 -o "$TEST_TMP/readyz.json" -w '%{http_code}' "http://127.0.0.1:$SERVE_PORT/readyz")
    _body=$(cat "$TEST_TMP/readyz.json" 2>/dev/null)
    [ "$_code" = 503 ] && printf '%s' "$_body" | grep -qF "$_want" && break
    sleep 0.2
  done
  _dt=$(($(date +%s) - _t0))
  if [ "$_code" = 503 ] && printf '%s' "$_body" | grep -qF "$_want" && grep -qF "$_want" "$TEST_TMP/server.log"; then
    ok "$_name: refused, /readyz 503 and the start log say \"$_want\" (${_dt}s)"
  else
    nok "$_name: refused with \"$_want\" in /readyz and the start log"
    echo "#   /readyz $_code: $_body"; grep -v '"level":"info"' "$TEST_TMP/server.log" | sed 's/^/#   log: /' | tail -4
    kill -0 "$SERVE_PID" 2>/dev/null || echo "#   the instance is gone"
  fi
  kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null
}

P_EXP=$(free_port)
P_HOST=$(free_port)
if tls_redis "$P_EXP" expired no && tls_redis "$P_HOST" otherhost no; then
  ok "redis-server with an expired certificate (:$P_EXP) and one for redis.example.com (:$P_HOST)"
else
  nok "the redis-servers of the refusals answer"
fi
CLIENT="CREDWATCH_REDIS_CLIENT_CERT=$C/client.crt CREDWATCH_REDIS_CLIENT_KEY=$C/client.key"
# shellcheck disable=SC2086
refused "wrong CA (the server's certificate is signed by a CA other than CREDWATCH_REDIS_CA_FILE)" \
  "rediss://127.0.0.1:$P_MAIN" "self-signed certificate in certificate chain (signed by a CA not trusted here" \
  CREDWATCH_REDIS_CA_FILE="$C/other-ca.crt" $CLIENT
refused "no CA file: the system's CA store does not know the test CA" \
  "rediss://127.0.0.1:$P_EXP" "(signed by a CA not trusted here: set CREDWATCH_REDIS_CA_FILE"
refused "expired server certificate" "rediss://127.0.0.1:$P_EXP" "certificate has expired (the server's certificate is outside its validity period" \
  CREDWATCH_REDIS_CA_FILE="$C/ca.crt"
refused "wrong host name (a certificate for redis.example.com, reached as localhost)" "rediss://localhost:$P_HOST" \
  "hostname mismatch (the certificate is for another host" CREDWATCH_REDIS_CA_FILE="$C/ca.crt"
refused "wrong IP address (a certificate for 10.9.9.9, reached as 127.0.0.1)" "rediss://127.0.0.1:$P_HOST" \
  "IP address mismatch" CREDWATCH_REDIS_CA_FILE="$C/ca.crt"
refused "no client certificate where the server requires one" "rediss://127.0.0.1:$P_MAIN" \
  "CREDWATCH_REDIS_CLIENT_CERT" CREDWATCH_REDIS_CA_FILE="$C/ca.crt"
refused "a client certificate of another CA" "rediss://127.0.0.1:$P_MAIN" "CREDWATCH_REDIS_CLIENT_CERT" \
  CREDWATCH_REDIS_CA_FILE="$C/ca.crt" CREDWATCH_REDIS_CLIENT_CERT="$C/rogue-client.crt" \
  CREDWATCH_REDIS_CLIENT_KEY="$C/rogue-client.key"
# A server that accepts connections and never answers the handshake: bounded by the timeout.
P_MUTE=$(free_port)
$PY -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64); held = []
while True: held.append(s.accept()[0])' "$P_MUTE" &
record_pid $!
sleep 0.3
refused "a TLS handshake that never finishes (a silent server)" "rediss://127.0.0.1:$P_MUTE" \
  "TLS handshake: no answer within 1000 ms" CREDWATCH_REDIS_CA_FILE="$C/ca.crt"
refused "plain redis:// to the TLS port" "redis://127.0.0.1:$P_MAIN" "no answer from 127.0.0.1:$P_MAIN"

# The good case through the same path: ready, and a batch ingested over TLS.
# shellcheck disable=SC2086
if serve_start CREDWATCH_REDIS_URL="rediss://localhost:$P_MAIN" CREDWATCH_REDIS_CA_FILE="$C/ca.crt" $CLIENT; then
  _i=0
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SERVE_PORT/readyz")" = 200 ] || [ $_i -gt 50 ]; do
    _i=$((_i + 1)); sleep 0.1
  done
  check "rediss://localhost (a name: SNI and host name checked) with a client certificate: /readyz 200" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SERVE_PORT/readyz")" = 200 ]
  kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null
else
  nok "an instance on rediss://localhost starts"
fi

# A CA file that cannot be read stops the start (exit 2), naming the variable.
env CREDWATCH_LISTEN=127.0.0.1:0 CREDWATCH_REDIS_URL="rediss://127.0.0.1:$P_MAIN" \
  CREDWATCH_REDIS_CA_FILE="$TEST_TMP/missing.pem" "$BIN" serve >"$TEST_TMP/badca.log" 2>&1
rc=$?
if [ "$rc" = 2 ] && grep -q 'CREDWATCH_REDIS_CA_FILE: CA file .*missing.pem: No such file or directory' "$TEST_TMP/badca.log"; then
  ok "a missing CA file stops the start: exit 2, CREDWATCH_REDIS_CA_FILE named with the reason"
else
  nok "a missing CA file stops the start (exit $rc)"; sed 's/^/#   /' "$TEST_TMP/badca.log" | tail -3
fi

# An encrypted client key stops the start at once, saying so: OpenSSL's default would ask for a pass
# phrase on the terminal or stdin, and a service started by hand or with stdin open waited for it.
openssl req -x509 -newkey rsa:2048 -keyout "$TEST_TMP/enc.key" -out "$TEST_TMP/enc.crt" -days 2 -subj /CN=enc \
  -passout pass:secret >/dev/null 2>&1
mkfifo "$TEST_TMP/stdin"
exec 3<>"$TEST_TMP/stdin"  # stdin open and silent: a prompt would wait on it until the timeout
timeout -k 2 5 env CREDWATCH_LISTEN=127.0.0.1:0 CREDWATCH_REDIS_URL="rediss://127.0.0.1:$P_MAIN" \
  CREDWATCH_REDIS_CLIENT_CERT="$TEST_TMP/enc.crt" CREDWATCH_REDIS_CLIENT_KEY="$TEST_TMP/enc.key" "$BIN" serve \
  <"$TEST_TMP/stdin" >"$TEST_TMP/enckey.log" 2>&1
rc=$?
exec 3>&-
if [ "$rc" = 2 ] && ! grep -q 'Enter PEM pass phrase' "$TEST_TMP/enckey.log" &&
   grep -q 'CREDWATCH_REDIS_CLIENT_KEY: client key .*enc.key: .*encrypted' "$TEST_TMP/enckey.log"; then
  ok "an encrypted client key stops the start at once (no pass phrase prompt): exit 2, the key named as encrypted"
else
  nok "an encrypted client key stops the start at once (exit $rc)"; sed 's/^/#   /' "$TEST_TMP/enckey.log" | tail -3
fi

# 3 and 4. The multi-instance and cluster suites over TLS (their own Redis, on TLS ports only).
if [ "${SKIP_TLS_SUITES:-0}" = 1 ]; then
  skip "it_multi.sh and it_cluster.sh over TLS" "SKIP_TLS_SUITES=1"
else
  for suite in it_multi it_cluster; do
    if CW_REDIS_TLS_DIR=$C CREDWATCH_REDIS_CA_FILE=$C/ca.crt sh "$here/$suite.sh" >"$TEST_TMP/$suite.log" 2>&1; then
      ok "$suite.sh over TLS: $(grep -c '^ok - ' "$TEST_TMP/$suite.log") checks pass"
    else
      nok "$suite.sh over TLS"; grep -v '^ok - ' "$TEST_TMP/$suite.log" | sed 's/^/#   /' | tail -30
    fi
    grep '^# ' "$TEST_TMP/$suite.log" | grep -v '^# ---' | head -8
  done
fi
[ "$fails" -eq 0 ]
