#!/bin/sh
# it_durable.sh — the durable embedded store (issue 16, docs/durable-store.md section 7) seen from outside:
# inside evidence survives a restart (graceful and kill -9) and changes the verdict, with the memory store
# as the contrast; one process per data dir (the lock); a newer schema version refused at start; the
# crash test (20 kill -9 under ingest and triage, every acknowledged event, finding, status and note
# still there, verdicts equal to an uninterrupted run on the memory store). The work is done by
# tests/durable_test.py (stdlib Python), which starts its own `credwatch serve` processes on loopback and
# stops them by pid. Prints `ok - name` / `not ok - name`; exits non-zero if anything failed. Builds
# nothing. DURABLE_ROUNDS (20) and DURABLE_SEED (the clock) are passed through; the seed is printed.
. "$(dirname "$0")/lib.sh"
make_tmp

if [ ! -x "$BIN" ]; then echo "not ok - binary $BIN exists"; exit 1; fi
# the schema check edits the file with lmdb-utils (scripts/deps.sh test installs it)
command -v mdb_dump >/dev/null 2>&1 || echo "# mdb_dump not found: the schema check will fail (apt-get install -y lmdb-utils)"

# Bounded: the driver has its own per-request and per-start timeouts; this caps the whole run.
run_driver 420 "$PY" "$here/durable_test.py" "$BIN" "$TEST_TMP" "$PIDFILE" "$@"
