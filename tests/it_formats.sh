#!/bin/sh
# it_formats.sh — findings out in other formats: GET /v1/findings/{id} and GET /v1/findings with
# ?format=credwatch|ocsf|asff against a real `credwatch serve` (embedded store, loopback, stopped
# by its pid), and `credwatch scan --format`. Prints `ok - name` / `not ok - name`; exits
# non-zero if anything failed. Builds nothing.
. "$(dirname "$0")/lib.sh"
make_tmp
API_TMP=$TEST_TMP
. "$here/data/api_server.sh"
on_exit() { api_stop; }

# check NAME FILE PYTHON-EXPR: true when the expression holds of d, FILE's JSON
check() {
  if $PY - "$2" "$3" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1], 'rb'))
sys.exit(0 if eval(sys.argv[2]) else 1)
PYEOF
  then ok "$1"; else nok "$1 ($(head -c 300 "$2"))"; fi
}
# expect NAME STATUS PYTHON-EXPR: the last req's status and body
expect() {
  if [ "$STATUS" != "$2" ]; then nok "$1 (status $STATUS, want $2: $(head -c 300 "$API_TMP/body"))"; return; fi
  check "$1" "$API_TMP/body" "$3"
}

if [ ! -x "$BIN" ]; then nok "binary $BIN exists"; exit 1; fi
SAMPLE=$here/data/api_cloudtrail.json
FID=cwf-ASIAEXAMPLEKEY000001

# ---- credwatch scan --format ----
"$BIN" scan --quiet --format ocsf "$SAMPLE" >"$API_TMP/scan_ocsf" 2>"$API_TMP/scan_err"; rc=$?
[ $rc -eq 0 ] && [ "$(wc -l <"$API_TMP/scan_ocsf")" -eq 1 ] && ok "scan --format ocsf: exit 0, one line" ||
  nok "scan --format ocsf: exit 0, one line (exit $rc: $(cat "$API_TMP/scan_err"))"
check "scan --format ocsf: a Detection Finding of the finding" "$API_TMP/scan_ocsf" \
  "d['class_uid'] == 2004 and d['category_uid'] == 2 and d['type_uid'] == 200401 and \
d['finding_info']['uid'] == '$FID' and d['severity_id'] == 4 and d['status_id'] == 1 and \
d['metadata']['version'] == '1.8.0' and d['cloud']['account']['uid'] == '111122223333'"
"$BIN" scan --quiet --format asff "$SAMPLE" >"$API_TMP/scan_asff" 2>"$API_TMP/scan_err"; rc=$?
[ $rc -eq 0 ] && [ "$(wc -l <"$API_TMP/scan_asff")" -eq 1 ] && ok "scan --format asff: exit 0, one line" ||
  nok "scan --format asff: exit 0, one line (exit $rc: $(cat "$API_TMP/scan_err"))"
check "scan --format asff: an ASFF finding of the finding" "$API_TMP/scan_asff" \
  "d['SchemaVersion'] == '2018-10-08' and d['Id'] == '$FID' and d['AwsAccountId'] == '111122223333' and \
d['ProductArn'] == 'arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default' and \
d['Severity']['Label'] == 'HIGH' and d['Workflow']['Status'] == 'NEW' and len(d['Title']) <= 256"
"$BIN" scan --quiet --format credwatch "$SAMPLE" >"$API_TMP/scan_cw" 2>/dev/null
check "scan --format credwatch: the finding document" "$API_TMP/scan_cw" "d['id'] == '$FID' and 'class_uid' not in d"
"$BIN" scan --quiet --format xml "$SAMPLE" >"$API_TMP/scan_bad" 2>"$API_TMP/scan_err"; rc=$?
[ $rc -eq 2 ] && [ ! -s "$API_TMP/scan_bad" ] && grep -q 'credwatch, ocsf, asff' "$API_TMP/scan_err" &&
  ok "scan --format xml: exit 2 naming the accepted values" ||
  nok "scan --format xml: exit 2 naming the accepted values (exit $rc: $(cat "$API_TMP/scan_err"))"
"$BIN" scan --quiet "$SAMPLE" --format >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "scan --format without a value: exit 2" || nok "scan --format without a value: exit 2 (exit $rc)"

# A finding whose records name no account: from the role's ARN when there is one; with neither,
# ASFF cannot be made, the finding is reported on stderr and still counts for --fail-on-findings.
$PY - "$SAMPLE" "$API_TMP/noacct.json" "$API_TMP/noarn.json" <<'PYEOF'
import json, sys
recs = json.load(open(sys.argv[1]))['Records'][1:]   # no issuance: a key known by its marker only
for r in recs:
    r['userIdentity'].pop('accountId', None); r.pop('recipientAccountId', None)
json.dump({'Records': recs}, open(sys.argv[2], 'w'))
for r in recs:
    r['userIdentity'].pop('arn', None)
json.dump({'Records': recs}, open(sys.argv[3], 'w'))
PYEOF
"$BIN" scan --quiet --format asff "$API_TMP/noacct.json" >"$API_TMP/scan_noacct" 2>"$API_TMP/scan_err"
check "scan --format asff: no account id in the records, the role ARN's account" "$API_TMP/scan_noacct" \
  "d['AwsAccountId'] == '111122223333' and ':111122223333:product/' in d['ProductArn']"
"$BIN" scan --quiet --format asff --fail-on-findings "$API_TMP/noarn.json" >"$API_TMP/scan_noarn" 2>"$API_TMP/scan_err"; rc=$?
[ $rc -eq 1 ] && [ ! -s "$API_TMP/scan_noarn" ] && grep -q "finding $FID: cannot be shown in this format" "$API_TMP/scan_err" &&
  ok "scan --format asff, no account anywhere: said on stderr, and --fail-on-findings still exits 1" ||
  nok "scan --format asff, no account anywhere: said on stderr, and --fail-on-findings still exits 1 (exit $rc)"

