#!/bin/sh
# The detection fixtures through `credwatch scan` and `credwatch serve`, and a SIGHUP reload of the
# AWS ranges under a running service (see tests/cases_e2e.py). Loopback only.
. "$(dirname "$0")/lib.sh"
CREDWATCH=${CREDWATCH:-$BIN}   # the binary of $BUILD, as every other script
export CREDWATCH
exec "$PY" "$here/cases_e2e.py"
