#!/bin/sh
# it_delivery.sh — findings out, end to end: `credwatch serve` instances with webhook sinks over a real Redis
# (and the embedded store), real receivers (tests/sink_receiver.py) on loopback, and a count of every event
# lost: 1,000 findings over 3 instances and 2 sinks; receivers answering 500, 429, too slowly, down, 400
# (dead letters and their retry); an instance SIGKILLed and Redis restarted with deliveries in flight; a
# wrong secret (401). The work is done by tests/delivery_test.py (stdlib Python), which stops what it starts
# by pid. Prints `ok - name` / `not ok - name`; exits non-zero if anything failed. Builds nothing.
# DELIVERY_FINDINGS sets scenario A's count (default 1000), DELIVERY_ONLY a subset of the scenarios (ABCD).
. "$(dirname "$0")/lib.sh"
make_tmp

if [ ! -x "$BIN" ]; then echo "not ok - binary $BIN exists"; exit 1; fi
if ! command -v redis-server >/dev/null 2>&1; then echo "not ok - redis-server is installed"; exit 1; fi

# Bounded: every wait in the driver has its deadline; this caps the whole run.
run_driver 330 "$PY" "$here/delivery_test.py" "$BIN" "$TEST_TMP" "$PIDFILE"
