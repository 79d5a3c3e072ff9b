#!/bin/sh
# it_openapi.sh — the server and openapi/openapi.json describe the same API: the routes the
# server answers (--print-routes, from the router's own table) are exactly the spec's
# operations, and live responses validate against the spec's schemas (tests/openapi_check.py).
. "$(dirname "$0")/lib.sh"
SPEC=$root/openapi/openapi.json
make_tmp
API_TMP=$TEST_TMP
. "$here/data/api_server.sh"
on_exit() { api_stop; }

if ! "$BIN" serve --print-routes >"$API_TMP/routes"; then
  echo "not ok - credwatch serve --print-routes"; exit 1
fi
echo "ok - credwatch serve --print-routes"
$PY "$here/openapi_check.py" routes "$SPEC" "$API_TMP/routes" || fails=$((fails + 1))

# AWS's ranges (a sample) are loaded: under the outside-AWS rules an address is only judged once it
# is known not to be AWS's (openapi_check.py's EC2 key).
if ! api_start CREDWATCH_MAX_BODY_BYTES=65536 CREDWATCH_AWS_IP_RANGES="$here/data/ip-ranges-sample.json"; then
  echo "not ok - server starts"; exit 1
fi
echo "ok - server starts"
$PY "$here/openapi_check.py" live "$SPEC" "$API_BASE" "$API_TOKEN_INGEST" "$API_TOKEN_READ" \
  "$here/data/api_cloudtrail.json" || fails=$((fails + 1))
[ $fails -eq 0 ]
