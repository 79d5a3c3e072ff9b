#!/bin/sh
# it_backup.sh — a backup of the durable store while it ingests (tests/backup_test.py): the copy, opened by a
# second server, holds every finding acknowledged before the backup started and nothing never acknowledged; one
# backup at a time. Loopback only; every process is stopped by its pid.
. "$(dirname "$0")/lib.sh"
make_tmp
if [ ! -x "$BIN" ]; then nok "binary $BIN exists"; exit 1; fi
run_driver 300 "$PY" "$here/backup_test.py" "$BIN" "$here/data/api_cloudtrail.json" "$TEST_TMP" "$PIDFILE"
