#!/bin/sh
# The S3 forwarder (deploy/aws/forwarder/forwarder.py) against a real `credwatch serve` on loopback and against a
# retry stub; see tests/forwarder_test.py. Needs Debian's python3 (standard library only: no boto3, no AWS).
. "$(dirname "$0")/lib.sh"
[ -x "$PY" ] || PY=python3
exec timeout -k 5 110 "$PY" "$here/forwarder_test.py" --binary "$BIN"
