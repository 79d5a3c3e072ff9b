#!/bin/sh
# it_api.sh — the HTTP service end to end, against a real `credwatch serve` on loopback:
# authentication, ingest (plain and gzip), reading findings back, triage, every error status with
# its JSON body, health/readiness/metrics, and the SIGTERM drain.
# The main flow runs twice: on the memory store, then (a second pass of this script, API_STORE=durable,
# its lines prefixed "durable: ") on the durable store in a temporary data directory, where it also takes a
# backup (GET /v1/backup), restarts on the same directory and opens the copy. The sections after the drain
# (body limit, Redis, configuration) run in the first pass only.
# Prints `ok - name` / `not ok - name`; exits non-zero if anything failed. Builds nothing.
. "$(dirname "$0")/lib.sh"
make_tmp
API_TMP=$TEST_TMP
. "$here/data/api_server.sh"
on_exit() { api_stop; }

# expect NAME STATUS [PYTHON-EXPR on d (the JSON body) and h (headers, lower-cased names)]
expect() {
  _name=$1; _want=$2; _expr=${3:-True}
  if [ "$STATUS" != "$_want" ]; then
    nok "$_name (status $STATUS, want $_want: $(head -c 300 "$API_TMP/body"))"
    return
  fi
  if $PY - "$API_TMP/body" "$API_TMP/headers" "$_expr" <<'PYEOF'
import json, sys
body, hdrs, expr = sys.argv[1:4]
raw = open(body, 'rb').read()
try:
    d = json.loads(raw)
except ValueError:
    d = raw.decode('utf-8', 'replace')
h = {}
for line in open(hdrs, encoding='latin-1'):
    if ':' in line:
        k, v = line.split(':', 1)
        h.setdefault(k.strip().lower(), []).append(v.strip())
sys.exit(0 if eval(expr) else 1)
PYEOF
  then ok "$_name"; else nok "$_name (body: $(head -c 300 "$API_TMP/body"))"; fi
}
# An error reply: status, code, a message, application/json.
expect_error() {
  expect "$1" "$2" "d['error']['code'] == '$3' and isinstance(d['error']['message'], str) and \
h['content-type'][0].startswith('application/json')${4:+ and $4}"
}

if [ ! -x "$BIN" ]; then nok "binary $BIN exists"; exit 1; fi
SAMPLE=$here/data/api_cloudtrail.json
FID=cwf-ASIAEXAMPLEKEY000001
# A second key, same scenario, other event ids: for the gzip path and pagination.
sed -e 's/ASIAEXAMPLEKEY000001/ASIAEXAMPLEKEY000002/g' -e 's/8000-00000000000/8000-10000000000/g' "$SAMPLE" \
  >"$API_TMP/sample2.json"
gzip -c "$API_TMP/sample2.json" >"$API_TMP/sample2.json.gz"
FID2=cwf-ASIAEXAMPLEKEY000002
API_STORE=${API_STORE:-memory}
DATA=$API_TMP/data
STORE_ENV="CREDWATCH_STORE=$API_STORE"
[ "$API_STORE" = durable ] && STORE_ENV="CREDWATCH_DATA_DIR=$DATA"
# Small caps so 413 is cheap to provoke.
if ! api_start CREDWATCH_MAX_BODY_BYTES=65536 "$STORE_ENV"; then nok "server starts"; exit 1; fi
ok "server starts on 127.0.0.1:$API_PORT"
if [ "$API_STORE" = memory ]; then
  grep -q '"store":"memory"' "$API_TMP/server.log" && grep -q 'single instance' "$API_TMP/server.log" &&
    ok "logs the memory store warning" || nok "logs the memory store warning"
else
  grep -q "\"msg\":\"store: durable (LMDB) at $DATA, schema 1, 0 keys, 0 findings\"" "$API_TMP/server.log" &&
    ok "logs the durable store, its directory, schema and counts" ||
    nok "logs the durable store, its directory, schema and counts"
  out=$(env CREDWATCH_LISTEN=127.0.0.1:0 CREDWATCH_DATA_DIR="$DATA" "$BIN" serve 2>&1); rc=$?
  [ $rc -eq 2 ] && echo "$out" | grep -q "data directory $DATA is in use" &&
    ok "a second server on the data directory exits 2 naming it" ||
    nok "a second server on the data directory exits 2 naming it (rc $rc: $out)"
fi
$PY -c 'import json,sys
for l in open(sys.argv[1]): json.loads(l)' "$API_TMP/server.log" && ok "every log line is one JSON object" ||
  nok "every log line is one JSON object"

BI="Authorization: Bearer $API_TOKEN_INGEST"
BR="Authorization: Bearer $API_TOKEN_READ"
CT="Content-Type: application/json"

# ---- operations (no token) ----
req GET /healthz;  expect "healthz 200" 200 "d == {'status': 'ok'}"
req GET /readyz;   expect "readyz 200" 200 "d['status'] == 'ready' and d['store'] == '$API_STORE'"
req GET /openapi.json; expect "openapi.json 200" 200 "d['openapi'].startswith('3.1') and '/v1/findings' in d['paths']"

