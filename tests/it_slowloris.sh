#!/bin/sh
# it_slowloris.sh — slow and greedy clients (trickled headers, unfinished bodies, idle and surplus
# connections; CREDWATCH_CONNECTION_TIMEOUT_S=3) and overload (a flood of large batches over
# CREDWATCH_MAX_INFLIGHT_INGEST: 200 or 503 + Retry-After, p99 well under the senders' 5 s).
# Driver: tests/hostile_test.py. Prints `ok - name` / `not ok - name`; non-zero exit on failure.
. "$(dirname "$0")/lib.sh"
export BUILD
export CREDWATCH="${CREDWATCH:-$root/$BUILD/credwatch}"
exec "$PY" "$here/hostile_test.py" slowloris overload