# ---- the API ----
if ! api_start; then nok "server starts"; exit 1; fi
ok "server starts on 127.0.0.1:$API_PORT"
BI="Authorization: Bearer $API_TOKEN_INGEST"
BR="Authorization: Bearer $API_TOKEN_READ"
req POST /v1/ingest/cloudtrail -H "Content-Type: application/json" -H "$BI" --data-binary @"$SAMPLE"
expect "ingest the sample" 200 "d['findings'] == ['$FID']"

req GET "/v1/findings/$FID" -H "$BR"
expect "GET finding: credwatch by default" 200 "d['id'] == '$FID' and d['status'] == 'open' and 'class_uid' not in d"
cp "$API_TMP/body" "$API_TMP/default.json"
req GET "/v1/findings/$FID?format=credwatch" -H "$BR"
[ "$STATUS" = 200 ] && cmp -s "$API_TMP/body" "$API_TMP/default.json" && ok "GET finding ?format=credwatch: the same bytes" ||
  nok "GET finding ?format=credwatch: the same bytes (status $STATUS)"
req GET "/v1/findings/$FID?format=ocsf" -H "$BR"
expect "GET finding ?format=ocsf: Detection Finding, Create" 200 \
  "d['class_uid'] == 2004 and d['type_uid'] == 200401 and d['activity_id'] == 1 and d['finding_info']['uid'] == '$FID' \
and d['severity_id'] == 4 and d['status_id'] == 1 and d['evidences'][0]['src_endpoint']['ip'] == '198.51.100.7'"
req GET "/v1/findings/$FID?format=asff" -H "$BR"
expect "GET finding ?format=asff" 200 \
  "d['SchemaVersion'] == '2018-10-08' and d['Id'] == '$FID' and d['AwsAccountId'] == '111122223333' and \
d['GeneratorId'] and 1 <= len(d['Resources']) <= 32 and d['RecordState'] == 'ACTIVE'"
req GET "/v1/findings/$FID?format=xml" -H "$BR"
expect "GET finding ?format=xml: 400 invalid_format" 400 \
  "d['error']['code'] == 'invalid_format' and all(f in d['error']['message'] for f in ('credwatch', 'ocsf', 'asff'))"
req GET "/v1/findings/$FID?format" -H "$BR"
expect "GET finding ?format without a value: 400 invalid_format" 400 "d['error']['code'] == 'invalid_format'"

req GET "/v1/findings?format=ocsf" -H "$BR"
expect "list ?format=ocsf: the envelope, each item a Detection Finding" 200 \
  "set(d) == {'findings', 'next_cursor'} and len(d['findings']) == 1 and d['findings'][0]['class_uid'] == 2004 \
and d['findings'][0]['finding_info']['uid'] == '$FID'"
req GET "/v1/findings?format=asff&limit=1&status=open" -H "$BR"
expect "list ?format=asff with filters and paging" 200 \
  "d['next_cursor'] is None and [f['Id'] for f in d['findings']] == ['$FID'] and d['findings'][0]['SchemaVersion'] == '2018-10-08'"
req GET "/v1/findings?format=credwatch" -H "$BR"
expect "list ?format=credwatch: today's documents" 200 "d['findings'][0]['id'] == '$FID' and 'class_uid' not in d['findings'][0]"
req GET "/v1/findings?format=OCSF" -H "$BR"
expect "list ?format=OCSF: 400 invalid_format" 400 \
  "d['error']['code'] == 'invalid_format' and 'credwatch, ocsf, asff' in d['error']['message']"

# triage moves the OCSF activity and status and the ASFF workflow
req PATCH "/v1/findings/$FID" -H "$BR" -H "Content-Type: application/json" --data-binary '{"status":"resolved"}'
expect "PATCH resolved answers the credwatch document" 200 "d['status'] == 'resolved' and 'class_uid' not in d"
req GET "/v1/findings/$FID?format=ocsf" -H "$BR"
expect "after resolve, ocsf: Close, Resolved" 200 \
  "d['activity_id'] == 3 and d['type_uid'] == 200403 and d['status_id'] == 4 and d['is_alert'] is False"
req GET "/v1/findings/$FID?format=asff" -H "$BR"
expect "after resolve, asff: Workflow RESOLVED" 200 "d['Workflow']['Status'] == 'RESOLVED' and d['UpdatedAt'] > d['CreatedAt']"

# the finding with no account anywhere: its ASFF form does not exist (406), the list leaves it out
FID3=cwf-ASIAEXAMPLEKEY000003
sed 's/ASIAEXAMPLEKEY000001/ASIAEXAMPLEKEY000003/g' "$API_TMP/noarn.json" >"$API_TMP/noarn3.json"
req POST /v1/ingest/cloudtrail -H "Content-Type: application/json" -H "$BI" --data-binary @"$API_TMP/noarn3.json"
expect "ingest a finding with no account id" 200 "d['findings'] == ['$FID3']"
req GET "/v1/findings/$FID3?format=asff" -H "$BR"
expect "GET ?format=asff of a finding with no account: 406 format_unavailable" 406 \
  "d['error']['code'] == 'format_unavailable'"
req GET "/v1/findings/$FID3?format=ocsf" -H "$BR"
expect "the same finding in OCSF: 200" 200 "d['finding_info']['uid'] == '$FID3'"
req GET "/v1/findings?format=asff" -H "$BR"
expect "list ?format=asff leaves out the finding it cannot show" 200 "[f['Id'] for f in d['findings']] == ['$FID']"

api_stop
[ $fails -eq 0 ]