# ---- authentication ----
req POST /v1/ingest/cloudtrail -H "$CT" --data-binary @"$SAMPLE"
expect_error "ingest without credentials 401" 401 unauthorized "any('Bearer' in v for v in h['www-authenticate'])"
req POST /v1/ingest/cloudtrail -H "$CT" -H "$BR" --data-binary @"$SAMPLE"
expect_error "ingest with a read token 403" 403 forbidden
req POST /v1/ingest/cloudtrail -H "$CT" -H "Authorization: Bearer unknown-token-000000000" --data-binary @"$SAMPLE"
expect_error "ingest with an unknown token 401" 401 unauthorized
req GET /v1/findings
expect_error "list without credentials 401" 401 unauthorized
req GET /v1/findings -H "$BI"
expect_error "list with an ingest token 403" 403 forbidden
req GET /v1/findings -H "X-Api-Key: $API_TOKEN_READ"
expect "list with X-Api-Key 200" 200 "d == {'findings': [], 'next_cursor': None}"
req GET /v1/findings -u "analyst:$API_TOKEN_READ"
expect "list with Basic (token as password) 200" 200 "d['findings'] == []"
req GET /v1/findings -H "Authorization: Digest abc"
expect_error "unknown auth scheme 401" 401 unauthorized

# ---- ingest ----
req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" --data-binary @"$SAMPLE"
expect "ingest CloudTrail 200" 200 "d['findings'] == ['$FID'] and d['accepted'] >= 3 and d['skipped_count'] == 0 \
and d['skipped'] == [] and d['findings_count'] == 1"
req POST /v1/ingest/eventbridge -H "$CT; charset=utf-8" -H "$BI" --data-binary @"$SAMPLE"
expect "retried ingest is applied once (all duplicates)" 200 "d['accepted'] == 0 and d['duplicates'] >= 3"
req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" -H "Content-Encoding: gzip" --data-binary @"$API_TMP/sample2.json.gz"
expect "ingest gzip (Content-Encoding) 200" 200 "d['findings'] == ['$FID2'] and d['accepted'] >= 3"
req POST /v1/ingest/cloudtrail -H "Content-Type: application/gzip" -H "$BI" --data-binary @"$API_TMP/sample2.json.gz"
expect "ingest gzip (application/gzip) 200, duplicates" 200 "d['accepted'] == 0 and d['duplicates'] >= 3"
# records that are not uses of a temporary key (an IAM user's AKIA key, an anonymous S3 data event)
# are ignored, never "accepted": re-posting them gives accepted 0 every time
printf '%s' '{"Records":[{"eventVersion":"1.08","eventID":"akia-1","eventTime":"2024-03-13T08:40:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.9","userAgent":"aws-cli/2","userIdentity":{"type":"IAMUser","accessKeyId":"AKIAEXAMPLEUSER00001","accountId":"111122223333","arn":"arn:aws:iam::111122223333:user/dev"}},{"eventVersion":"1.08","eventID":"anon-1","eventTime":"2024-03-13T08:41:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.10","userAgent":"curl/8","userIdentity":{"type":"AWSAccount","principalId":"","accountId":"ANONYMOUS_PRINCIPAL"}}]}' >"$API_TMP/ignored.json"
req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" --data-binary @"$API_TMP/ignored.json"
expect "records that are not temporary-key uses are ignored, not accepted" 200 \
  "d['records'] == 2 and d['ignored'] == 2 and d['accepted'] == 0 and d['skipped_count'] == 0"
req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" --data-binary @"$API_TMP/ignored.json"
expect "re-posting them: accepted 0 again" 200 "d['ignored'] == 2 and d['accepted'] == 0"
req GET /metrics
expect "credwatch_records_ignored_total counts them" 200 "'credwatch_records_ignored_total 4' in d"
printf '{"Records":[{"eventID":"x-1","eventTime":"2024-03-13T08:33:21Z"}]}' >"$API_TMP/junk.json"
req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" --data-binary @"$API_TMP/junk.json"
expect "ingest reports skipped records" 200 "d['records'] == 1 and (d['skipped_count'] + d['accepted']) == 1 \
and all(set(s) == {'index', 'reason'} for s in d['skipped'])"

