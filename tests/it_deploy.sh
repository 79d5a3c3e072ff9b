#!/bin/sh
# Deployment artefacts (deploy/): what can be proven without Docker, AWS or a Kubernetes API server.
#
#  1. tests/data/deploy_check.py: every YAML/JSON parses; the Dockerfile's stages, user, entrypoint, HEALTHCHECK and
#     ip-ranges arguments and /data (the durable store's volume); compose + HAProxy, compose.single.yaml (one replica,
#     the volume); Kubernetes objects (probes, securityContext, grace period >= preStop + drain, selectors) and the
#     kubernetes-single overlay (one replica, Recreate, the PVC at /data; rendered with `kubectl kustomize` if present); the three CloudFormation templates (references, cycles, parameters and, with the npm
#     CloudFormation specification, every property); the Terraform modules (references, twin of the templates and,
#     with npm @cdktf/hcl2json, HashiCorp's own HCL parser); the EventBridge pattern against sample events; the
#     dashboard's and alerts' metric names (the per-sink delivery alerts among them); the Security Hub importer's
#     least privilege (one product ARN, one secret) and public function URL.
#     Optional, when installed: cfn-lint on the templates, terraform fmt -check, promtool on the alert rules.
#  2. The EventBridge rule against every workload's issuance (issue 14, docs/workloads.md 5.4): the records of
#     tests/data/workload-shapes.json, wrapped as EventBridge delivers them, through deploy_check.py's matcher
#     (EventBridge's exact-match-in-list, prefix, nested objects and $or), for the CloudFormation and the Terraform
#     pattern alike: every issuance (Lambda, ECS, EC2, EKS Pod Identity, IRSA) and every role-session use is taken,
#     and a CodeBuild issuance, an IAM user's AssumeRole and non-workload records are not.
#  2b. The Firehose paths (issue 15), tests/data/deploy_firehose_check.py: firehose-cloudwatch.yaml and
#     firehose-eventbridge.yaml (structure as above; the stream's HTTP endpoint, access key only in Secrets Manager,
#     FailedDataOnly backup, retry duration, buffering within credwatch's body cap, GZIP, error logging, the two
#     templates' shared parts equal, least-privilege roles), the EventBridge pattern equal to event-pattern.json, the
#     CloudWatch Logs filter pattern (same text in both tools, <= 1,024 characters) run by a matcher of its JSON filter
#     syntax over the workload shapes and non-workload records against the EventBridge pattern, terraform/firehose's
#     references, resources and defaults. With terraform and a local AWS provider mirror
#     (CREDWATCH_TF_PLUGIN_DIR, default /opt/tf-plugins when present; no registry download): terraform validate and
#     terraform test (mock provider, tests/sources.tftest.hcl) on a copy of terraform/firehose.
#  3. The image's runtime layout: the Dockerfile's ENTRYPOINT + CMD, run as an unprivileged user (uid 65534) with the
#     binary in a read-only directory and, where mount namespaces work (root), the whole root filesystem read-only
#     but for the image's /data (its volume), where the default store, the durable one, must write;
#     the HEALTHCHECK probe (deploy/docker/healthcheck.c) must pass on /healthz, and SIGTERM must end it with 0.
#
# Not covered here (no Docker daemon, no AWS account, no cluster): building the image (`docker build`), running the
# compose stack, `cfn-lint`/`terraform validate` with real provider schemas, `kubectl apply --dry-run=server`.
#
# Optional tools (CloudFormation spec, HCL parser) are installed from npm into build/deploy-tools (gitignored);
# without npm or the registry their checks print a skip with the reason. Loopback only; every wait is bounded.
. "$(dirname "$0")/lib.sh"
make_tmp
pid=""
on_exit() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; fi
}

if ! $PY -c 'import yaml' 2>/dev/null; then
  nok "python3-yaml is installed (scripts/deps.sh test installs it)"
  exit 1
fi

# ---- optional npm tools ---------------------------------------------------------------------------------------------
tools="$root/$BUILD/deploy-tools"
cfnspec_pkg="@aws-cdk/cfnspec@2.72.1"
hcl_pkg="@cdktf/hcl2json@0.21.0"
spec="$tools/node_modules/@aws-cdk/cfnspec/spec/specification.json"
hcl="$tools/node_modules/@cdktf/hcl2json"
tool_note=""
if [ "${CREDWATCH_DEPLOY_NPM:-1}" = 0 ]; then
  tool_note="CREDWATCH_DEPLOY_NPM=0"
