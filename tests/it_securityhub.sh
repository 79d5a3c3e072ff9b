#!/bin/sh
# The Security Hub importer (deploy/aws/securityhub/handler.py) without AWS: fake boto3 clients, signatures good, bad
# and stale, Security Hub's answers mapped to 200/400/401/500, and (when built) credwatch's own webhook sink with
# FORMAT=asff posting through it; see tests/securityhub_test.py. Debian's python3 only: no boto3, no AWS.
. "$(dirname "$0")/lib.sh"
[ -x "$PY" ] || PY=python3
exec timeout -k 5 60 "$PY" "$here/securityhub_test.py" --binary "$BIN"