# ---- request hygiene: bytes a client chooses never become a 500, a truncated id or a second request ----
req GET "/%ff" -H "$BR"
expect_error "a path that is not UTF-8 once unescaped: 400, not 500" 400 invalid_request
req GET "/v1/findings/cwf-K%00zzz" -H "$BR"
expect_error "an escaped NUL in a path id is refused, not cut at the NUL" 400 invalid_request
req GET "/v1/findings?limit=5&x=$($PY -c "print('a' * 5000)")" -H "$BR"
expect_error "a request target over 4096 bytes: 414" 414 uri_too_long
req GET "/v1/findings?$($PY -c "print('&'.join('a%d=1' % i for i in range(40)))")" -H "$BR"
expect_error "more than 32 query parameters: 414" 414 too_many_parameters
req GET "/v1/findings?$($PY -c "print('&'.join('a%d=1' % i for i in range(1000)))")" -H "$BR"
expect_error "1,000 query parameters (7 KB, more than libmicrohttpd's pool holds): answered 414, not dropped" 414 uri_too_long
req GET "/v1/findings?$($PY -c "print('&'.join('a' for i in range(1500)))")" -H "$BR"
expect_error "1,500 parameters in 3 KB: answered 414 too_many_parameters" 414 too_many_parameters
$PY - "$API_PORT" <<'PYEOF' && ok "ambiguous framing (Content-Length twice; with Transfer-Encoding): one 400, connection closed, the smuggled request never runs" || nok "ambiguous framing refused"
import socket, sys
port = int(sys.argv[1])
smuggled = b"GET /v1/findings HTTP/1.1\r\nHost: x\r\n\r\n"
for head in (b"Content-Length: 0\r\nContent-Length: %d\r\n" % len(smuggled),
             b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    body = smuggled if b"chunked" not in head else b"0\r\n\r\n" + smuggled
    s.sendall(b"POST /v1/ingest/cloudtrail HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + head + b"\r\n" + body)
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    if out.count(b"HTTP/1.1 ") != 1 or not out.startswith(b"HTTP/1.1 400") or b"ambiguous_framing" not in out:
        sys.exit(1)
PYEOF

# ---- ingest errors ----
printf '{"Records":[{"eventID":' >"$API_TMP/bad.json"
req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" --data-binary @"$API_TMP/bad.json"
expect_error "malformed JSON 400" 400 invalid_input
req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" -H "Content-Encoding: gzip" --data-binary @"$SAMPLE"
expect_error "gzip header on a plain body 400" 400 invalid_gzip
req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" --data-binary ''
expect_error "empty body 400" 400 empty_body
req POST /v1/ingest/cloudtrail -H "Content-Type: text/plain" -H "$BI" --data-binary @"$SAMPLE"
expect_error "text/plain 415" 415 unsupported_media_type
req POST /v1/ingest/cloudtrail -H "$BI" -H "Content-Type:" --data-binary @"$SAMPLE"
expect_error "no Content-Type 415" 415 unsupported_media_type
req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" -H "Content-Encoding: br" --data-binary @"$SAMPLE"
expect_error "Content-Encoding br 415" 415 unsupported_media_type
head -c 70000 /dev/zero | tr '\0' ' ' >"$API_TMP/big.json"
req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" --data-binary @"$API_TMP/big.json"
expect_error "Content-Length over the cap 413" 413 payload_too_large
req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" -H "Transfer-Encoding: chunked" --data-binary @"$API_TMP/big.json"
expect_error "chunked body over the cap 413" 413 payload_too_large
# 2 MB of JSON whitespace gzips to ~2 KB: over the 200x ratio cap, refused, nothing stored.
{ printf '{"Records":['; head -c 2000000 /dev/zero | tr '\0' ' '; printf ']}'; } | gzip -c >"$API_TMP/bomb.gz"
req POST /v1/ingest/cloudtrail -H "Content-Type: application/gzip" -H "$BI" --data-binary @"$API_TMP/bomb.gz"
expect_error "gzip bomb 413" 413 payload_too_large

# ---- reading findings ----
req GET /v1/findings -H "$BR"
expect "list newest first" 200 "[f['id'] for f in d['findings']] == ['$FID2', '$FID'] and d['next_cursor'] is None"
req GET "/v1/findings?limit=1" -H "$BR"
expect "list limit=1 gives a cursor" 200 "len(d['findings']) == 1 and isinstance(d['next_cursor'], str)"
CURSOR=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["next_cursor"])' "$API_TMP/body")
req GET "/v1/findings?limit=1&cursor=$CURSOR" -H "$BR"
expect "list follows the cursor" 200 "[f['id'] for f in d['findings']] == ['$FID'] and d['next_cursor'] is None"
req GET "/v1/findings?status=open&severity=high&account=111122223333&function=my-fn&since=2020-01-01T00:00:00Z" -H "$BR"
expect "list with filters" 200 "len(d['findings']) == 2"
req GET "/v1/findings?status=resolved" -H "$BR"
expect "list filtered to nothing" 200 "d['findings'] == []"
req GET "/v1/findings?until=2020-01-01T00:00:00Z" -H "$BR"
expect "list until the past is empty" 200 "d['findings'] == []"
req GET "/v1/findings?cursor=bm90LWEtY3Vyc29y" -H "$BR"
expect_error "invalid cursor 400" 400 invalid_cursor
req GET "/v1/findings?limit=0" -H "$BR";   expect_error "limit=0 400" 400 invalid_parameter
req GET "/v1/findings?limit=501" -H "$BR"; expect_error "limit=501 400" 400 invalid_parameter
req GET "/v1/findings?status=retracted" -H "$BR"; expect "status=retracted is a valid filter" 200
req GET "/v1/findings?status=bogus" -H "$BR"; expect_error "status=bogus 400" 400 invalid_parameter
req GET "/v1/findings?since=yesterday" -H "$BR"; expect_error "since not RFC 3339 400" 400 invalid_parameter
req GET "/v1/findings?stauts=open" -H "$BR"; expect_error "unknown parameter 400" 400 unknown_parameter
req GET "/v1/findings/$FID" -H "$BR"
expect "get a finding" 200 "d['id'] == '$FID' and d['status'] == 'open' and d['note'] is None and \
d['access_key_id'] == 'ASIAEXAMPLEKEY000001' and d['outside_source_ips'] == ['198.51.100.7'] and \
len(d['created_at']) == 24 and d['created_at'].endswith('Z')"
req GET "/v1/findings/cwf-NOPE" -H "$BR"; expect_error "unknown finding 404" 404 not_found

# ---- the workload filter: an ECS task's key (ecs-tasks issuance) used from an external address ----
printf '%s' '{"Records":[{"eventVersion":"1.08","eventID":"ecs-api-issue-1","eventTime":"2024-03-13T08:30:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","awsRegion":"us-east-1","sourceIPAddress":"ecs-tasks.amazonaws.com","userAgent":"ecs-tasks.amazonaws.com","userIdentity":{"type":"AWSService","invokedBy":"ecs-tasks.amazonaws.com"},"requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/orders-task-role","roleSessionName":"0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b"},"responseElements":{"credentials":{"accessKeyId":"ASIAQEXAMPLEECSAPI01","sessionToken":"EXAMPLE","expiration":"Mar 13, 2024, 2:30:00 PM"}},"recipientAccountId":"111122223333"},{"eventVersion":"1.08","eventID":"ecs-api-use-1","eventTime":"2024-03-13T09:09:01Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"[aws-cli/1.16.19 Python/2.7.10 Darwin/17.7.0 botocore/1.12.9]","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLEROLEID0001:0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b","arn":"arn:aws:sts::111122223333:assumed-role/orders-task-role/0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b","accountId":"111122223333","accessKeyId":"ASIAQEXAMPLEECSAPI01"},"recipientAccountId":"111122223333"}]}' >"$API_TMP/ecs.json"
FECS=cwf-ASIAQEXAMPLEECSAPI01
req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" --data-binary @"$API_TMP/ecs.json"
expect "ingest an ECS task's stolen key: one finding" 200 "d['findings'] == ['$FECS']"
req GET "/v1/findings/$FECS" -H "$BR"
expect "the ECS finding names its workload, no function" 200 "d['workload'] == {'kind': 'ecs', \
'id': '0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b'} and d['function_name'] is None"
req GET "/v1/findings?workload=ecs" -H "$BR"
expect "workload=ecs lists the ECS finding only" 200 "[f['id'] for f in d['findings']] == ['$FECS'] and \
d['next_cursor'] is None"
req GET "/v1/findings?workload=lambda" -H "$BR"
expect "workload=lambda lists the Lambda findings only" 200 "[f['id'] for f in d['findings']] == ['$FID2', '$FID']"
req GET "/v1/findings" -H "$BR"
expect "no workload filter lists all three" 200 "[f['id'] for f in d['findings']] == ['$FECS', '$FID2', '$FID']"
req GET "/v1/findings?workload=ec2" -H "$BR"
expect "workload=ec2 lists nothing" 200 "d['findings'] == [] and d['next_cursor'] is None"
req GET "/v1/findings?workload=ecs&status=open&account=111122223333&since=2020-01-01T00:00:00Z" -H "$BR"
expect "workload combined with the other filters" 200 "[f['id'] for f in d['findings']] == ['$FECS']"
req GET "/v1/findings?workload=ecs&account=222222222222" -H "$BR"
expect "workload and another account: nothing" 200 "d['findings'] == []"
req GET "/v1/findings?workload=ecs&function=my-fn" -H "$BR"
expect "workload=ecs and a function: nothing (function names Lambda functions)" 200 "d['findings'] == []"
req GET "/v1/findings?workload=lambda&limit=1" -H "$BR"
expect "workload=lambda, limit=1: a cursor" 200 "[f['id'] for f in d['findings']] == ['$FID2'] and \
isinstance(d['next_cursor'], str)"
CURSOR=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["next_cursor"])' "$API_TMP/body")
req GET "/v1/findings?workload=lambda&limit=1&cursor=$CURSOR" -H "$BR"
expect "workload=lambda follows the cursor, past no ECS finding" 200 "[f['id'] for f in d['findings']] == ['$FID']"
for bad in ECS fargate none '' 'ecs,ec2' 'lambda%20' all; do
  req GET "/v1/findings?workload=$bad" -H "$BR"
  expect_error "workload='$bad' 400 (as an invalid severity)" 400 invalid_parameter \
    "d['error']['message'] == 'invalid value for workload'"
