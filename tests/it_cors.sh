#!/bin/sh
# it_cors.sh — CORS for dashboards on other origins (issue 13), against a real `credwatch serve`
# on loopback: a listed origin gets Access-Control-Allow-Origin (and Vary: Origin) on the read API
# and an answered preflight (OPTIONS) for GET and PATCH; another origin gets none and a 403
# preflight; the ingest routes and the routes without a token never get a CORS header; no
# CREDWATCH_CORS_ORIGINS, no header at all; an invalid one stops the start with exit 2 naming it. A
# preflight needs no token; the request it announces still does.
. "$(dirname "$0")/lib.sh"
make_tmp
RD=rd-secret-0123456789abcdef
IN=in-secret-0123456789abcdef
OK_ORIGIN=http://127.0.0.1:3000
OTHER=https://evil.example
FID=cwf-ASIAEXAMPLEKEY000001
SAMPLE=$here/data/api_cloudtrail.json

# header NAME: the value of header NAME in the last reply's headers (last one, CR removed)
header() { tr -d '\r' <"$TEST_TMP/h" | sed -n "s/^$1: //Ip" | tail -n 1; }
has_header() { tr -d '\r' <"$TEST_TMP/h" | grep -qi "^$1:"; }
no_cors() { ! tr -d '\r' <"$TEST_TMP/h" | grep -qi '^access-control-'; }
# call METHOD PATH [curl args...]: sets code; headers in $TEST_TMP/h, body in $TEST_TMP/body
call() {
  _m=$1; _p=$2; shift 2
  code=$(curl -s -o "$TEST_TMP/body" -D "$TEST_TMP/h" -w '%{http_code}' -X "$_m" "$@" "$base$_p")
}
preflight() { call OPTIONS "$1" -H "Origin: $2" -H "Access-Control-Request-Method: $3"; }
# t EXPR: a compound condition for check, evaluated here (check runs one command)
t() { eval "$1"; }
refused() { [ "$code" = 403 ] && grep -q '"code":"cors_refused"' "$TEST_TMP/body" && no_cors; }

# ---- an invalid setting stops the start, naming the variable ----
for bad in '*' 'null' 'https://soc.example.com/' 'https://soc.example.com/app' 'ftp://soc.example.com' \
           'https://soc.example.com:443' 'https://a.example,,https://b.example'; do
  env CREDWATCH_LISTEN=127.0.0.1:0 CREDWATCH_CORS_ORIGINS="$bad" "$BIN" serve >"$TEST_TMP/out" 2>&1
  rc=$?
  check "CREDWATCH_CORS_ORIGINS='$bad': exit 2" [ "$rc" = 2 ]
  check "CREDWATCH_CORS_ORIGINS='$bad': the message names it" grep -q 'CREDWATCH_CORS_ORIGINS' "$TEST_TMP/out"
done
many=$(i=0; while [ $i -le 16 ]; do printf '%shttps://d%d.example' "$([ $i -gt 0 ] && echo ,)" $i; i=$((i + 1)); done)
env CREDWATCH_LISTEN=127.0.0.1:0 CREDWATCH_CORS_ORIGINS="$many" "$BIN" serve >"$TEST_TMP/out" 2>&1
rc=$?
check "17 origins (over API_CORS_ORIGINS_MAX): exit 2 naming the variable" \
  t '[ "$rc" = 2 ] && grep -q "CREDWATCH_CORS_ORIGINS.*more than 16" "$TEST_TMP/out"'
check "--help lists --cors-origins" sh -c "'$BIN' serve --help | grep -q 'CREDWATCH_CORS_ORIGINS'"

# ---- CORS configured ----
serve_start CREDWATCH_READ_TOKENS=$RD CREDWATCH_INGEST_TOKENS=$IN \
  CREDWATCH_CORS_ORIGINS="https://SOC.example.com, $OK_ORIGIN" || { nok "server starts"; exit 1; }
base=http://127.0.0.1:$SERVE_PORT
check "the start log lists the origins, lowercased" \
  grep -q '"cors_origins":\["https://soc.example.com","http://127.0.0.1:3000"\]' "$TEST_TMP/server.log"
call POST /v1/ingest/cloudtrail -H "Authorization: Bearer $IN" -H 'Content-Type: application/json' \
  --data-binary @"$SAMPLE"
check "fixture ingested" [ "$code" = 200 ]

