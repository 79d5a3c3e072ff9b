#!/bin/sh
# bench_delivery.sh — getting findings out (issue 12), `credwatch serve` on a real Redis of its own with
# webhook sinks at tests/sink_receiver.py, all on loopback (driver: tests/bench_delivery.py):
#   1. delivery latency: single-finding CloudTrail batches paced at 100 findings/s for 20 s, each finding
#      timed from the ingest POST's 200 to the receiver's receive time; p50 and p99 (target p99 <= 1 s),
#      beside the ingest POST's own round trip. The ingest wakes the instance's idle delivery threads
#      (snk_run_kick); other instances' events wait for the poll (SNK_RUN_POLL_MS, 200 ms).
#   2. ingest throughput with two webhook sinks against none, in the same run, alternating: 1,000-record
#      batches over 4 keep-alive connections (wrk and tests/bench/, as bench_serve.sh), 5 rounds of three
#      5 s runs: no sinks, queueing only (an outbox group, no sink here), two webhook sinks; medians
#      (target: with sinks >= 0.95 x without), and CPU per record of credwatch + Redis (load-independent);
#      delivery runs below ingest's priority, so the time its backlog takes to drain after each run is
#      reported beside it. The receivers run at nice 19 (they stand for other machines).
# One `delivery:` line per figure. About 2 minutes; bounded by `timeout`. Every process is ours, stopped by
# pid. The machine is shared: compare the ratios. Exits non-zero when a request failed, a finding was
# not delivered or a tool is missing; a missed target is reported, not fatal.
# Settings: DELIV_RATE (100), DELIV_SECONDS (20), DELIV_TPUT_RUNS (5), DELIV_TPUT_SECONDS (5).
. "$(dirname "$0")/lib.sh"
make_tmp
for tool in wrk redis-server; do
  command -v "$tool" >/dev/null 2>&1 || { echo "delivery: $tool is not installed (scripts/deps.sh bench)"; exit 1; }
done
[ -x "$BIN" ] || { echo "delivery: $BIN is missing (make)"; exit 1; }
echo "delivery: machine load average at the start (1/5/15 min): $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
run_driver 600 "$PY" "$here/bench_delivery.py" "$BIN" "$TEST_TMP" "$PIDFILE"
rc=$?
[ "$rc" -eq 124 ] && echo "delivery: the benchmark did not finish within 600 s"
exit $rc
