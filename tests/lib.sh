# lib.sh — the prologue and helpers the integration scripts share (tests/it_*.sh, soak.sh,
# bench_serve.sh), sourced first thing:   . "$(dirname "$0")/lib.sh"
# POSIX sh: run_all.sh runs the scripts with `sh` (dash). Loopback only; every process these
# helpers stop is one the script (or its driver) started, by pid.
#
# Sets -u and BUILD (default build), here (tests/), root (the tree), BIN (CREDWATCH_BIN, else
# $root/$BUILD/credwatch), PY (Debian's python3), fails (0). Defines:
#   ok NAME | nok NAME | skip NAME WHY   one `ok - ` / `not ok - ` line; nok counts one in $fails
#   check NAME CMD...                    ok NAME when CMD succeeds, else nok NAME
#   make_tmp                             TEST_TMP, a private directory, and PIDFILE in it; on exit (and on
#                                        INT/TERM, which exit 1): on_exit (the script's own clean-up,
#                                        nothing unless it redefines it), then the driver, then every
#                                        pid in PIDFILE; TEST_TMP is removed unless KEEP_TMP=1
#   record_pid PID                       one more process for that clean-up to stop
#   run_driver LIMIT CMD...              CMD under `timeout LIMIT` (SIGKILL DRIVER_KILL_AFTER s later),
#                                        in the background so the clean-up can stop it; its status
#   free_port                            a loopback port nobody listens on now
#   wait_redis PORT                      until redis-server on PORT answers PING (10 s at most)
#   redis_start PORT [ARGS...]           a redis-server of our own on 127.0.0.1:PORT, files and log in
#                                        TEST_TMP, pid recorded (REDIS_PID); then wait_redis
#   CW_REDIS_TLS_DIR (environment)       a directory of tests/redis_tls_certs.sh: redis_start's server then
#                                        listens on a TLS port only (cluster bus too); REDIS_CLI is redis-cli with
#                                        the flags to reach it, REDIS_SCHEME redis or rediss (tests/it_redis_tls.sh)
#   serve_start [VAR=value...]           `credwatch serve` on 127.0.0.1 port 0 with that environment,
#                                        log in TEST_TMP/server.log, pid recorded (SERVE_PID); waits for its
#                                        "listening" line (10 s at most) and sets SERVE_PORT
#   cluster_ports                        three free loopback ports whose cluster bus ports (+10000) are free too
#   cluster_start P1 P2 P3               a 3-master Redis Cluster (no replicas, no persistence) on them, our
#                                        own redis-servers (pids recorded); until cluster_state:ok (10 s at most)
#   store_default [VAR=value...]         prints CREDWATCH_STORE=memory unless those assignments or the
#                                        environment choose a store (CREDWATCH_STORE, CREDWATCH_DATA_DIR, a
#                                        Redis URL or cluster): the scripts' servers start with a fresh, empty
#                                        store as they always did, while the product's default is durable.
#                                        Use it unquoted before the assignments: env $(store_default "$@") "$@" ...
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BIN=${CREDWATCH_BIN:-$root/$BUILD/credwatch}
PY=/usr/bin/python3
fails=0
DRIVER=
DRIVER_KILL_AFTER=5   # s between the driver's time limit and its SIGKILL
DRIVER_GRACE=1        # s the driver has to stop its own processes after SIGTERM at clean-up
TEST_TMP=
PIDFILE=

ok() { echo "ok - $1"; }
nok() { echo "not ok - $1"; fails=$((fails + 1)); }
skip() { echo "ok - $1 # SKIP $2"; }
check() {
  _lib_name=$1; shift
  if "$@"; then ok "$_lib_name"; else nok "$_lib_name"; fi
}

on_exit() { :; }

lib_exit() {
  on_exit
  if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then
    kill -TERM "$DRIVER" 2>/dev/null
    sleep "$DRIVER_GRACE"
    kill -KILL "$DRIVER" 2>/dev/null
  fi
  # SIGCONT first: a process a driver SIGSTOPped must not be left stopped if the kill fails.
  if [ -n "$PIDFILE" ] && [ -f "$PIDFILE" ]; then
    while read -r _lib_pid; do
      [ -n "$_lib_pid" ] && kill -0 "$_lib_pid" 2>/dev/null &&
        { kill -CONT "$_lib_pid" 2>/dev/null; kill -KILL "$_lib_pid" 2>/dev/null; }
    done <"$PIDFILE"
  fi
  if [ -n "$TEST_TMP" ]; then
    if [ "${KEEP_TMP:-0}" = 1 ]; then
      echo "# kept $TEST_TMP"
    else
      chmod -R u+w "$TEST_TMP" 2>/dev/null   # a test may have left read-only directories
      rm -rf "$TEST_TMP"
    fi
  fi
}

make_tmp() {
  TEST_TMP=$(mktemp -d)
  PIDFILE=$TEST_TMP/pids
  : >"$PIDFILE"
  trap lib_exit EXIT
  trap 'exit 1' INT TERM
}