else
  if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "# installing nodejs npm (Debian) for the optional CloudFormation and HCL checks"
    DEBIAN_FRONTEND=noninteractive timeout 300 sh -c \
      'apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm' >"$TEST_TMP/apt.log" 2>&1 ||
      echo "# apt-get install nodejs npm failed: $(tail -n 1 "$TEST_TMP/apt.log")"
  fi
  if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    tool_note="node/npm not available"
  elif [ ! -f "$spec" ] || [ ! -f "$hcl/package.json" ]; then
    mkdir -p "$tools"
    # a closed network must cost seconds, not npm's two minutes of retries
    if ! timeout 15 npm ping --fetch-timeout=5000 --fetch-retries=0 >"$TEST_TMP/npm.log" 2>&1; then
      tool_note="the npm registry does not answer (npm ping failed in 15 s)"
    elif ! timeout 120 npm install --prefix "$tools" --no-audit --no-fund --no-save --loglevel=error \
         "$cfnspec_pkg" "$hcl_pkg" >"$TEST_TMP/npm.log" 2>&1; then
      tool_note="npm install failed (registry unreachable?): $(tail -n 1 "$TEST_TMP/npm.log")"
    fi
  fi
fi
[ -n "$tool_note" ] && echo "# optional linters unavailable: $tool_note"

args=""
[ -f "$spec" ] && args="--cfn-spec $spec"
if [ -f "$hcl/package.json" ] && command -v node >/dev/null 2>&1; then
  # Parse every .tf with HashiCorp's HCL parser (compiled to WebAssembly): <out>/<module>/<file>.json or .error.
  if HCL_PKG="$hcl" OUT="$TEST_TMP/hcl" TF_ROOT="$root/deploy/aws/terraform" timeout 60 node -e '
    const { parse } = require(process.env.HCL_PKG);
    const fs = require("fs"), path = require("path");
    (async () => {
      for (const mod of fs.readdirSync(process.env.TF_ROOT)) {
        const dir = path.join(process.env.TF_ROOT, mod);
        if (!fs.statSync(dir).isDirectory()) continue;
        const out = path.join(process.env.OUT, mod);
        fs.mkdirSync(out, { recursive: true });
        for (const f of fs.readdirSync(dir).filter((n) => n.endsWith(".tf"))) {
          try {
            const doc = await parse(f, fs.readFileSync(path.join(dir, f), "utf8"));
            fs.writeFileSync(path.join(out, f + ".json"), JSON.stringify(doc));
          } catch (e) {
            fs.writeFileSync(path.join(out, f + ".error"), String(e));
          }
        }
      }
    })().catch((e) => { console.error(e); process.exit(1); });' 2>"$TEST_TMP/hcl.log"; then
    args="$args --hcl-json $TEST_TMP/hcl"
  else
    echo "# HCL parser failed to run: $(tail -n 1 "$TEST_TMP/hcl.log")"
  fi
fi

# ---- structural checks ----------------------------------------------------------------------------------------------
# shellcheck disable=SC2086
$PY "$root/tests/data/deploy_check.py" $args || fails=$((fails + 1))

# ---- the Firehose paths (issue 15) ----------------------------------------------------------------------------------
fh_args=""
[ -f "$spec" ] && fh_args="--cfn-spec $spec"
# shellcheck disable=SC2086
$PY "$root/tests/data/deploy_firehose_check.py" $fh_args || fails=$((fails + 1))

# terraform validate / test need the AWS provider: only from a local mirror (a registry download is not a test step).
tf_plugins=${CREDWATCH_TF_PLUGIN_DIR:-/opt/tf-plugins}
if ! command -v terraform >/dev/null 2>&1; then
  skip "terraform validate and terraform test: terraform/firehose" "terraform not installed"
elif [ ! -d "$tf_plugins/registry.terraform.io/hashicorp/aws" ]; then
  skip "terraform validate and terraform test: terraform/firehose" \
    "no local AWS provider mirror at $tf_plugins (set CREDWATCH_TF_PLUGIN_DIR; terraform providers mirror DIR makes one)"
