#!/bin/sh
# The detection fixtures through `credwatch scan` and `credwatch serve`, and a SIGHUP reload of the
# AWS ranges under a running service (see tests/cases_e2e.py). Loopback only.
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/cases_e2e.py"