done
req GET "/v1/findings?severity=urgent" -H "$BR"
expect_error "severity=urgent 400, the same shape" 400 invalid_parameter "d['error']['message'] == 'invalid value for severity'"

# ---- triage ----
req PATCH "/v1/findings/$FID" -H "$BR" -H "$CT" -d '{"status":"acknowledged","note":"on it"}'
expect "PATCH status and note" 200 "d['status'] == 'acknowledged' and d['note'] == 'on it' and \
d['updated_at'] >= d['created_at']"
req GET "/v1/findings/$FID" -H "$BR"
expect "PATCH is persisted" 200 "d['status'] == 'acknowledged' and d['note'] == 'on it'"
req GET "/v1/findings?status=acknowledged" -H "$BR"
expect "list by the new status" 200 "[f['id'] for f in d['findings']] == ['$FID']"
req PATCH "/v1/findings/$FID" -H "$BR" -H "$CT" -d '{"note":""}'
expect "PATCH note only" 200 "d['status'] == 'acknowledged' and d['note'] == ''"
req PATCH "/v1/findings/$FID" -H "$BR" -H "$CT" -d '{"status":"retracted"}'
expect_error "PATCH retracted 400" 400 invalid_parameter
req PATCH "/v1/findings/$FID" -H "$BR" -H "$CT" -d '{"status":"closed"}'
expect_error "PATCH unknown status 400" 400 invalid_parameter
req PATCH "/v1/findings/$FID" -H "$BR" -H "$CT" -d '{"severity":"low"}'
expect_error "PATCH another field 400" 400 invalid_parameter
req PATCH "/v1/findings/$FID" -H "$BR" -H "$CT" -d '{}'
expect_error "PATCH nothing 400" 400 invalid_parameter
req PATCH "/v1/findings/$FID" -H "$BR" -H "$CT" -d '{"status":'
expect_error "PATCH malformed JSON 400" 400 invalid_json
NOTE=$($PY -c 'print("x" * 1025)')
req PATCH "/v1/findings/$FID" -H "$BR" -H "$CT" -d "{\"note\":\"$NOTE\"}"
expect_error "PATCH note over 1024 bytes 400" 400 invalid_parameter
req PATCH "/v1/findings/$FID" -H "$BR" -H "Content-Type: text/plain" -d '{"status":"resolved"}'
expect_error "PATCH text/plain 415" 415 unsupported_media_type
req PATCH "/v1/findings/$FID" -H "$BI" -H "$CT" -d '{"status":"resolved"}'
expect_error "PATCH with an ingest token 403" 403 forbidden
req PATCH "/v1/findings/cwf-NOPE" -H "$BR" -H "$CT" -d '{"status":"resolved"}'
expect_error "PATCH unknown finding 404" 404 not_found