else
  tfdir="$TEST_TMP/tf-firehose"
  mkdir -p "$tfdir" && cp -R "$root/deploy/aws/terraform/firehose/." "$tfdir/"
  if (cd "$tfdir" && TF_IN_AUTOMATION=1 timeout 120 terraform init -input=false -backend=false -no-color \
        -plugin-dir="$tf_plugins") >"$TEST_TMP/tf-init.log" 2>&1; then
    if (cd "$tfdir" && timeout 120 terraform validate -no-color) >"$TEST_TMP/tf-validate.log" 2>&1; then
      tf_aws=$(find "$tf_plugins/registry.terraform.io/hashicorp/aws" -mindepth 1 -maxdepth 1 -exec basename {} \; | sort | tr '\n' ' ')
      ok "terraform validate: terraform/firehose against the provider schema (aws ${tf_aws% })"
    else
      nok "terraform validate: terraform/firehose"; sed 's/^/#   /' "$TEST_TMP/tf-validate.log" | tail -n 20
    fi
    if (cd "$tfdir" && timeout 300 terraform test -no-color) >"$TEST_TMP/tf-test.log" 2>&1; then
      ok "terraform test: terraform/firehose plans both sources with a mock provider ($(grep -o '[0-9]* passed' "$TEST_TMP/tf-test.log" | tail -n 1))"
    else
      nok "terraform test: terraform/firehose"; grep -v terraformrc "$TEST_TMP/tf-test.log" | sed 's/^/#   /' | tail -n 30
    fi
  else
    skip "terraform validate and terraform test: terraform/firehose" \
      "terraform init from $tf_plugins failed: $(grep -m1 -i error "$TEST_TMP/tf-init.log")"
  fi
fi

# ---- the EventBridge pattern against every workload's issuance ------------------------------------------------------
# deploy_check.py already compares the two patterns and runs deploy_samples.json through them; this takes the
# per-workload record shapes (tests/data/workload-shapes.json) through the same matcher.
ROOT="$root" $PY - <<'EOF' || fails=$((fails + 1))
import copy
import json
import os
import sys

root = os.environ["ROOT"]
sys.path.insert(0, os.path.join(root, "tests", "data"))
import deploy_check as dc  # noqa: E402  (pattern_matches: EventBridge content filtering, the operators used here)

failed = 0


def result(good, name, why=""):
    global failed
    if good:
        print("ok - " + name)
    else:
        failed += 1
        print("not ok - " + name + (" (%s)" % why if why else ""))


cfn_path = os.path.join(root, "deploy", "aws", "cloudformation", "eventbridge.yaml")
tf_path = os.path.join(root, "deploy", "aws", "terraform", "eventbridge", "event-pattern.json")
shapes_path = os.path.join(root, "tests", "data", "workload-shapes.json")
try:
    cfn = dc.load_yaml_all(cfn_path, cfn=True)[0]["Resources"]["Rule"]["Properties"]["EventPattern"]
    with open(tf_path, encoding="utf-8") as f:
        tf = json.load(f)
    with open(shapes_path, encoding="utf-8") as f:
        shapes = json.load(f)["shapes"]
except Exception as e:  # a YAML or JSON syntax error, or the rule moved
    result(False, "workload patterns: eventbridge.yaml, event-pattern.json and workload-shapes.json parse", repr(e))
    sys.exit(1)
result(cfn == tf, "workload patterns: eventbridge.yaml's EventPattern and event-pattern.json are identical")
patterns = (("CloudFormation", cfn), ("Terraform", tf))


def envelope(rec):
    """A CloudTrail record as the default bus delivers it: source aws.<service>, the record as detail."""
    return {"version": "0", "id": "0f1e2d3c-0000-4000-8000-0000000000aa", "detail-type": "AWS API Call via CloudTrail",
            "source": "aws." + rec["eventSource"].split(".")[0],
            "account": rec.get("recipientAccountId", "111122223333"), "time": rec["eventTime"],
            "region": rec["awsRegion"], "resources": [], "detail": rec}


def taken(rec):
    """[taken by the CloudFormation pattern, taken by the Terraform pattern]"""
    ev = envelope(rec)
    return [dc.pattern_matches(p, ev) for _, p in patterns]


