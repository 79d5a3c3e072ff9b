#!/bin/sh
# it_listing.sh — GET /v1/findings walked by cursor while findings are created, on a real Redis:
# no id twice in one walk (tests/listing_race.py starts its own redis-server and instance on
# loopback and stops them by pid). Prints `ok - name` / `not ok - name`.
. "$(dirname "$0")/lib.sh"
make_tmp
if [ ! -x "$BIN" ]; then echo "not ok - binary $BIN exists"; exit 1; fi
if ! command -v redis-server >/dev/null 2>&1; then echo "not ok - redis-server is installed"; exit 1; fi
run_driver 120 "$PY" "$here/listing_race.py" "$BIN" "$TEST_TMP" "$PIDFILE"
