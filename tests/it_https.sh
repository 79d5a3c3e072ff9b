#!/bin/sh
# it_https.sh — `credwatch serve` over HTTPS (CREDWATCH_TLS_CERT/_KEY/_KEY_PASSWORD/_CLIENT_CA): bad start
# configurations, the API over HTTPS, protocol versions and suites, plain HTTP and stalled handshakes on the
# HTTPS port, SIGHUP reloads (good and bad files), mutual TLS. Certificates are made at run time with
# openssl. Driver: tests/https_test.py. Prints `ok - name` / `not ok - name`; exits non-zero on a failure.
. "$(dirname "$0")/lib.sh"
export BUILD
export CREDWATCH="${CREDWATCH:-$root/$BUILD/credwatch}"
if ! command -v openssl >/dev/null 2>&1; then
  skip "https" "openssl not installed (scripts/deps.sh test installs it)"
  exit 0
fi
make_tmp
export PIDFILE
run_driver 300 "$PY" "$here/https_test.py"
