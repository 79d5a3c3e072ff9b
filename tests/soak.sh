#!/bin/sh
# soak.sh — `make soak`: two `credwatch serve` instances over one redis-server (append-only file,
# fsync on every write) that is restarted every REDIS_RESTART_SECONDS, under a mixed load of ingest,
# duplicates, reads, triage and operations for SOAK_SECONDS; then checks that every acknowledged
# event is stored once, findings are neither lost nor doubled, and resident memory held steady.
# The work is done by tests/soak.py (stdlib Python), which starts its own processes on free
# loopback ports and stops them by pid. Prints a report and `ok - …` / `not ok - …` lines; exits
# non-zero if anything failed. Builds nothing (`make soak` builds first).
#   SOAK_SECONDS (600)  REDIS_RESTART_SECONDS (120)  SOAK_REDIS_DOWN_SECONDS (1)  SOAK_SEED
#   SOAK_KEEP=1 keeps the temporary directory (logs, Redis data) and prints its path.
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BIN=${CREDWATCH_BIN:-$root/$BUILD/credwatch}
PY=/usr/bin/python3
SOAK_SECONDS=${SOAK_SECONDS:-600}
REDIS_RESTART_SECONDS=${REDIS_RESTART_SECONDS:-120}
export SOAK_SECONDS REDIS_RESTART_SECONDS
SOAK_TMP=$(mktemp -d)
PIDFILE=$SOAK_TMP/pids
: >"$PIDFILE"
DRIVER=

# Stop only what this script (and its driver) started: the driver, then every pid it recorded.
cleanup() {
  if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then
    kill -TERM "$DRIVER" 2>/dev/null
    sleep 2
    kill -KILL "$DRIVER" 2>/dev/null
  fi
  while read -r pid; do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done <"$PIDFILE"
  if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "# kept $SOAK_TMP"; else rm -rf "$SOAK_TMP"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

case "$SOAK_SECONDS$REDIS_RESTART_SECONDS" in *[!0-9]*)
  echo "not ok - SOAK_SECONDS and REDIS_RESTART_SECONDS are whole seconds"; exit 1 ;; esac
if [ "$SOAK_SECONDS" -lt 10 ] || [ "$REDIS_RESTART_SECONDS" -lt 5 ]; then
  echo "not ok - SOAK_SECONDS >= 10 and REDIS_RESTART_SECONDS >= 5"; exit 1
fi
if [ ! -x "$BIN" ]; then echo "not ok - binary $BIN exists"; exit 1; fi
if ! command -v redis-server >/dev/null 2>&1; then echo "not ok - redis-server is installed"; exit 1; fi

# Bounded: the load stops by itself after SOAK_SECONDS; the drain and the verification reads have
# their own limits; this caps the whole run at SOAK_SECONDS + 15 minutes.
timeout -k 10 $((SOAK_SECONDS + 900)) "$PY" "$here/soak.py" "$BIN" "$SOAK_TMP" "$PIDFILE" &
DRIVER=$!
wait "$DRIVER"
rc=$?
DRIVER=
exit "$rc"