# ---- keys ----
req GET /v1/keys/ASIAEXAMPLEKEY000001 -H "$BR"
expect "key context" 200 "d['access_key_id'] == 'ASIAEXAMPLEKEY000001' and d['lambda'] is True and \
d['finding_id'] == '$FID' and d['outside']['source_ips'] == ['198.51.100.7']"
req GET /v1/keys/not-a-key -H "$BR";              expect_error "invalid access key id 400" 400 invalid_access_key_id
req GET /v1/keys/ASIAUNKNOWNKEY000099 -H "$BR";   expect_error "unknown key 404" 404 not_found
req GET /v1/keys/ASIAEXAMPLEKEY000001 -H "$BI";   expect_error "key with an ingest token 403" 403 forbidden

# ---- routing ----
req GET /nope;                       expect_error "unknown path 404" 404 not_found
req GET /v1/findings/;               expect_error "trailing slash 404" 404 not_found
req DELETE "/v1/findings/$FID" -H "$BR"
expect_error "DELETE a finding 405" 405 method_not_allowed "h['allow'] == ['GET, PATCH']"
req GET /v1/ingest/cloudtrail;       expect_error "GET on ingest 405" 405 method_not_allowed "h['allow'] == ['POST']"
req POST /healthz -H "$CT" -d '{}';  expect_error "POST healthz 405" 405 method_not_allowed "h['allow'] == ['GET']"

# ---- keep-alive: a GET must not close the connection (the libmicrohttpd first-call trap) ----
reuse=$(curl -sv --max-time 10 -o /dev/null -o /dev/null "$API_BASE/healthz" "$API_BASE/healthz" 2>&1 |
  grep -ci 're-using existing connection')
[ "${reuse:-0}" -ge 1 ] && ok "keep-alive connection reused" || nok "keep-alive connection reused"

# ---- metrics (three findings: two Lambda keys, one ECS task key) ----
req GET /metrics
expect "metrics" 200 "h['content-type'][0].startswith('text/plain') and all(n in d for n in [
 'credwatch_http_requests_total{route=\"/v1/ingest/cloudtrail\",method=\"POST\",status=\"200\"}',
 'credwatch_http_requests_total{route=\"/v1/findings/{id}\",method=\"PATCH\",status=\"200\"}',
 'credwatch_http_requests_total{route=\"none\",method=\"GET\",status=\"404\"}',
 'credwatch_http_request_duration_seconds_bucket{route=\"/v1/findings\",le=\"+Inf\"}',
 'credwatch_records_ingested_total ', 'credwatch_records_duplicate_total ', 'credwatch_records_skipped_total ',
 'credwatch_findings_created_total 3', 'credwatch_findings_updated_total ', 'credwatch_store_errors_total 0',
 'credwatch_store_duration_seconds_count ', 'credwatch_ready 1', 'credwatch_inflight_requests 1'])"

# ---- backup: a copy of the durable store (read token); other stores say they have none ----
req GET /v1/backup -H "$BI"
expect_error "backup with an ingest token 403" 403 forbidden
if [ "$API_STORE" = memory ]; then
  req GET /v1/backup -H "$BR"
  expect_error "backup on the memory store: 409 saying backups are for the durable store" 409 backup_unsupported \
    "'durable store' in d['error']['message']"