record_pid() { echo "$1" >>"$PIDFILE"; }

run_driver() {
  _lib_limit=$1; shift
  timeout -k "$DRIVER_KILL_AFTER" "$_lib_limit" "$@" &
  DRIVER=$!
  wait "$DRIVER"
  _lib_rc=$?
  DRIVER=
  return "$_lib_rc"
}

free_port() {
  $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

REDIS_CLI=redis-cli
REDIS_SCHEME=redis
if [ -n "${CW_REDIS_TLS_DIR:-}" ]; then
  REDIS_CLI="redis-cli --tls --cacert $CW_REDIS_TLS_DIR/ca.crt"
  REDIS_SCHEME=rediss
fi

# redis-server's port arguments for PORT: plain, or its TLS port only (CW_REDIS_TLS_DIR)
redis_port_args() {
  if [ -z "${CW_REDIS_TLS_DIR:-}" ]; then echo "--port $1"; return; fi
  echo "--port 0 --tls-port $1 --tls-cert-file $CW_REDIS_TLS_DIR/server.crt --tls-key-file $CW_REDIS_TLS_DIR/server.key" \
       "--tls-ca-cert-file $CW_REDIS_TLS_DIR/ca.crt --tls-auth-clients no --tls-cluster yes --tls-replication yes"
}

wait_redis() {
  _lib_i=0
  until [ "$($REDIS_CLI -p "$1" ping 2>/dev/null)" = PONG ]; do
    _lib_i=$((_lib_i + 1))
    [ "$_lib_i" -gt 100 ] && return 1
    sleep 0.1
  done
  return 0
}

redis_start() {
  _lib_port=$1; shift
  # shellcheck disable=SC2046
  redis-server $(redis_port_args "$_lib_port") --bind 127.0.0.1 --save '' --protected-mode yes --dir "$TEST_TMP" "$@" \
    >>"$TEST_TMP/redis-$_lib_port.log" 2>&1 &
  REDIS_PID=$!
  record_pid "$REDIS_PID"
  wait_redis "$_lib_port"
}

cluster_ports() {
  $PY - <<'EOF'
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
got = []
r = random.Random()
for _ in range(2000):
    p = r.randint(20000, 55000)
    if p not in got and p + 10000 not in got and free(p) and free(p + 10000):
        got.append(p)
    if len(got) == 3:
        break
print(" ".join(map(str, got)))
EOF
}

cluster_start() {
  for _lib_p in "$@"; do
    redis_start "$_lib_p" --cluster-enabled yes --cluster-config-file "nodes-$_lib_p.conf" --appendonly no || return 1
  done
  $REDIS_CLI --cluster create "127.0.0.1:$1" "127.0.0.1:$2" "127.0.0.1:$3" --cluster-replicas 0 \
    --cluster-yes >"$TEST_TMP/cluster-create.log" 2>&1 || return 1
  _lib_i=0
  while [ "$_lib_i" -lt 100 ]; do
    _lib_n=0
    for _lib_p in "$@"; do
      $REDIS_CLI -p "$_lib_p" CLUSTER INFO 2>/dev/null | grep -q 'cluster_state:ok' && _lib_n=$((_lib_n + 1))
    done
    [ "$_lib_n" -eq 3 ] && return 0
    sleep 0.1
    _lib_i=$((_lib_i + 1))
  done
  return 1
}

store_default() {
  for _lib_kv in "$@"; do
    case "$_lib_kv" in
      CREDWATCH_STORE=?*|CREDWATCH_DATA_DIR=?*|CREDWATCH_REDIS_URL=?*|CREDWATCH_REDIS_CLUSTER=?*) return 0 ;;
    esac
  done
  [ -n "${CREDWATCH_STORE:-}${CREDWATCH_DATA_DIR:-}${CREDWATCH_REDIS_URL:-}${CREDWATCH_REDIS_CLUSTER:-}" ] && return 0
  echo CREDWATCH_STORE=memory
}

serve_start() {
  # The log is emptied here, by this shell, not by the redirection below: that one runs in the
  # background child, and the loop could read the port of a server started before (killed, its log
  # still there) ahead of it: a flake seen in it_cors under load (both requests to a dead port).
  : >"$TEST_TMP/server.log"
  # shellcheck disable=SC2046
  env CREDWATCH_LISTEN=127.0.0.1:0 $(store_default "$@") "$@" "$BIN" serve 2>"$TEST_TMP/server.log" &
  SERVE_PID=$!
  record_pid "$SERVE_PID"
  SERVE_PORT=
  _lib_i=0
  while [ $_lib_i -lt 100 ]; do
    SERVE_PORT=$(sed -n 's/.*"msg":"listening".*"port":\([0-9][0-9]*\).*/\1/p' "$TEST_TMP/server.log")
    [ -n "$SERVE_PORT" ] && return 0
    kill -0 "$SERVE_PID" 2>/dev/null || return 1
    sleep 0.1
    _lib_i=$((_lib_i + 1))
  done
  return 1
}