def must_take(shape):
    """What the rule is for: every issuance of a workload key (the shapes' expect.evidence), every
    AssumeRoleWithWebIdentity whatever its provider (credwatch keeps only EKS ones; GitHub Actions and the failed call
    are forwarded too), and every use of a temporary key by a role session. Nothing else."""
    rec = shape["record"]
    ui = rec.get("userIdentity") or {}
    if shape["expect"].get("evidence") == "issuance" or rec.get("eventName") == "AssumeRoleWithWebIdentity":
        return True
    return ui.get("type") == "AssumedRole" and str(ui.get("accessKeyId", "")).startswith("ASIA")


issuers = set()
for shape in shapes:
    rec = shape["record"]
    want = must_take(shape)
    got = taken(rec)
    result(got == [want, want], "event pattern %s workload shape: %s" % ("takes" if want else "ignores", shape["name"]),
           "CloudFormation %s, Terraform %s" % tuple("takes" if g else "ignores" for g in got))
    if shape["expect"].get("evidence") == "issuance" and all(got):
        issuers.add((rec.get("userIdentity") or {}).get("invokedBy") or rec["eventName"])
want_issuers = {"lambda.amazonaws.com", "ecs-tasks.amazonaws.com", "ec2.amazonaws.com", "pods.eks.amazonaws.com",
                "AssumeRoleWithWebIdentity"}
result(issuers == want_issuers,
       "event pattern takes an issuance of every workload issuer (%s)" % ", ".join(sorted(want_issuers)),
       "taken: %s" % sorted(issuers))

# Records the rule must not take, built from the ECS issuance shape (only the fields the pattern reads differ).
base = next(s["record"] for s in shapes
            if (s["record"].get("userIdentity") or {}).get("invokedBy") == "ecs-tasks.amazonaws.com")


def variant(**fields):
    rec = copy.deepcopy(base)
    rec.update(fields)
    return rec


negatives = [
    # Hypothetical: no public sample of CodeBuild's issuance record exists (docs/workloads.md 1.7, 5.6); this is the
    # form it would take if CodeBuild wrote itself like the other services. The rule leaves it out until captured.
    ("a CodeBuild issuance (AssumeRole invokedBy codebuild.amazonaws.com)",
     variant(userIdentity={"type": "AWSService", "invokedBy": "codebuild.amazonaws.com"},
             sourceIPAddress="codebuild.amazonaws.com", userAgent="codebuild.amazonaws.com",
             requestParameters={"roleArn": "arn:aws:iam::111122223333:role/build-service-role",
                                "roleSessionName": "AWSCodeBuild-7c2e9a41-0000-4000-8000-000000000001"})),
    ("an IAM user's AssumeRole with a long-term key (AKIA)",
     variant(userIdentity={"type": "IAMUser", "principalId": "AIDAEXAMPLEUSERID001",
                           "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333",
                           "accessKeyId": "AKIAQEXAMPLEUSER0001", "userName": "alice"},
             sourceIPAddress="198.51.100.7", userAgent="aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 exe/x86_64.ubuntu.22",
             requestParameters={"roleArn": "arn:aws:iam::111122223333:role/admin", "roleSessionName": "alice"})),
    ("an IAM user's AssumeRole with a session key of its own (ASIA, GetSessionToken)",
     variant(userIdentity={"type": "IAMUser", "principalId": "AIDAEXAMPLEUSERID001",
                           "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333",
                           "accessKeyId": "ASIAQEXAMPLEUSER0002", "userName": "alice",
                           "sessionContext": {"attributes": {"creationDate": "2018-11-28T22:00:00Z",
                                                             "mfaAuthenticated": "true"}}},
             sourceIPAddress="198.51.100.7", userAgent="aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 exe/x86_64.ubuntu.22",
             requestParameters={"roleArn": "arn:aws:iam::111122223333:role/admin", "roleSessionName": "alice"})),
]
for name, rec in negatives:
    got = taken(rec)
    result(got == [False, False], "event pattern ignores " + name,
           "CloudFormation %s, Terraform %s" % tuple("takes" if g else "ignores" for g in got))
sys.exit(1 if failed else 0)
EOF

