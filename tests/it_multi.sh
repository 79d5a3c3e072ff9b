#!/bin/sh
# it_multi.sh — several `credwatch serve` instances over one real Redis: concurrent ingest of many
# keys across instances, duplicates and exactly-once under contention, a Redis SIGKILL/restart
# under load, and the SIGTERM drain. The work is done by tests/multi_test.py (stdlib Python),
# which starts its own redis-server and instances on free loopback ports and stops them by pid.
# Prints `ok - name` / `not ok - name`; exits non-zero if anything failed. Builds nothing.
. "$(dirname "$0")/lib.sh"
# Stop only what this script (and its driver) started: the driver, then every pid it recorded.
make_tmp

if [ ! -x "$BIN" ]; then echo "not ok - binary $BIN exists"; exit 1; fi
if ! command -v redis-server >/dev/null 2>&1; then echo "not ok - redis-server is installed"; exit 1; fi

# Bounded: the driver has its own per-request timeouts; this caps the whole run.
run_driver 240 "$PY" "$here/multi_test.py" "$BIN" "$TEST_TMP" "$PIDFILE"
