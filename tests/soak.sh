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
. "$(dirname "$0")/lib.sh"
SOAK_SECONDS=${SOAK_SECONDS:-600}
REDIS_RESTART_SECONDS=${REDIS_RESTART_SECONDS:-120}
export SOAK_SECONDS REDIS_RESTART_SECONDS
# Stop only what this script (and its driver) started: the driver, then every pid it recorded.
KEEP_TMP=${SOAK_KEEP:-0}
DRIVER_GRACE=2
DRIVER_KILL_AFTER=10
make_tmp

case "$SOAK_SECONDS$REDIS_RESTART_SECONDS" in *[!0-9]*)
  echo "not ok - SOAK_SECONDS and REDIS_RESTART_SECONDS are whole seconds"; exit 1 ;; esac
if [ "$SOAK_SECONDS" -lt 10 ] || [ "$REDIS_RESTART_SECONDS" -lt 5 ]; then
  echo "not ok - SOAK_SECONDS >= 10 and REDIS_RESTART_SECONDS >= 5"; exit 1
fi
if [ ! -x "$BIN" ]; then echo "not ok - binary $BIN exists"; exit 1; fi
if ! command -v redis-server >/dev/null 2>&1; then echo "not ok - redis-server is installed"; exit 1; fi

# Bounded: the load stops by itself after SOAK_SECONDS; the drain and the verification reads have
# their own limits; this caps the whole run at SOAK_SECONDS + 15 minutes.
run_driver $((SOAK_SECONDS + 900)) "$PY" "$here/soak.py" "$BIN" "$TEST_TMP" "$PIDFILE"