# ---- optional validators from Debian, when present (not installed here: haproxy and prometheus are large) ------
if command -v haproxy >/dev/null 2>&1; then
  if haproxy -c -f "$root/deploy/haproxy/haproxy.cfg" >"$TEST_TMP/haproxy.log" 2>&1; then
    ok "haproxy -c accepts deploy/haproxy/haproxy.cfg"
  else
    nok "haproxy -c accepts deploy/haproxy/haproxy.cfg"; sed 's/^/#   /' "$TEST_TMP/haproxy.log"
  fi
else
  skip "haproxy -c accepts deploy/haproxy/haproxy.cfg" "haproxy not installed (apt-get install haproxy)"
fi
if command -v promtool >/dev/null 2>&1; then
  if promtool check rules "$root/deploy/observability/prometheus-rules.yaml" >"$TEST_TMP/promtool.log" 2>&1 &&
     (cd "$root/tests/data" && promtool test rules deploy_prometheus_rules_test.yaml) >>"$TEST_TMP/promtool.log" 2>&1; then
    ok "promtool checks the alert rules and their unit tests pass"
  else
    nok "promtool checks the alert rules and their unit tests pass"; sed 's/^/#   /' "$TEST_TMP/promtool.log" | tail -n 30
  fi
else
  skip "promtool checks the alert rules and their unit tests pass" "promtool not installed (apt-get install prometheus)"
fi

