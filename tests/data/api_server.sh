# api_server.sh — sourced by tests/it_api.sh and tests/it_openapi.sh (after lib.sh): start `credwatch
# serve` (the memory store unless the caller names one) on a free loopback port, stop it, make requests.
# POSIX sh.
#   api_start [extra env assignments...]  sets API_PID, API_PORT, API_BASE; log in $API_TMP/server.log
#   api_stop                              SIGKILL the server we started (cleanup only)
#   req METHOD PATH [curl args...]        sets STATUS; body in $API_TMP/body, headers in $API_TMP/headers
# The caller sets API_TMP (a private directory) and BIN.
API_TOKEN_INGEST=ingest-token-it-0123456789
API_TOKEN_READ=read-token-it-0123456789ab
API_PID=
API_START_TRIES=100   # x 0.1 s: how long the server may take to log "listening"

api_start() {
  : >"$API_TMP/server.log"
  # Port 0: the kernel picks a free port and the server logs it, so no port can be taken
  # between choosing it and binding it.
  # The memory store unless the caller chose one (store_default, lib.sh): a fresh, empty store per start.
  # shellcheck disable=SC2046
  env CREDWATCH_LISTEN=127.0.0.1:0 CREDWATCH_INGEST_TOKENS=$API_TOKEN_INGEST \
      CREDWATCH_READ_TOKENS=$API_TOKEN_READ CREDWATCH_THREADS=2 CREDWATCH_DRAIN_SECONDS=10 \
      $(store_default "$@") "$@" "$BIN" serve 2>"$API_TMP/server.log" &
  API_PID=$!
  i=0
  API_PORT=
  while [ $i -lt $API_START_TRIES ]; do
    API_PORT=$(sed -n 's/.*"msg":"listening".*"port":\([0-9][0-9]*\).*/\1/p' "$API_TMP/server.log")
    [ -n "$API_PORT" ] && break
    kill -0 "$API_PID" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
  done
  if [ -z "$API_PORT" ]; then
    echo "# server did not start:" >&2
    sed 's/^/#   /' "$API_TMP/server.log" >&2
    return 1
  fi
  API_BASE=http://127.0.0.1:$API_PORT
  return 0
}

api_stop() {
  if [ -n "$API_PID" ] && kill -0 "$API_PID" 2>/dev/null; then
    kill -KILL "$API_PID" 2>/dev/null
    wait "$API_PID" 2>/dev/null
  fi
  API_PID=
}

req() {
  _m=$1; _p=$2; shift 2
  STATUS=$(curl -s --max-time 15 -o "$API_TMP/body" -D "$API_TMP/headers" -w '%{http_code}' -X "$_m" "$@" \
    "$API_BASE$_p")
}