else
  STATUS=$(curl -s --max-time 15 -o "$API_TMP/backup.mdb" -D "$API_TMP/headers" -w '%{http_code}' \
    -H "$BR" "$API_BASE/v1/backup")
  : >"$API_TMP/body"
  expect "backup 200: an LMDB file, named for its UTC time" 200 "h['content-type'] == ['application/octet-stream'] \
and __import__('re').fullmatch(r'attachment; filename=\"credwatch-backup-\\d{8}T\\d{6}Z\\.mdb\"', \
h['content-disposition'][0]) and int(h['content-length'][0]) == __import__('os').path.getsize('$API_TMP/backup.mdb') \
and __import__('os').path.getsize('$API_TMP/backup.mdb') > 0"
  [ ! -e "$DATA/backup.tmp" ] && ok "backup: the temporary copy is gone from the data directory" ||
    nok "backup: the temporary copy is gone from the data directory"
  req GET /metrics
  expect "metrics: the durable store's file, keys and findings (the names the alert rules use)" 200 \
"'credwatch_store_findings 3' in d and 'credwatch_store_keys 3' in d and 'credwatch_store_file_bytes ' in d and \
'credwatch_store_used_bytes ' in d and 'credwatch_store_data_max_bytes 8589934592' in d and \
'credwatch_store_swept_total{kind=\"keys\"} ' in d"
fi

# ---- SIGTERM drain: readiness fails at once, the in-flight upload finishes, exit 0 ----
$PY - "$API_PID" "$API_PORT" "$API_TOKEN_INGEST" "$SAMPLE" <<'PYEOF'
import http.client, json, os, signal, socket, sys, time
pid, port, token, sample = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
body = open(sample, 'rb').read().replace(b'KEY000001', b'KEY000003').replace(b'8000-00000', b'8000-30000')
def check(name, cond, extra=''):
    print(('ok - ' if cond else 'not ok - ') + name + (' ' + extra if extra and not cond else ''))
    return cond
