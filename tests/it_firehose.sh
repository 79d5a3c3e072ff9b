#!/bin/sh
# it_firehose.sh — POST /v1/ingest/firehose: Amazon Data Firehose's HTTP endpoint delivery and CloudWatch
# Logs subscriptions, end to end. The work is done by tests/firehose_test.py (stdlib Python), which starts
# its own redis-server and credwatch instances on free loopback ports and stops them by pid: every form
# of record built from the fixtures, the answer's exact shape, findings equal to /v1/ingest/cloudtrail's,
# a re-send to another instance accepted 0, and the hostile cases. Builds nothing.
. "$(dirname "$0")/lib.sh"
make_tmp

if [ ! -x "$BIN" ]; then echo "not ok - binary $BIN exists"; exit 1; fi
if ! command -v redis-server >/dev/null 2>&1; then echo "not ok - redis-server is installed"; exit 1; fi

run_driver 300 "$PY" "$here/firehose_test.py" "$BIN" "$TEST_TMP" "$PIDFILE"