# An allowed origin: the read API answers it, with Vary: Origin for caches, never credentials.
for p in /v1/findings /v1/findings/$FID /v1/keys/ASIAEXAMPLEKEY000001 /v1/sinks; do
  call GET "$p" -H "Origin: $OK_ORIGIN" -H "Authorization: Bearer $RD"
  check "GET $p, allowed origin: 200" [ "$code" = 200 ]
  check "GET $p, allowed origin: Access-Control-Allow-Origin is that origin" \
    [ "$(header Access-Control-Allow-Origin)" = "$OK_ORIGIN" ]
  check "GET $p, allowed origin: Vary: Origin" [ "$(header Vary)" = Origin ]
  check "GET $p, allowed origin: no Access-Control-Allow-Credentials" \
    sh -c "! tr -d '\r' <'$TEST_TMP/h' | grep -qi '^access-control-allow-credentials:'"
done
call GET /v1/findings -H "Origin: https://soc.example.com" -H "Authorization: Bearer $RD"
check "GET /v1/findings, the origin listed in capitals: allowed as browsers send it" \
  [ "$(header Access-Control-Allow-Origin)" = https://soc.example.com ]
call PATCH /v1/findings/$FID -H "Origin: $OK_ORIGIN" -H "Authorization: Bearer $RD" \
  -H 'Content-Type: application/json' -d '{"status":"acknowledged","note":"from the dashboard"}'
check "PATCH /v1/findings/{id}, allowed origin: 200 with Access-Control-Allow-Origin" \
  t '[ "$code" = 200 ] && [ "$(header Access-Control-Allow-Origin)" = "$OK_ORIGIN" ]'

# Preflights for GET and PATCH of a finding: 204, no token, the methods of the path.
for m in GET PATCH; do
  preflight /v1/findings/$FID "$OK_ORIGIN" $m
  check "preflight $m /v1/findings/{id}, allowed origin, no token: 204" [ "$code" = 204 ]
  check "preflight $m: Access-Control-Allow-Origin" [ "$(header Access-Control-Allow-Origin)" = "$OK_ORIGIN" ]
  check "preflight $m: Access-Control-Allow-Methods GET, PATCH" \
    [ "$(header Access-Control-Allow-Methods)" = "GET, PATCH" ]
  check "preflight $m: Access-Control-Allow-Headers" \
    [ "$(header Access-Control-Allow-Headers)" = "Authorization, Content-Type, X-Api-Key, X-Requested-With" ]
  check "preflight $m: Access-Control-Max-Age 600" [ "$(header Access-Control-Max-Age)" = 600 ]
  check "preflight $m: Vary: Origin" [ "$(header Vary)" = Origin ]
  check "preflight $m: no credentials header" sh -c "! grep -qi '^access-control-allow-credentials' '$TEST_TMP/h'"
  check "preflight $m: no body" [ ! -s "$TEST_TMP/body" ]
  check "preflight $m: no Private Network Access answer unless asked" t "! has_header Access-Control-Allow-Private-Network"
done
# Chromium's Private Network Access: a page on a public origin asks before calling a private address.
call OPTIONS /v1/findings -H "Origin: $OK_ORIGIN" -H 'Access-Control-Request-Method: GET' \
  -H 'Access-Control-Request-Private-Network: true'
check "preflight asking for private network access: allowed for the listed origin" \
  t '[ "$code" = 204 ] && [ "$(header Access-Control-Allow-Private-Network)" = true ]'
call OPTIONS /v1/findings -H "Origin: $OTHER" -H 'Access-Control-Request-Method: GET' \
  -H 'Access-Control-Request-Private-Network: true'
check "... and not for another origin" t 'refused && ! has_header Access-Control-Allow-Private-Network'
preflight /v1/findings "$OK_ORIGIN" GET
check "preflight GET /v1/findings: 204, methods GET" \
  t '[ "$code" = 204 ] && [ "$(header Access-Control-Allow-Methods)" = GET ]'
preflight /v1/sinks/none/dead-letters/retry "$OK_ORIGIN" POST
check "preflight POST of a dead-letter retry (read role): 204" [ "$code" = 204 ]
call OPTIONS /v1/findings/$FID -H "Origin: $OK_ORIGIN" -H 'Access-Control-Request-Method: PATCH' \
  -H 'Content-Type: application/json' --data-binary '{"status":"resolved"}'
check "a preflight with a body: 204, the body not applied" [ "$code" = 204 ]
call GET /v1/findings/$FID -H "Authorization: Bearer $RD"
check "... the finding is still acknowledged" grep -q '"status":"acknowledged"' "$TEST_TMP/body"

# The token is still needed for the request the preflight announced: 401, no data.
call GET /v1/findings -H "Origin: $OK_ORIGIN"
check "GET /v1/findings, allowed origin, no token: 401" [ "$code" = 401 ]
check "GET /v1/findings, no token: an error document, no findings" \
  t 'grep -q "\"code\":\"unauthorized\"" "$TEST_TMP/body" && ! grep -q cwf- "$TEST_TMP/body"'
call GET /v1/findings -H "Origin: $OK_ORIGIN" -H "Authorization: Bearer wrong-token-0123456789"
check "GET /v1/findings, allowed origin, wrong token: 401 without data" \
  t '[ "$code" = 401 ] && ! grep -q cwf- "$TEST_TMP/body"'

# Another origin: no CORS header (Vary: Origin still, for caches), a 403 preflight.
call GET /v1/findings -H "Origin: $OTHER" -H "Authorization: Bearer $RD"
check "GET /v1/findings, other origin: no Access-Control-* header" no_cors
check "GET /v1/findings, other origin: Vary: Origin" [ "$(header Vary)" = Origin ]
for o in "$OTHER" null "$OK_ORIGIN/" http://127.0.0.1:30000 https://127.0.0.1:3000; do
  preflight /v1/findings "$o" GET
  check "preflight from '$o': 403 cors_refused, no CORS header" refused
done
preflight /v1/findings/$FID "$OK_ORIGIN" DELETE
check "preflight DELETE /v1/findings/{id}: 403 naming the methods offered" \
  t 'refused && grep -q "offered: GET, PATCH" "$TEST_TMP/body"'
check "a refused preflight on a read path still varies by Origin" [ "$(header Vary)" = Origin ]
# A method the path does not have: 405, and the allowed origin's script may read it.
call DELETE /v1/findings -H "Origin: $OK_ORIGIN" -H "Authorization: Bearer $RD"
check "DELETE /v1/findings from the allowed origin: 405 with Access-Control-Allow-Origin and Vary" \
  t '[ "$code" = 405 ] && [ "$(header Access-Control-Allow-Origin)" = "$OK_ORIGIN" ] && [ "$(header Vary)" = Origin ]'
call OPTIONS /v1/findings -H "Origin: $OK_ORIGIN"
check "OPTIONS without Access-Control-Request-Method: 403" refused
call OPTIONS /v1/findings
check "OPTIONS without Origin: 403" refused
call OPTIONS /v2/nothing -H "Origin: $OK_ORIGIN" -H 'Access-Control-Request-Method: GET'
check "OPTIONS on an unknown path: 404" t '[ "$code" = 404 ] && no_cors'

# The ingest routes: never a CORS header, a preflight refused.
for p in /v1/ingest/cloudtrail /v1/ingest/eventbridge; do
  call POST "$p" -H "Origin: $OK_ORIGIN" -H "Authorization: Bearer $IN" -H 'Content-Type: application/json' \
    --data-binary @"$SAMPLE"
  check "POST $p, allowed origin: 200 and no CORS header" t '[ "$code" = 200 ] && no_cors && ! has_header Vary'
  call POST "$p" -H "Origin: $OK_ORIGIN" -H 'Content-Type: application/json' --data-binary @"$SAMPLE"
  check "POST $p, allowed origin, no token: 401 and no CORS header" t '[ "$code" = 401 ] && no_cors'
  preflight "$p" "$OK_ORIGIN" POST
  check "preflight POST $p, allowed origin: 403 cors_refused" refused
done

# The routes without a token: no CORS header, a preflight refused.
for p in /healthz /readyz /metrics /openapi.json /ui/; do
  call GET "$p" -H "Origin: $OK_ORIGIN"
  check "GET $p, allowed origin: no CORS header" t 'no_cors && ! has_header Vary'
  preflight "$p" "$OK_ORIGIN" GET
  check "preflight GET $p: 403 cors_refused" refused
done

# Preflights go through the request lifecycle: counted under their route and method.
call GET /metrics
check "metrics count the preflights by route" \
  grep -q 'credwatch_http_requests_total{route="/v1/findings/{id}",method="OPTIONS",status="204"}' "$TEST_TMP/body"
kill -KILL "$SERVE_PID" 2>/dev/null
wait "$SERVE_PID" 2>/dev/null

# ---- no CORS setting: no CORS header ever, every preflight refused ----
serve_start CREDWATCH_READ_TOKENS=$RD CREDWATCH_INGEST_TOKENS=$IN || { nok "server starts without CORS"; exit 1; }
base=http://127.0.0.1:$SERVE_PORT
call GET /v1/findings -H "Origin: $OK_ORIGIN" -H "Authorization: Bearer $RD"
check "no CORS setting: GET /v1/findings 200 without any CORS header" \
  t '[ "$code" = 200 ] && no_cors && ! has_header Vary'
preflight /v1/findings "$OK_ORIGIN" GET
check "no CORS setting: preflight 403 cors_refused" \
  t 'refused && grep -q "CREDWATCH_CORS_ORIGINS is unset" "$TEST_TMP/body"'
check "no CORS setting: the start log says none" grep -q '"cors_origins":\[\]' "$TEST_TMP/server.log"
[ $fails -eq 0 ]