if command -v cfn-lint >/dev/null 2>&1; then
  if cfn-lint "$root"/deploy/aws/cloudformation/*.yaml >"$TEST_TMP/cfn-lint.log" 2>&1; then
    ok "cfn-lint accepts every CloudFormation template"
  else
    nok "cfn-lint accepts every CloudFormation template"; sed 's/^/#   /' "$TEST_TMP/cfn-lint.log" | tail -n 30
  fi
else
  skip "cfn-lint accepts every CloudFormation template" "cfn-lint not installed (pip install cfn-lint)"
fi
if command -v terraform >/dev/null 2>&1; then
  # fmt needs no provider plugins (validate would: not run here)
  if terraform fmt -check -recursive "$root/deploy/aws/terraform" >"$TEST_TMP/tffmt.log" 2>&1; then
    ok "terraform fmt -check: the Terraform modules are formatted"
  else
    nok "terraform fmt -check: the Terraform modules are formatted"; sed 's/^/#   /' "$TEST_TMP/tffmt.log" | tail -n 20
  fi
else
  skip "terraform fmt -check: the Terraform modules are formatted" "terraform not installed"
fi

# ---- the image's runtime layout -------------------------------------------------------------------------------------
bin="$root/$BUILD/credwatch"
http_status() { # url -> status code or 000
  curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || true
}

layout="$TEST_TMP/rootfs"
mkdir -p "$layout/usr/local/bin" "$layout/usr/share/credwatch"
if cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror \
     -o "$layout/usr/local/bin/credwatch-healthcheck" "$root/deploy/docker/healthcheck.c" -lgnutls 2>"$TEST_TMP/cc.log"; then
  ok "healthcheck probe compiles with the project's warning flags"
else
  nok "healthcheck probe compiles with the project's warning flags"
  sed 's/^/#   /' "$TEST_TMP/cc.log"
fi
probe="$layout/usr/local/bin/credwatch-healthcheck"

if [ -x "$probe" ]; then
  closed=$(free_port)
  env -i CREDWATCH_LISTEN="127.0.0.1:$closed" "$probe" /healthz 2>/dev/null
  rc=$?
  if [ "$rc" -eq 1 ]; then ok "healthcheck probe exits 1 when nothing listens"; else nok "healthcheck probe exits 1 when nothing listens (got $rc)"; fi
  env -i CREDWATCH_LISTEN="nonsense" "$probe" /healthz 2>/dev/null
  rc=$?
  if [ "$rc" -eq 2 ]; then ok "healthcheck probe exits 2 on an unparsable address"; else nok "healthcheck probe exits 2 on an unparsable address (got $rc)"; fi
fi

if [ ! -x "$bin" ]; then
  skip "image runtime layout" "$BUILD/credwatch not built (make builds it)"
elif [ ! -x "$probe" ]; then
  nok "image runtime layout (no probe)"
else
  cp "$bin" "$layout/usr/local/bin/credwatch"
  cp "$root/tests/data/deploy_ip-ranges.json" "$layout/usr/share/credwatch/ip-ranges.json"
  chmod 0555 "$layout/usr/local/bin/credwatch" "$probe"
  chmod 0444 "$layout/usr/share/credwatch/ip-ranges.json"
  find "$layout" -type d -exec chmod 0555 {} +
  chmod 0755 "$TEST_TMP"
  # The image's /data: its own writable directory (a volume in a container), owned by the service's user, a mount of
  # its own in the read-only namespace below (bound before / is remounted read-only, so it stays writable).
  chmod 0755 "$layout"
  mkdir -m 0700 "$layout/data"
  chmod 0555 "$layout"
  if [ "$(id -u)" -eq 0 ]; then chown 65534:65534 "$layout/data"; fi
  # The Dockerfile's ENTRYPOINT + CMD and ENV, with image paths mapped into the layout.
  set --
  for a in $($PY "$root/tests/data/deploy_check.py" --entrypoint); do
    case "$a" in /*) set -- "$@" "$layout$a" ;; *) set -- "$@" "$a" ;; esac
  done
  image_env=$($PY "$root/tests/data/deploy_check.py" --env)
  drain=$(echo "$image_env" | sed -n 's/^CREDWATCH_DRAIN_SECONDS=//p')
  drain=${drain:-20}
  port=$(free_port)
  # Image ENV first, then the test's: loopback instead of 0.0.0.0, ip-ranges path mapped, throwaway tokens.
  envs=""
  for kv in $image_env; do
    case "$kv" in
      CREDWATCH_LISTEN=*) ;;
      CREDWATCH_AWS_IP_RANGES=*) envs="$envs CREDWATCH_AWS_IP_RANGES=$layout${kv#CREDWATCH_AWS_IP_RANGES=}" ;;
      CREDWATCH_DATA_DIR=*) envs="$envs CREDWATCH_DATA_DIR=$layout${kv#CREDWATCH_DATA_DIR=}" ;;
      *) envs="$envs $kv" ;;
    esac
  done
  envs="$envs CREDWATCH_LISTEN=127.0.0.1:$port CREDWATCH_INGEST_TOKENS=it-deploy-ingest-token-0001"
  envs="$envs CREDWATCH_READ_TOKENS=it-deploy-read-token-0001 PATH=/usr/bin:/bin"
  runas="setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs"
  if ! command -v setpriv >/dev/null 2>&1; then runas=""; fi
  if [ "$(id -u)" -ne 0 ]; then runas=""; fi
  ro="no"
  if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1 &&
     unshare -m sh -c 'mount -o remount,bind,ro / && ! touch /.credwatch-ro-probe' 2>/dev/null; then
    ro="yes"
  fi
  log="$TEST_TMP/serve.log"
  if [ "$ro" = yes ]; then
    # A private mount namespace: / (and /tmp, /dev/shm, the layout when they are separate mounts) read-only.
    # shellcheck disable=SC2086
    env -i $envs unshare -m sh -c '
      mount --bind "$1/data" "$1/data" || exit 97
      mount -o remount,bind,ro / || exit 97
      for m in /tmp /dev/shm "$1"; do
        if mountpoint -q "$m"; then mount -o remount,bind,ro "$m" || exit 97; fi
      done
      shift; exec "$@"' sh "$layout" $runas "$@" >"$log" 2>&1 &
    pid=$!
  else
    # shellcheck disable=SC2086
    env -i $envs $runas "$@" >"$log" 2>&1 &
    pid=$!
  fi
  desc="as uid $( [ -n "$runas" ] && echo 65534 || id -u ), read-only root: $ro"
  up=no
  i=0
  while [ $i -lt 100 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    if [ "$(http_status "http://127.0.0.1:$port/healthz")" = 200 ]; then up=yes; break; fi
    sleep 0.1; i=$((i + 1))
  done
  if [ "$up" = yes ]; then
    ok "image entrypoint '$*' serves /healthz ($desc)"
  else
    nok "image entrypoint '$*' serves /healthz ($desc)"
    sed 's/^/#   /' "$log" | tail -n 20
  fi
  if [ "$up" = yes ]; then
    uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    if [ -n "$runas" ]; then
      if [ "$uid" = 65534 ]; then ok "the service process runs as uid 65534, not root"; else nok "the service process runs as uid 65534, not root (uid $uid)"; fi
    else
      skip "the service process runs as an unprivileged user" "not root: cannot switch users"
    fi
    if env -i CREDWATCH_LISTEN="127.0.0.1:$port" "$probe" /healthz 2>"$TEST_TMP/probe.err"; then
      ok "HEALTHCHECK command (credwatch-healthcheck /healthz) passes"
    else
      nok "HEALTHCHECK command (credwatch-healthcheck /healthz) passes"; sed 's/^/#   /' "$TEST_TMP/probe.err"
    fi
    if env -i CREDWATCH_LISTEN="0.0.0.0:$port" "$probe" /healthz 2>/dev/null; then
      ok "HEALTHCHECK probe maps the image's wildcard listen address to loopback"
    else
      nok "HEALTHCHECK probe maps the image's wildcard listen address to loopback"
    fi
    st=$(http_status "http://127.0.0.1:$port/readyz")
    if [ "$st" = 200 ]; then ok "/readyz answers 200 with the durable store"; else nok "/readyz answers 200 with the durable store (got $st)"; fi
    if grep -q "\"msg\":\"store: durable (LMDB) at $layout/data," "$log" && [ -s "$layout/data/data.mdb" ]; then
      ok "the image's default store is the durable one, in /data (its CREDWATCH_DATA_DIR)"
    else
      nok "the image's default store is the durable one, in /data (its CREDWATCH_DATA_DIR)"; grep '"store' "$log" | sed 's/^/#   /'
    fi
    st=$(curl -s -o /dev/null -m 3 -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
         -H 'X-Api-Key: it-deploy-ingest-token-0001' --data '{"Records":[]}' \
         "http://127.0.0.1:$port/v1/ingest/cloudtrail" 2>/dev/null || true)
    if [ "$st" = 200 ]; then ok "ingest works with the container's environment (X-Api-Key)"; else nok "ingest works with the container's environment (X-Api-Key) (got $st)"; fi
    # Path A without AWS: what the rule takes, posted the way an API destination does (one event per request,
    # X-Api-Key from the connection, JSON with charset), must make the scenario's finding.
    n=0; bad=0
    $PY "$root/tests/data/deploy_check.py" --eventbridge-events >"$TEST_TMP/events.jsonl"
    while IFS= read -r ev; do
      n=$((n + 1))
      st=$(printf '%s' "$ev" | curl -s -o /dev/null -m 5 -w '%{http_code}' -X POST \
           -H 'Content-Type: application/json; charset=utf-8' -H 'Connection: close' \
           -H 'X-Api-Key: it-deploy-ingest-token-0001' --data-binary @- \
           "http://127.0.0.1:$port/v1/ingest/eventbridge" 2>/dev/null || true)
      [ "$st" = 200 ] || bad=$((bad + 1))
    done <"$TEST_TMP/events.jsonl"
    found=$(curl -s -m 5 -H 'Authorization: Bearer it-deploy-read-token-0001' "http://127.0.0.1:$port/v1/findings" |
            $PY -c 'import json,sys; d=json.load(sys.stdin); print(sum(f.get("access_key_id")=="ASIAEXAMPLEKEY000009" for f in d.get("findings",[])))' 2>/dev/null)
    if [ "$n" -eq 3 ] && [ "$bad" -eq 0 ] && [ "$found" = 1 ]; then
      ok "EventBridge path: the $n events the rule takes, posted like an API destination, make the finding"
    else
      nok "EventBridge path: events the rule takes make the finding (events $n, non-200 $bad, findings ${found:-?})"
    fi
    kill -TERM "$pid"
    limit=$(( (drain + 5) * 10 ))
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt $limit ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
      nok "SIGTERM stops the service within CREDWATCH_DRAIN_SECONDS + 5 s"
    else
      wait "$pid"; rc=$?
      if [ "$rc" -eq 0 ]; then ok "SIGTERM stops the service with exit status 0"; else nok "SIGTERM stops the service with exit status 0 (got $rc)"; sed 's/^/#   /' "$log" | tail -n 10; fi
    fi
    pid=""
    if grep -qiE 'read-only|EROFS|permission denied' "$log"; then
      nok "the service logged no write failure"; grep -iE 'read-only|EROFS|permission denied' "$log" | sed 's/^/#   /'
    else
      ok "the service logged no write failure"
    fi
  fi
fi

[ "$fails" -eq 0 ]