keep = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
keep.request('GET', '/readyz'); r = keep.getresponse(); r.read()
check('drain: ready before SIGTERM', r.status == 200)
up = http.client.HTTPConnection('127.0.0.1', port, timeout=20)
up.putrequest('POST', '/v1/ingest/cloudtrail')
up.putheader('Content-Type', 'application/json'); up.putheader('Authorization', 'Bearer ' + token)
up.putheader('Content-Length', str(len(body))); up.endheaders()
pieces = [body[i:i + len(body) // 8 + 1] for i in range(0, len(body), len(body) // 8 + 1)]
up.send(pieces[0]); time.sleep(0.3)
os.kill(pid, signal.SIGTERM); time.sleep(0.3)
keep.request('GET', '/readyz'); r = keep.getresponse(); d = json.loads(r.read())
check('drain: readiness fails at once (503 draining)', r.status == 503 and d['error']['code'] == 'draining'
      and r.getheader('Retry-After') is not None, str((r.status, d)))
t0 = time.time()
try:
    socket.create_connection(('127.0.0.1', port), timeout=2).close(); refused = False
except OSError:
    refused = True
check('drain: new connections refused', refused and time.time() - t0 < 2.5)
for p in pieces[1:]:
    up.send(p); time.sleep(0.1)
r = up.getresponse(); d = json.loads(r.read())
check('drain: the in-flight ingest completes', r.status == 200 and d['findings'] == ['cwf-ASIAEXAMPLEKEY000003'],
      str((r.status, d)))
PYEOF
[ $? -eq 0 ] || nok "drain script ran"
i=0
while kill -0 "$API_PID" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$API_PID" 2>/dev/null; then
  nok "drain: process exits within 15 s"
else
  wait "$API_PID"; rc=$?
  API_PID=
  [ $rc -eq 0 ] && ok "drain: exit status 0" || nok "drain: exit status 0 (got $rc)"
  grep -q '"msg":"stopped"' "$API_TMP/server.log" && grep -q '"inflight_abandoned":0' "$API_TMP/server.log" &&
    ok "drain: logs stopped with nothing abandoned" || nok "drain: logs stopped with nothing abandoned"
fi

# ---- durable: what was acknowledged is there after the restart, and in the backup copy ----
if [ "$API_STORE" = durable ]; then
  for dir in "$DATA" "$API_TMP/copy"; do
    if [ "$dir" = "$API_TMP/copy" ]; then mkdir -p "$dir" && cp "$API_TMP/backup.mdb" "$dir/data.mdb"; fi
    what=restart; [ "$dir" = "$DATA" ] || what="the backup copy"
    # a copy left by a server killed while making a backup
    if [ "$dir" = "$DATA" ]; then mkdir "$DATA/backup.tmp" && echo partial >"$DATA/backup.tmp/data.mdb"; fi
    if api_start "CREDWATCH_DATA_DIR=$dir"; then
      if [ "$dir" = "$DATA" ]; then
        [ ! -e "$DATA/backup.tmp" ] && ok "restart: a backup copy left by a killed server is removed" ||
          nok "restart: a backup copy left by a killed server is removed"
      fi
      req GET "/v1/findings?limit=10" -H "$BR"
      want="['cwf-ASIAEXAMPLEKEY000003', 'cwf-ASIAQEXAMPLEECSAPI01', '$FID2', '$FID']"
      # the drain's finding came after the copy
      [ "$dir" = "$DATA" ] || want="['cwf-ASIAQEXAMPLEECSAPI01', '$FID2', '$FID']"
      expect "$what: the findings are there" 200 "sorted(f['id'] for f in d['findings']) == sorted($want)"
      req GET "/v1/findings/$FID" -H "$BR"
      expect "$what: the triage is there" 200 "d['status'] == 'acknowledged' and d['note'] == ''"
      req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" --data-binary @"$SAMPLE"
      expect "$what: a re-sent event counts as a duplicate" 200 "d['accepted'] == 0 and d['duplicates'] >= 3"
      api_stop
    else
      nok "$what: the server starts"
    fi
  done
  # the command: it opens a directory no server holds; it refuses, naming the route, while one does
  out=$(CREDWATCH_DATA_DIR="$DATA" "$BIN" backup "$API_TMP/cli" 2>&1); rc=$?
  [ $rc -eq 0 ] && [ -s "$API_TMP/cli/data.mdb" ] && ok "credwatch backup PATH copies an idle data directory" ||
    nok "credwatch backup PATH copies an idle data directory (rc $rc: $out)"
  # PATH holding a store already (here: the data directory itself): refused, the file untouched
  sum=$(cksum <"$DATA/data.mdb")
  out=$(CREDWATCH_DATA_DIR="$DATA" "$BIN" backup "$DATA" 2>&1); rc=$?
  [ $rc -eq 2 ] && echo "$out" | grep -q "not an empty directory" && [ "$(cksum <"$DATA/data.mdb")" = "$sum" ] &&
    ok "credwatch backup into a directory that holds a store: refused, its file untouched" ||
    nok "credwatch backup into a directory that holds a store: refused, its file untouched (rc $rc: $out)"
  if api_start "CREDWATCH_DATA_DIR=$DATA"; then
    out=$(CREDWATCH_DATA_DIR="$DATA" "$BIN" backup "$API_TMP/cli2" 2>&1); rc=$?
    [ $rc -eq 1 ] && echo "$out" | grep -q "in use" && echo "$out" | grep -q CREDWATCH_URL &&
      ok "credwatch backup while a server holds the directory: refused, naming CREDWATCH_URL" ||
      nok "credwatch backup while a server holds the directory: refused, naming CREDWATCH_URL (rc $rc: $out)"
    out=$(CREDWATCH_URL="$API_BASE" CREDWATCH_READ_TOKEN="$API_TOKEN_READ" "$BIN" backup "$API_TMP/cli3" 2>&1); rc=$?
    [ $rc -eq 0 ] && [ -s "$API_TMP/cli3/data.mdb" ] && [ ! -e "$API_TMP/cli3/data.mdb.tmp" ] &&
      ok "credwatch backup with CREDWATCH_URL: the server makes the copy" ||
      nok "credwatch backup with CREDWATCH_URL: the server makes the copy (rc $rc: $out)"
    out=$(CREDWATCH_URL="$API_BASE" CREDWATCH_READ_TOKEN="$API_TOKEN_INGEST" "$BIN" backup "$API_TMP/cli4" 2>&1); rc=$?
    [ $rc -eq 1 ] && echo "$out" | grep -q "HTTP 403" && [ ! -e "$API_TMP/cli4" ] &&
      ok "credwatch backup with a wrong token: 403 said, no file left" ||
      nok "credwatch backup with a wrong token: 403 said, no file left (rc $rc: $out)"
    api_stop
  else
    nok "the server starts again for the backup command"
  fi
  out=$(CREDWATCH_DATA_DIR="$API_TMP/none" "$BIN" backup "$API_TMP/cli5" 2>&1); rc=$?
  [ $rc -eq 2 ] && echo "$out" | grep -q "no durable store in $API_TMP/none" && [ ! -e "$API_TMP/none" ] &&
    ok "credwatch backup of a directory without a store: refused, nothing created" ||
    nok "credwatch backup of a directory without a store: refused, nothing created (rc $rc: $out)"
  [ $fails -eq 0 ]
  exit
fi

# ---- a small body limit: a body without Content-Length reserves no more than the limit ----
# Under a limit below 16 KiB the default in-flight budget (4 bodies) is smaller than a 64 KiB
# first buffer: such an ingest used to be shed with 503 however small it was.
if api_start CREDWATCH_MAX_BODY_BYTES=8192; then
  req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" -H "Transfer-Encoding: chunked" --data-binary @"$SAMPLE"
  expect "limit 8192: a small chunked ingest is admitted (200)" 200 "d['accepted'] == 3"
  head -c 9000 /dev/zero | tr '\0' ' ' >"$API_TMP/pad9000"
  req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" -H "Transfer-Encoding: chunked" --data-binary @"$API_TMP/pad9000"
  expect_error "limit 8192: a 9,000-byte chunked body is 413" 413 payload_too_large
  api_stop
else
  nok "server starts with an 8192-byte body limit"
fi

# ---- the store unavailable: always 503 with Retry-After, never 4xx; liveness stays up ----
DEAD=$(free_port)
if api_start CREDWATCH_REDIS_URL=redis://127.0.0.1:$DEAD CREDWATCH_REDIS_TIMEOUT_MS=200 CREDWATCH_MAX_BODY_BYTES=65536
then
  req GET /healthz; expect "no Redis: healthz still 200" 200
  req GET /readyz;  expect_error "no Redis: readyz 503" 503 store_unavailable "'retry-after' in h"
  req POST /v1/ingest/eventbridge -H "$CT" -H "$BI" --data-binary @"$SAMPLE"
  expect_error "no Redis: ingest 503 with Retry-After" 503 store_unavailable "'retry-after' in h"
  req GET /v1/findings -H "$BR"; expect_error "no Redis: list 503" 503 store_unavailable "'retry-after' in h"
  req GET "/v1/findings/$FID" -H "$BR"; expect_error "no Redis: get 503" 503 store_unavailable
  req GET /v1/keys/ASIAEXAMPLEKEY000001 -H "$BR"; expect_error "no Redis: key 503" 503 store_unavailable
  req POST /v1/ingest/eventbridge -H "$CT" -H "$BI" --data-binary @"$API_TMP/bad.json"
  expect_error "no Redis: malformed input is still 400 (never valid)" 400 invalid_input
  req GET /metrics
  expect "no Redis: metrics count store errors, not ready" 200 "'credwatch_ready 0' in d and \
'credwatch_store_errors_total 0' not in d"
  api_stop
else
  nok "server starts with an unreachable Redis"
fi

# ---- a real Redis that stalls: 503 while it does, then the retry is applied exactly once ----
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  RP=$(free_port)
  redis_start "$RP" --appendonly no --daemonize no
  if api_start CREDWATCH_REDIS_URL=redis://127.0.0.1:$RP CREDWATCH_REDIS_TIMEOUT_MS=300; then
    req GET /readyz; expect "Redis: readyz 200" 200 "d['store'] == 'redis'"
    req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" --data-binary @"$SAMPLE"
    expect "Redis: ingest 200" 200 "d['findings'] == ['$FID']"
    redis-cli -p "$RP" client pause 2000 all >/dev/null
    req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" --data-binary @"$API_TMP/sample2.json"
    expect_error "Redis stalled: ingest 503 with Retry-After" 503 store_unavailable "'retry-after' in h"
    sleep 2.5
    req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" --data-binary @"$API_TMP/sample2.json"
    expect "Redis back: the retry succeeds" 200 "d['findings'] == ['$FID2'] and d['accepted'] + d['duplicates'] \
== d['records'] - d['skipped_count']"
    req POST /v1/ingest/cloudtrail -H "$CT" -H "$BI" --data-binary @"$API_TMP/sample2.json"
    expect "Redis back: a further retry is all duplicates" 200 "d['accepted'] == 0"
    req GET "/v1/findings/$FID2" -H "$BR"
    expect "Redis: finding read back" 200 "d['outside_count'] == 1 and d['status'] == 'open'"
    api_stop
  else
    nok "server starts with Redis"
  fi
  kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; REDIS_PID=
else
  echo "ok - Redis scenarios # SKIP redis-server not installed"
fi

# ---- configuration errors exit 2 naming the variable ----
out=$(env CREDWATCH_THREADS=zero "$BIN" serve 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q CREDWATCH_THREADS && ok "invalid config exits 2 naming the variable" ||
  nok "invalid config exits 2 naming the variable (rc $rc)"
out=$(env CREDWATCH_LISTEN=0.0.0.0:0 CREDWATCH_INGEST_TOKENS= CREDWATCH_READ_TOKENS= "$BIN" serve 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q CREDWATCH_ALLOW_UNAUTHENTICATED && ok "no tokens on 0.0.0.0 refused" ||
  nok "no tokens on 0.0.0.0 refused (rc $rc)"
"$BIN" serve --help | grep -q CREDWATCH_MAX_INFLATED_BYTES && ok "--help lists the variables" ||
  nok "--help lists the variables"
out=$(env CREDWATCH_STORE=durable CREDWATCH_REDIS_URL=redis://127.0.0.1:6379 "$BIN" serve 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "CREDWATCH_STORE and CREDWATCH_REDIS_URL" &&
  ok "CREDWATCH_STORE beside a Redis URL exits 2 naming both" || nok "CREDWATCH_STORE beside a Redis URL (rc $rc)"
mkdir -p "$API_TMP/ro" && : >"$API_TMP/ro/file"
out=$(env CREDWATCH_DATA_DIR="$API_TMP/ro/file/data" "$BIN" serve 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "CREDWATCH_DATA_DIR=$API_TMP/ro/file/data" &&
  ok "a data directory that cannot be made exits 2 naming it" || nok "an unusable data directory (rc $rc: $out)"

# ---- the second pass: the main flow on the durable store ----
API_STORE=durable sh "$0" >"$API_TMP/durable.out" 2>&1
rc=$?
sed -e 's/^ok - /ok - durable: /' -e 's/^not ok - /not ok - durable: /' "$API_TMP/durable.out"
[ $rc -eq 0 ] || fails=$((fails + 1))

[ $fails -eq 0 ]
