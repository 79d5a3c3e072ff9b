#!/bin/sh
# it_cluster.sh — credwatch on a real 3-master Redis Cluster (no replicas), loopback only:
#   1. the store contract (build/tests/test_store with CW_TEST_CLUSTER) passes on the cluster;
#   2. tests/cluster_test.py: 2 `credwatch serve` instances with CREDWATCH_REDIS_CLUSTER — many keys
#      across instances, the same batch twice, live resharding under ingest, a master SIGSTOPped and
#      a master SIGKILLed + restarted under ingest (each event acknowledged is counted once).
# The cluster lives in a temp dir on free ports; only the pids this script (and its driver) started
# are stopped. With CW_REDIS_TLS_DIR and CREDWATCH_REDIS_CA_FILE (tests/it_redis_tls.sh), the same over TLS:
# TLS ports only, the cluster bus too, rediss:// seeds. Prints `ok - name` / `not ok - name`; exits non-zero if anything failed. Builds nothing.
. "$(dirname "$0")/lib.sh"
STORE_TEST=$root/$BUILD/tests/test_store
make_tmp

if [ ! -x "$BIN" ]; then echo "not ok - binary $BIN exists"; exit 1; fi
if [ ! -x "$STORE_TEST" ]; then echo "not ok - $STORE_TEST exists"; exit 1; fi
if ! command -v redis-server >/dev/null 2>&1; then echo "not ok - redis-server is installed"; exit 1; fi

# Three ports whose cluster bus ports (port + 10000) are free too (lib.sh).
PORTS=$(cluster_ports)
set -- $PORTS
if [ $# -ne 3 ]; then echo "not ok - three free loopback ports"; exit 1; fi
P1=$1; P2=$2; P3=$3

# The second master keeps an fsync'd append-only file: the driver SIGKILLs and restarts it, and
# what it acknowledged must survive. The others need no persistence (they are only resharded).
start_node() { # port, extra args...
  port=$1; shift
  redis_start "$port" --cluster-enabled yes --cluster-config-file "nodes-$port.conf" "$@" || return 1
  echo "$REDIS_PID" >"$TEST_TMP/pid-$port"
}
if ! { start_node "$P1" --appendonly no &&
       start_node "$P2" --appendonly yes --appendfsync always --appenddirname "aof-$P2" &&
       start_node "$P3" --appendonly no; }; then
  nok "3 cluster-enabled redis-server nodes answer PING"; exit 1
fi

if ! $REDIS_CLI --cluster create "127.0.0.1:$P1" "127.0.0.1:$P2" "127.0.0.1:$P3" --cluster-replicas 0 \
     --cluster-yes >"$TEST_TMP/create.log" 2>&1; then
  nok "redis-cli --cluster create"; sed 's/^/#   /' "$TEST_TMP/create.log"; exit 1
fi
state=0
for _ in $(seq 100); do
  n=0
  for p in $P1 $P2 $P3; do $REDIS_CLI -p "$p" CLUSTER INFO 2>/dev/null | grep -q 'cluster_state:ok' && n=$((n + 1)); done
  [ "$n" -eq 3 ] && { state=1; break; }
  sleep 0.1
done
if [ "$state" -eq 1 ]; then
  ok "3-master cluster on 127.0.0.1:$P1,$P2,$P3: cluster_state:ok on every node"
else
  nok "cluster_state:ok on every node within 10 s"; exit 1
fi
SEEDS="127.0.0.1:$P1,127.0.0.1:$P2,127.0.0.1:$P3"
[ "$REDIS_SCHEME" = rediss ] && SEEDS="rediss://$SEEDS"

# 1. The store contract on the cluster (the suite's own ok/not ok lines are summarised here).
if CMOCKA_MESSAGE_OUTPUT=STDOUT CW_TEST_CLUSTER=$SEEDS CW_TEST_REDIS_CA=${CREDWATCH_REDIS_CA_FILE:-} timeout -k 5 120 "$STORE_TEST" >"$TEST_TMP/test_store.log" 2>&1; then
  n=$(grep -c '^\[       OK \]' "$TEST_TMP/test_store.log")
  ok "store contract on the cluster: test_store with CW_TEST_CLUSTER passes ($n tests incl. concurrent engines)"
else
  nok "store contract on the cluster (test_store with CW_TEST_CLUSTER)"; sed 's/^/#   /' "$TEST_TMP/test_store.log" | tail -40
fi
# what the last store test left behind would be counted by the service scenarios
for p in $P1 $P2 $P3; do $REDIS_CLI -p "$p" FLUSHALL >/dev/null 2>&1 || nok "FLUSHALL on $p"; done

# 2. Service-level scenarios. Bounded: the driver has per-request timeouts; this caps the run.
run_driver 200 "$PY" "$here/cluster_test.py" "$BIN" "$TEST_TMP" "$PIDFILE" "$P1,$P2,$P3" \
  "$(cat "$TEST_TMP/pid-$P1"),$(cat "$TEST_TMP/pid-$P2"),$(cat "$TEST_TMP/pid-$P3")" || fails=$((fails + 1))
[ "$fails" -eq 0 ]
