#!/usr/bin/python3
"""Structural checks of everything under deploy/ (run by tests/it_deploy.sh).

Prints one `ok - name` / `not ok - name` line per check (TAP-like, as tests/run_all.sh counts them) and exits 1 when
any failed. Needs only Debian's python3 with python3-yaml. Optional inputs, passed by it_deploy.sh when it could
install them (each missing one turns its checks into a printed skip, never a failure):
  --cfn-spec FILE   the CloudFormation resource specification (npm @aws-cdk/cfnspec, spec/specification.json):
                    resource types, property names, required properties, nested property types, GetAtt attributes.
  --hcl-json DIR    DIR/<module>/<file>.tf.json: every .tf file parsed by HashiCorp's HCL parser (npm
                    @cdktf/hcl2json); a file that does not parse arrives as <file>.tf.error.
  --entrypoint      print the Dockerfile's final ENTRYPOINT + CMD, one argument per line, and exit.
  --env             print the Dockerfile's final-stage ENV (NAME=VALUE lines; the `fetch` variant) and exit.
  --eventbridge-events  print the sample events the EventBridge rule's pattern takes, one JSON per line, and exit.
"""

import argparse
import fnmatch
import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
SAMPLES = os.path.join(ROOT, "tests", "data", "deploy_samples.json")

# The service's contract (the facts): environment variables and metrics.
SERVICE_ENV = {
    "CREDWATCH_LISTEN", "CREDWATCH_REDIS_URL", "CREDWATCH_REDIS_CLUSTER", "CREDWATCH_INGEST_TOKENS",
    "CREDWATCH_READ_TOKENS", "CREDWATCH_ALLOW_UNAUTHENTICATED", "CREDWATCH_THREADS", "CREDWATCH_MAX_BODY_BYTES",
    "CREDWATCH_MAX_INFLATED_BYTES", "CREDWATCH_REDIS_TIMEOUT_MS", "CREDWATCH_DRAIN_SECONDS",
    "CREDWATCH_AWS_IP_RANGES", "CREDWATCH_ALLOW_CIDRS", "CREDWATCH_ACCOUNTS", "CREDWATCH_STORE", "CREDWATCH_DATA_DIR",
    "CREDWATCH_DATA_MAX_BYTES",
}
METRICS = {
    "credwatch_http_requests_total", "credwatch_http_request_duration_seconds", "credwatch_records_ingested_total",
    "credwatch_records_duplicate_total", "credwatch_records_skipped_total", "credwatch_findings_created_total",
    "credwatch_findings_updated_total", "credwatch_store_errors_total", "credwatch_store_duration_seconds",
    "credwatch_ready", "credwatch_inflight_requests",
}
HISTOGRAMS = {"credwatch_http_request_duration_seconds", "credwatch_store_duration_seconds"}
# Per-sink delivery metrics (label sink; dead_lettered_total also reason): alerts may use them; the dashboard may too,
# but need not have a panel for each.
SINK_METRICS = {
    "credwatch_sink_delivered_total", "credwatch_sink_failed_attempts_total", "credwatch_sink_dead_lettered_total",
    "credwatch_sink_queue_depth", "credwatch_sink_queue_held", "credwatch_sink_dead_letters",
    "credwatch_sink_oldest_undelivered_age_seconds", "credwatch_sink_delivery_latency_seconds",
}
# The durable store's figures (present only on that store): alerts may use them, the dashboard need not.
DURABLE_METRICS = {
    "credwatch_store_file_bytes", "credwatch_store_used_bytes", "credwatch_store_data_max_bytes",
    "credwatch_store_keys", "credwatch_store_findings", "credwatch_store_swept_total",
}
# HTTPS of credwatch's own (present only with CREDWATCH_TLS_CERT): alerts may use them, the dashboard need not.
TLS_METRICS = {
    "credwatch_tls_certificate_not_after_seconds", "credwatch_tls_reloads_total", "credwatch_tls_client_refused_total",
}
# libcurl4, libssl3 and ca-certificates: the finding sinks post over HTTPS verified against the system CA store.
# libgnutls30: the service (HTTPS, api_tls.c) and the health probe link GnuTLS themselves, not only through libmicrohttpd
RUNTIME_LIBS = {"libmicrohttpd12", "libjansson4", "libhiredis0.14", "libyajl2", "zlib1g", "libcurl4", "libssl3",
                "ca-certificates", "liblmdb0", "lmdb-utils", "libgnutls30"}
DATA_DIR = "/data"  # the image's data directory: the durable store's, a VOLUME owned by the image's user
DEFAULT_DRAIN_SECONDS = 20

RESULTS = []


def check(name):
    """Decorator: runs the function now, records ok / not ok (with the reason), or a skip when it returns a str."""
    def run(fn):
        try:
            skip = fn()
        except AssertionError as err:
            RESULTS.append(False)
            print("not ok - %s" % name)
            print("#   %s" % (str(err) or "assertion failed"))
            return fn
        except Exception as err:  # a crash in a check is a failure of that check
            RESULTS.append(False)
            print("not ok - %s" % name)
            print("#   %s: %s" % (type(err).__name__, err))
            return fn
        RESULTS.append(True)
        print("ok - %s%s" % (name, " # SKIP " + skip if isinstance(skip, str) else ""))
        return fn
    return run


def rel(path):
    return os.path.relpath(path, ROOT)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# ---- loading --------------------------------------------------------------------------------------------------------

class CfnLoader(yaml.SafeLoader):
    """YAML loader that accepts CloudFormation's short-form tags and turns them into the long (JSON) form."""


def _cfn_tag(tag, node_value):
    name = tag[1:]
    if name == "GetAtt" and isinstance(node_value, str):
        node_value = node_value.split(".", 1)
    if name == "Ref":
        return {"Ref": node_value}
    if name == "Condition":
        return {"Condition": node_value}
    return {"Fn::" + name: node_value}


def _cfn_constructor(loader, tag_suffix, node):
    tag = "!" + tag_suffix
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return _cfn_tag(tag, value)


CfnLoader.add_multi_constructor("!", _cfn_constructor)


def load_yaml_all(path, cfn=False):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=CfnLoader if cfn else yaml.SafeLoader) if d is not None]


def deploy_files(*exts):
    out = []
    for base, dirs, files in os.walk(DEPLOY):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "node_modules"]
        for name in files:
            if name.endswith(exts):
                out.append(os.path.join(base, name))
    return sorted(out)


def is_cfn(path):
    return "/cloudformation/" in path


# ---- CloudFormation -------------------------------------------------------------------------------------------------

PSEUDO = {"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition", "AWS::Region",
          "AWS::StackId", "AWS::StackName", "AWS::URLSuffix"}
# Used when the npm specification could not be installed: the types these templates use and their GetAtt attributes.
KNOWN_TYPES = {
    "AWS::Events::Connection": {"Arn", "SecretArn"}, "AWS::Events::ApiDestination": {"Arn"},
    "AWS::Events::Rule": {"Arn"}, "AWS::SQS::Queue": {"Arn", "QueueName", "QueueUrl"}, "AWS::SQS::QueuePolicy": set(),
    "AWS::IAM::Role": {"Arn", "RoleId"}, "AWS::Lambda::Function": {"Arn"}, "AWS::Lambda::Permission": set(),
    "AWS::Lambda::EventInvokeConfig": set(), "AWS::Logs::LogGroup": {"Arn"}, "AWS::CloudWatch::Alarm": {"Arn"},
    "AWS::Lambda::Url": {"FunctionArn", "FunctionUrl"},
}
# Properties newer than the pinned npm specification (@aws-cdk/cfnspec 2.72.1), checked by cfn-lint when present.
SPEC_NEWER = {("AWS::Lambda::Permission", "InvokedViaFunctionUrl")}  # October 2025: public function URLs


def walk(value, fn, path=()):
    fn(value, path)
    if isinstance(value, dict):
        for k, v in value.items():
            walk(v, fn, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            walk(v, fn, path + (i,))


def sub_refs(text):
    """Names referenced by ${...} in a Fn::Sub string (literal ${!x} excluded)."""
    return [m for m in re.findall(r"\$\{([^}!][^}]*)\}", text)]


def cfn_references(template):
    """Yields (kind, target, where) for every Ref, GetAtt, Sub variable, Condition and DependsOn."""
    refs = []

    def visit(v, path):
        if not isinstance(v, dict) or len(v) != 1:
            return
        (k, arg), = v.items()
        if k == "Ref":
            refs.append(("Ref", arg, path))
        elif k == "Fn::GetAtt":
            refs.append(("GetAtt", tuple(arg), path))
        elif k == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            for name in sub_refs(text):
                if name in local:
                    continue
                if "." in name and not name.startswith("AWS::"):
                    res, att = name.split(".", 1)
                    refs.append(("GetAtt", (res, att), path))
                else:
                    refs.append(("Ref", name, path))
        elif k == "Fn::If":
            refs.append(("Condition", arg[0], path))
        elif k == "Condition" and isinstance(arg, str):
            refs.append(("Condition", arg, path))

    walk(template.get("Resources", {}), visit, ("Resources",))
    walk(template.get("Outputs", {}), visit, ("Outputs",))
    walk(template.get("Conditions", {}), visit, ("Conditions",))
    for name, res in template.get("Resources", {}).items():
        deps = res.get("DependsOn", [])
        for d in [deps] if isinstance(deps, str) else deps:
            refs.append(("DependsOn", d, ("Resources", name)))
        if "Condition" in res:
            refs.append(("Condition", res["Condition"], ("Resources", name)))
    return refs


def resource_deps(template):
    """Resource -> set of resources it needs first (Ref, GetAtt, Sub, DependsOn): CloudFormation refuses cycles."""
    resources = template.get("Resources", {})
    graph = {}
    for name, res in resources.items():
        sub = {"Resources": {name: res}}
        deps = set()
        for kind, target, _ in cfn_references(sub):
            t = target[0] if kind == "GetAtt" else target
            if kind in ("Ref", "GetAtt", "DependsOn") and t in resources:
                deps.add(t)
        graph[name] = deps
    return graph


def find_cycle(graph):
    state = {}

    def dfs(n, stack):
        state[n] = 1
        for m in graph.get(n, ()):
            if state.get(m) == 1:
                return stack + [n, m]
            if m not in state:
                found = dfs(m, stack + [n])
                if found:
                    return found
        state[n] = 2
        return None

    for n in graph:
        if n not in state:
            found = dfs(n, [])
            if found:
                return found
    return None


def is_intrinsic(v):
    return isinstance(v, dict) and len(v) == 1 and (next(iter(v)) == "Ref" or next(iter(v)).startswith("Fn::"))


def spec_check_props(spec, rtype, props, where, errors):
    """Validates a resource's Properties against the CloudFormation specification, recursively."""
    rspec = spec["ResourceTypes"][rtype]
    _check_prop_block(spec, rtype, rspec.get("Properties", {}), props or {}, where, errors)


def _check_prop_block(spec, rtype, pspec, props, where, errors):
    if is_intrinsic(props):
        return
    if not isinstance(props, dict):
        errors.append("%s: expected an object" % where)
        return
    for name in props:
        if name not in pspec and (rtype, name) not in SPEC_NEWER:
            errors.append("%s: unknown property %s" % (where, name))
    for name, p in pspec.items():
        if p.get("Required") and name not in props:
            errors.append("%s: missing required property %s" % (where, name))
    for name, value in props.items():
        p = pspec.get(name)
        if not p or is_intrinsic(value):
            continue
        _check_value(spec, rtype, p, value, "%s.%s" % (where, name), errors)


def _check_value(spec, rtype, p, value, where, errors):
    kind = p.get("Type")
    prim = p.get("PrimitiveType")
    if prim:
        if prim == "Json":
            if not isinstance(value, (dict, str)):
                errors.append("%s: expected JSON" % where)
        elif prim in ("String",) and isinstance(value, (dict, list)):
            errors.append("%s: expected a string" % where)
        elif prim in ("Integer", "Double", "Long") and not isinstance(value, (int, float, str)):
            errors.append("%s: expected a number" % where)
        elif prim == "Boolean" and not isinstance(value, (bool, str)):
            errors.append("%s: expected a boolean" % where)
        return
    if kind in ("List", "Map"):
        if kind == "List" and not isinstance(value, list):
            errors.append("%s: expected a list" % where)
            return
        items = value if kind == "List" else list(value.values())
        item_type = p.get("ItemType")
        for i, item in enumerate(items):
            if is_intrinsic(item) or not item_type:
                continue
            _check_nested(spec, rtype, item_type, item, "%s[%d]" % (where, i), errors)
        return
    if kind:
        _check_nested(spec, rtype, kind, value, where, errors)


def _check_nested(spec, rtype, type_name, value, where, errors):
    key = "%s.%s" % (rtype, type_name) if type_name != "Tag" else "Tag"
    ptype = spec["PropertyTypes"].get(key)
    if ptype is None:
        return
    if "Properties" in ptype:
        _check_prop_block(spec, rtype, ptype["Properties"], value, where, errors)


def check_cfn_template(path, spec):
    name = rel(path)
    template = load_yaml_all(path, cfn=True)[0]
    resources = template.get("Resources", {})
    params = template.get("Parameters", {})
    conditions = template.get("Conditions", {})

    @check("%s: top-level sections and resource types are valid" % name)
    def _():
        allowed = {"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Mappings", "Conditions",
                   "Transform", "Resources", "Outputs", "Rules"}
        assert template.get("AWSTemplateFormatVersion") == "2010-09-09", "AWSTemplateFormatVersion"
        assert set(template) <= allowed, "unknown sections %s" % (set(template) - allowed)
        assert resources, "no resources"
        known = set(spec["ResourceTypes"]) if spec else set(KNOWN_TYPES)
        bad = {r: v.get("Type") for r, v in resources.items() if v.get("Type") not in known}
        assert not bad, "unknown resource types %s" % bad
        for p, v in params.items():
            assert v.get("Type") in ("String", "Number", "CommaDelimitedList", "List<Number>") or \
                str(v.get("Type", "")).startswith(("AWS::", "List<AWS::")), "parameter %s type" % p

    @check("%s: every Ref, GetAtt, Sub variable, Condition and DependsOn resolves" % name)
    def _():
        errors = []
        for kind, target, where in cfn_references(template):
            loc = "/".join(str(x) for x in where)
            if kind == "Ref":
                if target not in params and target not in resources and target not in PSEUDO:
                    errors.append("%s: Ref %s" % (loc, target))
            elif kind == "GetAtt":
                res, att = target[0], target[1]
                if res not in resources:
                    errors.append("%s: GetAtt %s.%s: no such resource" % (loc, res, att))
                    continue
                rtype = resources[res]["Type"]
                if spec:
                    atts = set(spec["ResourceTypes"].get(rtype, {}).get("Attributes", {}))
                else:
                    atts = KNOWN_TYPES.get(rtype, set())
                if att not in atts:
                    errors.append("%s: GetAtt %s.%s: %s has attributes %s" % (loc, res, att, rtype, sorted(atts)))
            elif kind == "Condition":
                if target not in conditions:
                    errors.append("%s: condition %s" % (loc, target))
            elif kind == "DependsOn":
                if target not in resources:
                    errors.append("%s: DependsOn %s" % (loc, target))
        assert not errors, "; ".join(errors)

    @check("%s: no circular dependency between resources" % name)
    def _():
        cycle = find_cycle(resource_deps(template))
        assert not cycle, "cycle: %s" % " -> ".join(cycle)

    @check("%s: parameter defaults satisfy their own constraints" % name)
    def _():
        errors = []
        for p, v in params.items():
            if "Default" not in v:
                continue
            d = v["Default"]
            if "AllowedPattern" in v and v.get("Type") == "String" and d != "" and \
                    not re.fullmatch(v["AllowedPattern"], str(d)):
                errors.append("%s default does not match its pattern" % p)
            if v.get("Type") == "Number":
                if "MinValue" in v and float(d) < float(v["MinValue"]):
                    errors.append("%s default below MinValue" % p)
                if "MaxValue" in v and float(d) > float(v["MaxValue"]):
                    errors.append("%s default above MaxValue" % p)
            if "AllowedValues" in v and d not in v["AllowedValues"]:
                errors.append("%s default not allowed" % p)
        assert not errors, "; ".join(errors)

    @check("%s: properties match the CloudFormation resource specification" % name)
    def _():
        if not spec:
            return "CloudFormation specification not available (npm @aws-cdk/cfnspec not installed)"
        errors = []
        for r, v in resources.items():
            spec_check_props(spec, v["Type"], v.get("Properties"), r, errors)
        assert not errors, "; ".join(errors)

    return template


# ---- EventBridge patterns -------------------------------------------------------------------------------------------

def _wildcard(pattern, value):
    regex = "".join(".*" if c == "*" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.S) is not None


def _match_value(rules, value, present):
    for rule in rules:
        if isinstance(rule, dict):
            (op, arg), = rule.items()
            if op == "prefix" and isinstance(value, str) and value.startswith(arg):
                return True
            if op == "suffix" and isinstance(value, str) and value.endswith(arg):
                return True
            if op == "wildcard" and isinstance(value, str) and _wildcard(arg, value):
                return True
            if op == "exists" and bool(arg) == present:
                return True
            if op == "anything-but":
                banned = arg if isinstance(arg, list) else [arg]
                if present and value not in banned:
                    return True
            if op not in ("prefix", "suffix", "wildcard", "exists", "anything-but"):
                raise ValueError("pattern operator %s not supported by this checker" % op)
        elif present and (value == rule or (isinstance(value, list) and rule in value)):
            return True
    return False


def pattern_matches(pattern, event):
    """EventBridge content filtering, for the operators these templates use (exact, prefix, suffix, wildcard,
    exists, anything-but, $or). Every field of the pattern must match; arrays in the event match if any item does."""
    for key, rules in pattern.items():
        if key == "$or":
            if not any(pattern_matches(alt, event) for alt in rules):
                return False
            continue
        present = isinstance(event, dict) and key in event
        value = event.get(key) if isinstance(event, dict) else None
        if isinstance(rules, dict):
            if not pattern_matches(rules, value if isinstance(value, dict) else {}):
                return False
        elif not _match_value(rules, value, present):
            return False
    return True


# ---- Terraform ------------------------------------------------------------------------------------------------------

def strip_hcl_comments(text):
    """Removes # and // comments outside strings (heredocs are kept whole)."""
    out, i, n = [], 0, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
            continue
        if c == '"':
            in_str = True
            out.append(c)
            i += 1
            continue
        if c == "#" or text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def hcl_balanced(text):
    """True when braces, brackets and parentheses balance outside strings."""
    text = strip_hcl_comments(text)
    pairs = {"}": "{", "]": "[", ")": "("}
    stack, in_str, i = [], False, 0
    while i < len(text):
        c = text[i]
        if in_str:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_str = False
            elif text.startswith("${", i):
                stack.append("${")
                in_str = False
                i += 2
                continue
        elif c == '"':
            in_str = True
        elif c in "{[(":
            stack.append(c)
        elif c in "}])":
            if not stack:
                return False
            top = stack.pop()
            if top == "${":
                if c != "}":
                    return False
                in_str = True
            elif top != pairs[c]:
                return False
        i += 1
    return not stack and not in_str


def tf_module(path):
    """Declarations and references of one Terraform module directory, from the source text."""
    decl = {"resource": set(), "data": set(), "variable": set(), "output": set(), "local": set()}
    refs = []
    texts = {}
    for name in sorted(os.listdir(path)):
        if not name.endswith(".tf"):
            continue
        text = strip_hcl_comments(read(os.path.join(path, name)))
        texts[name] = text
        for kind, a, b in re.findall(r'^(resource|data)\s+"([^"]+)"\s+"([^"]+)"', text, re.M):
            decl[kind].add("%s.%s" % (a, b))
        decl["variable"].update(re.findall(r'^variable\s+"([^"]+)"', text, re.M))
        decl["output"].update(re.findall(r'^output\s+"([^"]+)"', text, re.M))
        for block in re.findall(r"^locals\s*\{(.*?)^\}", text, re.M | re.S):
            decl["local"].update(re.findall(r"^\s{2}([a-z_][a-z0-9_]*)\s*=", block, re.M))
        # references outside quoted literals that are not interpolations are rare here; scan everything
        for m in re.finditer(r"\b(var|local|data)\.([a-z_][a-z0-9_]*)(?:\.([a-z_][a-z0-9_]*))?", text):
            refs.append((name, m.group(1), m.group(2), m.group(3)))
        for m in re.finditer(r"\b(aws_[a-z0-9_]+)\.([a-z_][a-z0-9_]*)\b", text):
            before = text[max(0, m.start() - 6):m.start()]
            if before.endswith(("data.", '"')) or re.search(r'(resource|data)\s+"$', text[:m.start()][-20:]):
                continue
            refs.append((name, "resource", m.group(1), m.group(2)))
    return decl, refs, texts


# ---- Dockerfile -----------------------------------------------------------------------------------------------------

def dockerfile_stages(path):
    """[(name, base, [(INSTRUCTION, args)])] with line continuations joined and comments removed."""
    lines, buf = [], ""
    for raw in read(path).splitlines():
        s = raw.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        lines.append(buf + s)
        buf = ""
    global_args, stages = [], []
    for line in lines:
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.I)
            stages.append([m.group(2), m.group(1), []])
        elif stages:
            stages[-1][2].append((instr, args.strip()))
        else:
            global_args.append((instr, args.strip()))
    return global_args, stages


def final_image(path, variant="fetch"):
    """The instructions in effect in the final image (following FROM <stage> chains), for one AWS_IP_RANGES value."""
    global_args, stages = dockerfile_stages(path)
    by_name = {s[0]: s for s in stages if s[0]}

    def chain(stage):
        base = stage[1].replace("${AWS_IP_RANGES}", variant)
        parent = by_name.get(base)
        return (chain(parent) if parent else []) + stage[2]

    return chain(stages[-1])


def parse_env(args):
    out = {}
    for m in re.finditer(r'([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|(\S*))', args):
        out[m.group(1)] = m.group(3) if m.group(3) is not None else m.group(4)
    return out


# ---- checks ---------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cfn-spec")
    ap.add_argument("--hcl-json")
    ap.add_argument("--entrypoint", action="store_true")
    ap.add_argument("--env", action="store_true")
    ap.add_argument("--eventbridge-events", action="store_true")
    opts = ap.parse_args()
    dockerfile = os.path.join(DEPLOY, "Dockerfile")

    if opts.eventbridge_events:
        # What the rule would deliver, one event per line: the sample events its pattern takes.
        eb_template = load_yaml_all(os.path.join(DEPLOY, "aws", "cloudformation", "eventbridge.yaml"), cfn=True)[0]
        pat = eb_template["Resources"]["Rule"]["Properties"]["EventPattern"]
        for s in json.load(open(SAMPLES, encoding="utf-8"))["eventbridge"]:
            if pattern_matches(pat, s["event"]):
                print(json.dumps(s["event"], separators=(",", ":")))
        return 0

    if opts.entrypoint or opts.env:
        image = final_image(dockerfile)
        if opts.entrypoint:
            entry = [json.loads(a) for i, a in image if i == "ENTRYPOINT"][-1]
            cmd = [json.loads(a) for i, a in image if i == "CMD"][-1]
            print("\n".join(entry + cmd))
        else:
            env = {}
            for i, a in image:
                if i == "ENV":
                    env.update(parse_env(a))
            print("\n".join("%s=%s" % kv for kv in env.items()))
        return 0

    spec = None
    if opts.cfn_spec and os.path.exists(opts.cfn_spec):
        with open(opts.cfn_spec, encoding="utf-8") as f:
            spec = json.load(f)

    samples = json.load(open(SAMPLES, encoding="utf-8"))

    # -- every YAML / JSON file parses --
    @check("every YAML and JSON file under deploy/ parses")
    def _():
        files = deploy_files(".yaml", ".yml", ".json")
        assert len(files) >= 15, "only %d files found" % len(files)
        errors = []
        for path in files:
            try:
                if path.endswith(".json"):
                    json.load(open(path, encoding="utf-8"))
                else:
                    docs = load_yaml_all(path, cfn=is_cfn(path))
                    if not docs:
                        errors.append("%s: empty" % rel(path))
            except Exception as err:
                errors.append("%s: %s" % (rel(path), err))
        assert not errors, "; ".join(errors)

    # -- Dockerfile --
    global_args, stages = dockerfile_stages(dockerfile)
    fetch = final_image(dockerfile, "fetch")
    skip = final_image(dockerfile, "skip")

    @check("Dockerfile: multi-stage on Debian 12, build and runtime separated")
    def _():
        bases = [s[1] for s in stages]
        assert len(stages) >= 3, "stages: %s" % bases
        assert all(b.startswith(("debian:bookworm", "runtime-")) or b in {s[0] for s in stages} for b in bases), bases
        names = {s[0] for s in stages}
        assert {"build", "ipranges", "runtime-base", "runtime-fetch", "runtime-skip"} <= names, names
        runtime_base = [s for s in stages if s[0] == "runtime-base"][0]
        assert runtime_base[1] == "debian:bookworm-slim", "runtime is not bookworm-slim"

    @check("Dockerfile: runtime image installs only the runtime libraries (no compiler, curl or wget)")
    def _():
        runs = " ".join(a for i, a in fetch if i == "RUN")
        pkgs = set()
        for m in re.finditer(r"apt-get install ([^&;]*)", runs):
            pkgs.update(t for t in m.group(1).split() if not t.startswith("-") and t != "\\")
        assert pkgs == RUNTIME_LIBS, "runtime packages %s" % sorted(pkgs)
        for banned in ("curl", "wget", "gcc", "busybox", "make"):
            assert not re.search(r"\b%s\b" % banned, runs), "%s in the runtime stage" % banned
        copies = [a for i, a in fetch if i == "COPY"]
        assert any("/usr/local/bin/credwatch" in c and "--from=build" in c for c in copies), copies

    for label, image in (("fetch", fetch), ("skip", skip)):
        @check("Dockerfile (AWS_IP_RANGES=%s): non-root numeric USER, exec-form ENTRYPOINT/CMD, HEALTHCHECK" % label)
        def _(image=image):
            users = [a for i, a in image if i == "USER"]
            assert users, "no USER"
            uid, _, gid = users[-1].partition(":")
            assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit()), "USER %s" % users[-1]
            entry = [json.loads(a) for i, a in image if i == "ENTRYPOINT"]
            cmd = [json.loads(a) for i, a in image if i == "CMD"]
            assert entry and entry[-1] == ["/usr/local/bin/credwatch"], entry
            assert cmd and cmd[-1] == ["serve"], cmd
            hc = [a for i, a in image if i == "HEALTHCHECK"]
            assert hc, "no HEALTHCHECK"
            m = re.search(r"CMD\s+(\[.*\])", hc[-1])
            assert m, "HEALTHCHECK not in exec form: %s" % hc[-1]
            probe = json.loads(m.group(1))
            assert probe[0] == "/usr/local/bin/credwatch-healthcheck" and probe[1:] == ["/healthz"], probe
            copies = " ".join(a for i, a in image if i == "COPY")
            assert probe[0] in copies, "the probe is not copied into the image"
            env = {}
            for i, a in image:
                if i == "ENV":
                    env.update(parse_env(a))
            assert env.get("CREDWATCH_LISTEN") == "0.0.0.0:8080", env
            assert set(env) <= SERVICE_ENV, "unknown env %s" % (set(env) - SERVICE_ENV)
            if label == "fetch":
                assert env.get("CREDWATCH_AWS_IP_RANGES") == "/usr/share/credwatch/ip-ranges.json", env
                assert any("--from=ipranges" in a and env["CREDWATCH_AWS_IP_RANGES"] in a
                           for i, a in image if i == "COPY"), "ip-ranges not copied where the env points"
            else:
                assert "CREDWATCH_AWS_IP_RANGES" not in env, "skip variant still points at ip-ranges"
                assert not any("--from=ipranges" in a for i, a in image if i == "COPY")
            assert ("STOPSIGNAL", "SIGTERM") in image

    @check("Dockerfile: the durable store's /data: a VOLUME owned by the image's user, CREDWATCH_DATA_DIR points at it")
    def _():
        env = {}
        for i, a in fetch:
            if i == "ENV":
                env.update(parse_env(a))
        assert env.get("CREDWATCH_DATA_DIR") == DATA_DIR, env.get("CREDWATCH_DATA_DIR")
        vols = [a for i, a in fetch if i == "VOLUME"]
        assert vols and DATA_DIR in vols[-1].replace('"', " ").replace("[", " ").replace("]", " ").split(), vols
        user = [a for i, a in fetch if i == "USER"][-1]
        runs = " ".join(a for i, a in fetch if i == "RUN")
        assert re.search(r"mkdir -p %s\b" % DATA_DIR, runs), "no mkdir of %s" % DATA_DIR
        assert re.search(r"chown %s %s\b" % (re.escape(user), DATA_DIR), runs), "%s is not chowned to %s" % (DATA_DIR, user)
        # the directory exists before USER drops root, and the store is not told to live elsewhere
        idx = {i: n for n, (i, _) in enumerate(fetch)}
        assert [n for n, (i, a) in enumerate(fetch) if i == "RUN" and "chown" in a][0] < idx["USER"]

    @check("Dockerfile: ip-ranges build arguments (fetch|skip, URL, sha256 pin) are wired")
    def _():
        assert ("ARG", "AWS_IP_RANGES=fetch") in global_args, global_args
        assert stages[-1][1] == "runtime-${AWS_IP_RANGES}", stages[-1][1]
        ipr = [s for s in stages if s[0] == "ipranges"][0][2]
        args = " ".join(a for i, a in ipr if i == "ARG")
        assert "AWS_IP_RANGES_URL=https://ip-ranges.amazonaws.com/ip-ranges.json" in args
        assert "AWS_IP_RANGES_SHA256" in args
        run = " ".join(a for i, a in ipr if i == "RUN")
        assert "sha256sum -c" in run and "$AWS_IP_RANGES_URL" in run

    @check("Dockerfile: build stage compiles what the runtime copies; the dockerignore is beside it")
    def _():
        build = [s for s in stages if s[0] == "build"][0][2]
        runs = " ".join(a for i, a in build if i == "RUN")
        assert "make BUILD=build build/credwatch" in runs
        assert "deploy/docker/healthcheck.c" in runs
        for pkg in ("gcc", "make", "pkg-config", "libmicrohttpd-dev", "libjansson-dev", "libhiredis-dev",
                    "libyajl-dev", "zlib1g-dev", "liblmdb-dev", "libgnutls28-dev"):
            assert re.search(r"\b%s\b" % re.escape(pkg), runs), pkg
        for i, a in build:
            if i == "COPY":
                src = a.split()[0]
                assert os.path.exists(os.path.join(ROOT, src)), "COPY source %s missing" % src
        assert os.path.exists(os.path.join(DEPLOY, "Dockerfile.dockerignore"))
        # Every source folder the Makefile reads (other than tests/ and the build tree) is copied into the stage.
        makefile = "\n".join(l for l in read(os.path.join(ROOT, "Makefile")).splitlines()
                             if not l.lstrip().startswith("#"))
        dirs = set(re.findall(r"(?<![\w/$(])([a-z][a-z_]*)/[\w*.%-]+", makefile)) - {"build", "tests"}
        copied = {a.split()[0].rstrip("/").split("/")[0] for i, a in build if i == "COPY"}
        assert dirs <= copied, "the Makefile reads %s, the build stage does not copy them" % sorted(dirs - copied)

    # -- compose --
    compose = load_yaml_all(os.path.join(DEPLOY, "compose.yaml"))[0]

    @check("compose: two credwatch replicas, Redis, HAProxy in front; hardened")
    def _():
        svcs = compose["services"]
        assert {"redis", "credwatch", "lb"} <= set(svcs), set(svcs)
        cw = svcs["credwatch"]
        assert cw["deploy"]["replicas"] == 2
        assert cw["build"]["dockerfile"] == "deploy/Dockerfile" and cw["build"]["context"] == ".."
        assert cw.get("read_only") is True and "ALL" in cw.get("cap_drop", [])
        uid = str(cw.get("user", "0")).split(":")[0]
        assert uid.isdigit() and int(uid) > 0
        env = cw["environment"]
        assert set(env) <= SERVICE_ENV, set(env) - SERVICE_ENV
        assert env["CREDWATCH_LISTEN"] == "0.0.0.0:8080"
        assert "@redis:6379" in env["CREDWATCH_REDIS_URL"] and env["CREDWATCH_REDIS_URL"].startswith("redis://")
        for var in ("CREDWATCH_INGEST_TOKENS", "CREDWATCH_READ_TOKENS"):
            default = re.fullmatch(r"\$\{%s:-([^}]*)\}" % var, env[var])
            assert default, "%s has no laptop default" % var
            assert all(16 <= len(t) <= 255 for t in default.group(1).split(",")), \
                "%s default: tokens must be 16 to 255 bytes" % var
        grace = int(str(cw["stop_grace_period"]).rstrip("s"))
        assert grace > int(env.get("CREDWATCH_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS)), "stop_grace_period"
        assert cw["depends_on"]["redis"]["condition"] == "service_healthy"
        lb = svcs["lb"]
        mounts = [v.split(":")[0] for v in lb["volumes"]]
        for m in mounts:
            assert os.path.exists(os.path.join(DEPLOY, m)), "lb mount %s missing" % m
        assert any(p.endswith(":8080") for p in lb["ports"])
        assert "redis" in svcs["redis"]["image"] and "healthcheck" in svcs["redis"]
        for s, v in svcs.items():
            for vol in v.get("volumes", []):
                src = vol.split(":")[0]
                if src.startswith("./"):
                    assert os.path.exists(os.path.join(DEPLOY, src)), "%s mounts missing %s" % (s, src)

    single = load_yaml_all(os.path.join(DEPLOY, "compose.single.yaml"))[0]

    @check("compose.single.yaml: one credwatch, no Redis, the durable store on a named volume at /data; hardened")
    def _():
        svcs = single["services"]
        assert set(svcs) == {"credwatch"}, set(svcs)
        cw = svcs["credwatch"]
        assert cw["deploy"]["replicas"] == 1, "the data directory's lock admits one process"
        assert cw["build"]["dockerfile"] == "deploy/Dockerfile" and cw["build"]["context"] == ".."
        assert cw.get("read_only") is True and "ALL" in cw.get("cap_drop", [])
        user = [a for i, a in fetch if i == "USER"][-1]
        assert str(cw.get("user")) == user, "user %s is not the image's %s (the owner of /data)" % (cw.get("user"), user)
        env = cw["environment"]
        assert set(env) <= SERVICE_ENV, set(env) - SERVICE_ENV
        assert not {"CREDWATCH_REDIS_URL", "CREDWATCH_REDIS_CLUSTER", "CREDWATCH_STORE"} & set(env), env
        assert env.get("CREDWATCH_DATA_DIR", DATA_DIR) == DATA_DIR
        mounts = {v.split(":")[1]: v.split(":")[0] for v in cw["volumes"]}
        assert DATA_DIR in mounts and mounts[DATA_DIR] in (single.get("volumes") or {}), "no named volume at /data"
        for var in ("CREDWATCH_INGEST_TOKENS", "CREDWATCH_READ_TOKENS"):
            default = re.fullmatch(r"\$\{%s:-([^}]*)\}" % var, env[var])
            assert default and all(16 <= len(t) <= 255 for t in default.group(1).split(",")), var
        grace = int(str(cw["stop_grace_period"]).rstrip("s"))
        assert grace > int(env.get("CREDWATCH_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS)), "stop_grace_period"

    @check("haproxy.cfg: polls /readyz, follows replicas via DNS, balances on the credwatch port")
    def _():
        cfg = read(os.path.join(DEPLOY, "haproxy", "haproxy.cfg"))
        assert re.search(r"option httpchk GET /readyz", cfg)
        assert re.search(r"http-check expect status 200", cfg)
        assert re.search(r"server-template credwatch \d+ credwatch:8080", cfg)
        assert "resolvers docker" in cfg and "127.0.0.11:53" in cfg
        assert re.search(r"bind :8080", cfg)
        assert "retry-on" in cfg

    # -- Kubernetes --
    kdir = os.path.join(DEPLOY, "kubernetes")
    kdocs = {}
    for path in deploy_files(".yaml"):
        if path.startswith(kdir + os.sep):
            for d in load_yaml_all(path):
                if "kind" in d:
                    kdocs.setdefault(d["kind"], []).append((os.path.basename(path), d))

    def one(kind):
        assert kind in kdocs and len(kdocs[kind]) == 1, "expected one %s" % kind
        return kdocs[kind][0][1]

    @check("kubernetes: every object has apiVersion, kind, name and the credwatch namespace")
    def _():
        need = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "Secret",
                "NetworkPolicy", "Namespace", "Kustomization"}
        assert need <= set(kdocs), need - set(kdocs)
        api = {"Deployment": "apps/v1", "Service": "v1", "HorizontalPodAutoscaler": "autoscaling/v2",
               "PodDisruptionBudget": "policy/v1", "ConfigMap": "v1", "Secret": "v1",
               "NetworkPolicy": "networking.k8s.io/v1", "Namespace": "v1", "Ingress": "networking.k8s.io/v1",
               "Kustomization": "kustomize.config.k8s.io/v1beta1"}
        for kind, items in kdocs.items():
            for f, d in items:
                assert d.get("apiVersion") == api.get(kind), "%s %s apiVersion %s" % (f, kind, d.get("apiVersion"))
                if kind == "Kustomization":
                    continue
                assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", d["metadata"]["name"]), f
                if kind != "Namespace":
                    assert d["metadata"].get("namespace") == "credwatch", "%s: namespace" % f

    @check("kubernetes: kustomization lists existing files and never the example Secret")
    def _():
        k = one("Kustomization")
        for r in k["resources"]:
            assert os.path.exists(os.path.join(kdir, r)), r
        assert "secret.example.yaml" not in k["resources"]
        files = {f for items in kdocs.values() for f, _ in items} - {"kustomization.yaml", "secret.example.yaml"}
        assert files <= set(k["resources"]), "not in kustomization: %s" % (files - set(k["resources"]))

    @check("kubernetes: probes are /healthz (liveness) and /readyz (readiness) on the container port")
    def _():
        dep = one("Deployment")
        c = dep["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports.get("http") == 8080
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe in c:
                assert c[probe]["httpGet"]["port"] in ports or c[probe]["httpGet"]["port"] in ports.values()
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz", "startup probe must not depend on Redis"

    @check("kubernetes: terminationGracePeriodSeconds covers preStop sleep + CREDWATCH_DRAIN_SECONDS")
    def _():
        dep = one("Deployment")
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        cm = one("ConfigMap")
        drain = int(cm["data"].get("CREDWATCH_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS))
        pre = c["lifecycle"]["preStop"]
        if "sleep" in pre:
            sleep = int(pre["sleep"]["seconds"])
        else:
            cmd = pre["exec"]["command"]
            assert cmd[0] == "/bin/sleep", cmd
            sleep = int(cmd[1])
        assert sleep >= 5, "preStop sleep %d s is too short for endpoint removal" % sleep
        grace = pod["terminationGracePeriodSeconds"]
        assert grace >= sleep + drain + 5, "grace %d < preStop %d + drain %d + 5" % (grace, sleep, drain)

    @check("kubernetes: securityContext non-root, read-only root filesystem, no privilege escalation, no caps")
    def _():
        dep = one("Deployment")
        pod = dep["spec"]["template"]["spec"]
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] > 0
        assert psc["seccompProfile"]["type"] == "RuntimeDefault"
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert sc.get("runAsNonRoot", psc["runAsNonRoot"]) is True
        users = [a for i, a in fetch if i == "USER"]
        assert str(psc["runAsUser"]) == users[-1].split(":")[0], "runAsUser differs from the image's USER"
        assert pod.get("automountServiceAccountToken") is False

    @check("kubernetes: env comes from the ConfigMap and Secret; their keys are the service's variables")
    def _():
        dep = one("Deployment")
        c = dep["spec"]["template"]["spec"]["containers"][0]
        refs = {(k, v["name"]) for e in c["envFrom"] for k, v in e.items()}
        cm, sec = one("ConfigMap"), one("Secret")
        assert ("configMapRef", cm["metadata"]["name"]) in refs and ("secretRef", sec["metadata"]["name"]) in refs
        assert set(cm["data"]) <= SERVICE_ENV, set(cm["data"]) - SERVICE_ENV
        assert set(sec["stringData"]) <= SERVICE_ENV, set(sec["stringData"]) - SERVICE_ENV
        assert {"CREDWATCH_INGEST_TOKENS", "CREDWATCH_READ_TOKENS"} <= set(sec["stringData"])
        for var in ("CREDWATCH_INGEST_TOKENS", "CREDWATCH_READ_TOKENS"):
            assert all(16 <= len(t) <= 255 for t in sec["stringData"][var].split(",")), "%s: 16 to 255 bytes" % var
        assert not set(cm["data"]) & {"CREDWATCH_INGEST_TOKENS", "CREDWATCH_READ_TOKENS", "CREDWATCH_REDIS_URL"}, \
            "secrets in the ConfigMap"
        assert cm["data"]["CREDWATCH_LISTEN"].startswith("0.0.0.0:")

    @check("kubernetes: Service, HPA, PDB and NetworkPolicy select the Deployment's pods")
    def _():
        dep = one("Deployment")
        labels = dep["spec"]["template"]["metadata"]["labels"]
        sel = dep["spec"]["selector"]["matchLabels"]
        assert all(labels.get(k) == v for k, v in sel.items())

        def selects(s):
            return s and all(labels.get(k) == v for k, v in s.items())

        svc = one("Service")
        assert selects(svc["spec"]["selector"]), "Service selector"
        assert svc["spec"]["ports"][0]["targetPort"] == "http"
        hpa = one("HorizontalPodAutoscaler")
        t = hpa["spec"]["scaleTargetRef"]
        assert (t["kind"], t["name"], t["apiVersion"]) == ("Deployment", dep["metadata"]["name"], "apps/v1")
        assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        pdb = one("PodDisruptionBudget")
        assert selects(pdb["spec"]["selector"]["matchLabels"]), "PDB selector"
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], "PDB would block every eviction"
        np = one("NetworkPolicy")
        assert selects(np["spec"]["podSelector"]["matchLabels"]), "NetworkPolicy selector"
        assert set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        ports_in = {p["port"] for r in np["spec"]["ingress"] for p in r["ports"]}
        assert ports_in == {8080}
        ports_out = {p["port"] for r in np["spec"]["egress"] for p in r["ports"]}
        assert {53, 6379} <= ports_out
        for f, ing in kdocs.get("Ingress", []):
            for rule in ing["spec"]["rules"]:
                for p in rule["http"]["paths"]:
                    assert p["backend"]["service"]["name"] == svc["metadata"]["name"]
                    assert not p["path"].startswith("/metrics"), "metrics exposed publicly"

    # -- Kubernetes, one pod on the durable store (an overlay of the base, beside it) --
    sdir = os.path.join(DEPLOY, "kubernetes-single")

    @check("kubernetes-single: the base with one replica, Recreate, a ReadWriteOnce PVC at /data; no HPA, no PDB")
    def _():
        k = load_yaml_all(os.path.join(sdir, "kustomization.yaml"))[0]
        assert k["kind"] == "Kustomization" and k["namespace"] == "credwatch"
        assert "../kubernetes" in k["resources"], k["resources"]
        for r in k["resources"]:
            assert os.path.exists(os.path.join(sdir, r)), r
        pvc = load_yaml_all(os.path.join(sdir, "pvc.yaml"))[0]
        assert pvc["kind"] == "PersistentVolumeClaim" and pvc["metadata"]["namespace"] == "credwatch"
        assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"] and pvc["spec"]["resources"]["requests"]["storage"]
        paths = [p["path"] for p in k["patches"] if "path" in p]
        deleted = {yaml.safe_load(p["patch"])["kind"] for p in k["patches"] if "$patch: delete" in p.get("patch", "")}
        assert deleted == {"HorizontalPodAutoscaler", "PodDisruptionBudget"}, deleted
        dep = load_yaml_all(os.path.join(sdir, paths[0]))[0]
        assert dep["kind"] == "Deployment" and dep["metadata"]["name"] == one("Deployment")["metadata"]["name"]
        assert dep["spec"]["replicas"] == 1, "the data directory's lock admits one process"
        assert dep["spec"]["strategy"] == {"type": "Recreate", "rollingUpdate": None}, dep["spec"]["strategy"]
        pod = dep["spec"]["template"]["spec"]
        vols = {v["name"]: v for v in pod["volumes"]}
        mount = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == DATA_DIR]
        assert mount and vols[mount[0]["name"]]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
        assert one("Deployment")["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 10001, \
            "the base's fsGroup makes the volume writable"

    @check("kubernetes-single: kubectl kustomize renders it as described")
    def _():
        import shutil
        import subprocess
        if not shutil.which("kubectl"):
            return "kubectl not installed"
        out = subprocess.run(["kubectl", "kustomize", sdir], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr[-500:]
        docs = [d for d in yaml.safe_load_all(out.stdout) if d]
        kinds = {d["kind"] for d in docs}
        assert "PersistentVolumeClaim" in kinds and not {"HorizontalPodAutoscaler", "PodDisruptionBudget"} & kinds
        dep = [d for d in docs if d["kind"] == "Deployment"][0]
        assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}, dep["spec"]
        c = dep["spec"]["template"]["spec"]["containers"][0]
        assert any(m["mountPath"] == DATA_DIR for m in c["volumeMounts"]) and c["livenessProbe"]

    hdir = os.path.join(DEPLOY, "kubernetes-https")

    @check("kubernetes-https: HTTPS in the pod (the Secret's files as CREDWATCH_TLS_*), probes and Ingress follow")
    def _():
        k = load_yaml_all(os.path.join(hdir, "kustomization.yaml"))[0]
        assert k["kind"] == "Kustomization" and "../kubernetes" in k["resources"], k
        dep = load_yaml_all(os.path.join(hdir, k["patches"][0]["path"]))[0]
        assert dep["metadata"]["name"] == one("Deployment")["metadata"]["name"]
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        assert c["name"] == one("Deployment")["spec"]["template"]["spec"]["containers"][0]["name"]
        env = {e["name"]: e["value"] for e in c["env"]}
        mount = [m for m in c["volumeMounts"] if env["CREDWATCH_TLS_CERT"].startswith(m["mountPath"] + "/")]
        assert mount and mount[0]["readOnly"] and env["CREDWATCH_TLS_KEY"].startswith(mount[0]["mountPath"] + "/")
        vol = {v["name"]: v for v in pod["volumes"]}[mount[0]["name"]]
        assert vol["secret"]["secretName"], vol
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert c[probe]["httpGet"]["scheme"] == "HTTPS", probe
            assert probe in one("Deployment")["spec"]["template"]["spec"]["containers"][0], probe
        ing = yaml.safe_load(k["patches"][1]["patch"])
        assert ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "HTTPS"

    @check("kubernetes-https: kubectl kustomize renders it as described")
    def _():
        import shutil
        import subprocess
        if not shutil.which("kubectl"):
            return "kubectl not installed"
        out = subprocess.run(["kubectl", "kustomize", hdir], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr[-500:]
        docs = [d for d in yaml.safe_load_all(out.stdout) if d]
        c = [d for d in docs if d["kind"] == "Deployment"][0]["spec"]["template"]["spec"]["containers"][0]
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
            assert c[probe]["httpGet"] == {"path": path, "port": "http", "scheme": "HTTPS"}, c[probe]
        assert {"CREDWATCH_TLS_CERT", "CREDWATCH_TLS_KEY"} <= {e["name"] for e in c["env"]}
        ing = [d for d in docs if d["kind"] == "Ingress"][0]["metadata"]["annotations"]
        assert ing["nginx.ingress.kubernetes.io/backend-protocol"] == "HTTPS" and "cert-manager.io/cluster-issuer" in ing

    # -- CloudFormation --
    cfn_dir = os.path.join(DEPLOY, "aws", "cloudformation")
    eb = check_cfn_template(os.path.join(cfn_dir, "eventbridge.yaml"), spec)
    fw = check_cfn_template(os.path.join(cfn_dir, "forwarder.yaml"), spec)
    ebr = eb["Resources"]

    def of_type(template, t):
        return {k: v for k, v in template["Resources"].items() if v["Type"] == t}

    @check("eventbridge.yaml: rule state, API-key connection, rate-limited destination, retry policy and DLQ")
    def _():
        rule = list(of_type(eb, "AWS::Events::Rule").values())
        assert len(rule) == 1
        rule = rule[0]["Properties"]
        assert rule["State"] == "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
        conn = list(of_type(eb, "AWS::Events::Connection").values())[0]["Properties"]
        assert conn["AuthorizationType"] == "API_KEY"
        assert conn["AuthParameters"]["ApiKeyAuthParameters"]["ApiKeyName"] == "X-Api-Key"
        dest_name, dest = list(of_type(eb, "AWS::Events::ApiDestination").items())[0]
        d = dest["Properties"]
        assert d["HttpMethod"] == "POST"
        assert d["InvocationEndpoint"]["Fn::Sub"].endswith("/v1/ingest/eventbridge")
        assert "InvocationRateLimitPerSecond" in d
        target = rule["Targets"][0]
        assert target["Arn"] == {"Fn::GetAtt": [dest_name, "Arn"]}
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] and target["RetryPolicy"]["MaximumRetryAttempts"]
        dlq = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        assert ebr[dlq]["Type"] == "AWS::SQS::Queue"
        role = target["RoleArn"]["Fn::GetAtt"][0]
        rp = ebr[role]["Properties"]
        trust = rp["AssumeRolePolicyDocument"]["Statement"][0]
        assert trust["Principal"]["Service"] == "events.amazonaws.com"
        stmts = [s for p in rp["Policies"] for s in p["PolicyDocument"]["Statement"]]
        assert any(s["Action"] == "events:InvokeApiDestination" and s["Resource"] == {"Fn::GetAtt": [dest_name, "Arn"]}
                   for s in stmts), "role cannot invoke the destination"
        qp = list(of_type(eb, "AWS::SQS::QueuePolicy").values())[0]["Properties"]
        assert qp["Queues"] == [{"Ref": dlq}]
        st = qp["PolicyDocument"]["Statement"][0]
        assert st["Principal"]["Service"] == "events.amazonaws.com" and st["Action"] == "sqs:SendMessage"
        assert list(st["Condition"]["ArnEquals"].values())[0]["Fn::GetAtt"][0] in of_type(eb, "AWS::Events::Rule")

    pattern = list(of_type(eb, "AWS::Events::Rule").values())[0]["Properties"]["EventPattern"]
    tf_pattern_path = os.path.join(DEPLOY, "aws", "terraform", "eventbridge", "event-pattern.json")

    @check("event pattern: CloudFormation and Terraform use the same pattern")
    def _():
        assert pattern == json.load(open(tf_pattern_path, encoding="utf-8"))

    for s in samples["eventbridge"]:
        @check("event pattern %s: %s" % ("takes" if s["match"] else "ignores", s["name"]))
        def _(s=s):
            assert pattern_matches(pattern, s["event"]) == s["match"]

    @check("event pattern: limited to temporary-key uses and the workload issuances (AssumeRole by the four issuers, "
           "AssumeRoleWithWebIdentity)")
    def _():
        assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
        alts = pattern["$or"]
        uses = [a for a in alts if "userIdentity" in a.get("detail", {}) and "type" in a["detail"]["userIdentity"]]
        assert uses[0]["detail"]["userIdentity"] == {"type": ["AssumedRole"], "accessKeyId": [{"prefix": "ASIA"}]}
        iss = [a for a in alts if a.get("detail", {}).get("eventName") == ["AssumeRole"]][0]
        assert iss["source"] == ["aws.sts"] and iss["detail"]["eventSource"] == ["sts.amazonaws.com"]
        # codebuild.amazonaws.com stays out until a captured issuance record backs its matcher (docs/workloads.md 5.6)
        assert iss["detail"]["userIdentity"] == {"invokedBy": [
            "lambda.amazonaws.com", "ecs-tasks.amazonaws.com", "ec2.amazonaws.com", "pods.eks.amazonaws.com"]}
        web = [a for a in alts if a.get("detail", {}).get("eventName") == ["AssumeRoleWithWebIdentity"]]
        assert web == [{"source": ["aws.sts"], "detail": {"eventSource": ["sts.amazonaws.com"],
                                                         "eventName": ["AssumeRoleWithWebIdentity"]}}], web
        assert len(alts) == 3

    fwr = fw["Resources"]
    sys.path.insert(0, os.path.join(DEPLOY, "aws", "forwarder"))
    import forwarder  # noqa: E402  (standard library only: importing it proves no boto3 at import time)

    @check("forwarder.yaml: Lambda runs forwarder.handler with s3:GetObject on the trail bucket")
    def _():
        fn = list(of_type(fw, "AWS::Lambda::Function").values())[0]["Properties"]
        module, func = fn["Handler"].split(".")
        assert module == "forwarder" and callable(getattr(forwarder, func, None))
        assert fn["Runtime"].startswith("python3.")
        assert {"CREDWATCH_URL", "CREDWATCH_TOKEN"} <= set(fn["Environment"]["Variables"])
        role = fwr[fn["Role"]["Fn::GetAtt"][0]]["Properties"]
        stmts = role["Policies"][0]["PolicyDocument"]["Statement"]
        get = [s for s in stmts if isinstance(s, dict) and s.get("Action") == "s3:GetObject"]
        assert get and get[0]["Resource"]["Fn::Sub"].endswith(":s3:::${TrailBucketName}/*"), get
        perms = list(of_type(fw, "AWS::Lambda::Permission").values())
        assert perms and perms[0]["Properties"]["Principal"] == "events.amazonaws.com"
        rule_name, rule = list(of_type(fw, "AWS::Events::Rule").items())[0]
        assert perms[0]["Properties"]["SourceArn"] == {"Fn::GetAtt": [rule_name, "Arn"]}
        p = rule["Properties"]["EventPattern"]
        assert p["source"] == ["aws.s3"] and p["detail-type"] == ["Object Created"]
        assert p["detail"]["bucket"]["name"] == [{"Ref": "TrailBucketName"}]
        t = rule["Properties"]["Targets"][0]
        assert "DeadLetterConfig" in t and "RetryPolicy" in t

    s3_rule = list(of_type(fw, "AWS::Events::Rule").values())[0]["Properties"]["EventPattern"]
    tf_fw = read(os.path.join(DEPLOY, "aws", "terraform", "forwarder", "main.tf"))

    @check("forwarder rule and forwarder.should_forward agree on which S3 keys are CloudTrail logs")
    def _():
        key_rules = s3_rule["detail"]["object"]["key"]
        wc = key_rules[0]["wildcard"]
        assert 'wildcard = "%s"' % wc in tf_fw, "Terraform wildcard differs from CloudFormation"
        errors = []
        for k in samples["s3_keys"]:
            ev = {"source": "aws.s3", "detail-type": "Object Created",
                  "detail": {"bucket": {"name": "trail"}, "object": {"key": k["key"]}}}
            pat = dict(s3_rule, detail={"bucket": {"name": ["trail"]}, "object": {"key": key_rules}})
            if pattern_matches(pat, ev) != k["forward"]:
                errors.append("rule %s" % k["key"])
            if forwarder.should_forward(k["key"])[0] != k["forward"]:
                errors.append("should_forward %s" % k["key"])
        assert not errors, errors

    # -- Security Hub importer --
    sh = check_cfn_template(os.path.join(cfn_dir, "securityhub.yaml"), spec)
    shr = sh["Resources"]
    sys.path.insert(0, os.path.join(DEPLOY, "aws", "securityhub"))
    import handler as sh_handler  # noqa: E402  (boto3 is imported lazily: importing proves the module needs none)
    product_sub = "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:product/${AWS::AccountId}/default"

    @check("securityhub.yaml: Lambda runs handler.handler, reads one secret, imports into the default product only")
    def _():
        fn_name, fn = list(of_type(sh, "AWS::Lambda::Function").items())[0]
        p = fn["Properties"]
        module, func = p["Handler"].split(".")
        assert module == "handler" and callable(getattr(sh_handler, func, None))
        assert p["Runtime"] == "python3.12" and p["Timeout"] < 10, "runtime, or a timeout not below the sink's 10 s"
        env = p["Environment"]["Variables"]
        assert set(env) == {"CREDWATCH_SECRET_REF", "SECURITYHUB_PRODUCT_ARN"}, set(env)
        assert env["SECURITYHUB_PRODUCT_ARN"] == {"Fn::Sub": product_sub}
        assert "ReservedConcurrentExecutions" in p, "a public URL without a concurrency ceiling"
        role = shr[p["Role"]["Fn::GetAtt"][0]]["Properties"]
        stmts = role["Policies"][0]["PolicyDocument"]["Statement"]
        assert len(role["Policies"]) == 1 and len(role["ManagedPolicyArns"]) == 1, "extra policies"
        actions = []
        for st in stmts:
            # Fn::If [cond, statement, statement-or-NoValue]: both branches count
            branches = st["Fn::If"][1:] if "Fn::If" in st else [st]
            for b in branches:
                if b == {"Ref": "AWS::NoValue"}:
                    continue
                assert b["Effect"] == "Allow" and "*" not in json.dumps(b["Resource"]), b
                actions.append((b["Action"], b["Resource"]))
        assert ("securityhub:BatchImportFindings", {"Fn::Sub": product_sub}) in actions, actions
        assert ("secretsmanager:GetSecretValue", {"Ref": "SecretArn"}) in actions, actions
        assert any(a == "ssm:GetParameter" and "${SecretParameterName}" in r["Fn::Sub"] for a, r in actions), actions
        assert {a for a, _ in actions} == {"securityhub:BatchImportFindings", "secretsmanager:GetSecretValue",
                                            "ssm:GetParameter", "kms:Decrypt"}, actions
        logs = list(of_type(sh, "AWS::Logs::LogGroup").values())[0]["Properties"]
        assert logs["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert logs["LogGroupName"]["Fn::Sub"] == p["FunctionName"]["Fn::Sub"].replace("${", "/aws/lambda/${", 1)

    @check("securityhub.yaml: public function URL (auth NONE, both permissions), URL in the outputs, one secret")
    def _():
        fn_name = list(of_type(sh, "AWS::Lambda::Function"))[0]
        url_name, url = list(of_type(sh, "AWS::Lambda::Url").items())[0]
        assert url["Properties"] == {"TargetFunctionArn": {"Fn::GetAtt": [fn_name, "Arn"]}, "AuthType": "NONE"}
        perms = {v["Properties"]["Action"]: v["Properties"] for v in of_type(sh, "AWS::Lambda::Permission").values()}
        assert set(perms) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}, set(perms)
        assert perms["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"] == "NONE"
        assert perms["lambda:InvokeFunction"]["InvokedViaFunctionUrl"] is True, "public invoke not limited to the URL"
        assert all(p["Principal"] == "*" and p["FunctionName"] == {"Ref": fn_name} for p in perms.values())
        assert sh["Outputs"]["FunctionUrl"]["Value"] == {"Fn::GetAtt": [url_name, "FunctionUrl"]}
        assert "FORMAT=asff" in sh["Outputs"]["FunctionUrl"]["Description"]
        assert "ExactlyOneSecret" in sh["Rules"], "no rule asking for exactly one secret reference"

    # -- Terraform --
    tf_root = os.path.join(DEPLOY, "aws", "terraform")
    cfn_to_tf = {
        "AWS::Events::Connection": "aws_cloudwatch_event_connection",
        "AWS::Events::ApiDestination": "aws_cloudwatch_event_api_destination",
        "AWS::Events::Rule": "aws_cloudwatch_event_rule", "AWS::SQS::Queue": "aws_sqs_queue",
        "AWS::SQS::QueuePolicy": "aws_sqs_queue_policy", "AWS::IAM::Role": "aws_iam_role",
        "AWS::CloudWatch::Alarm": "aws_cloudwatch_metric_alarm", "AWS::Lambda::Function": "aws_lambda_function",
        "AWS::Lambda::Permission": "aws_lambda_permission", "AWS::Logs::LogGroup": "aws_cloudwatch_log_group",
        "AWS::Lambda::EventInvokeConfig": "aws_lambda_function_event_invoke_config",
        "AWS::Lambda::Url": "aws_lambda_function_url",
    }
    for module, twin in (("eventbridge", eb), ("forwarder", fw), ("securityhub", sh)):
        mdir = os.path.join(tf_root, module)
        decl, refs, texts = tf_module(mdir)

        @check("terraform/%s: files balance and every var/local/data/resource reference is declared" % module)
        def _(mdir=mdir, decl=decl, refs=refs, texts=texts):
            assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf"} <= set(texts), sorted(texts)
            errors = []
            for name in texts:
                if not hcl_balanced(read(os.path.join(mdir, name))):
                    errors.append("%s: unbalanced brackets or quotes" % name)
            for f, kind, a, b in refs:
                if kind == "var" and a not in decl["variable"]:
                    errors.append("%s: var.%s undeclared" % (f, a))
                elif kind == "local" and a not in decl["local"]:
                    errors.append("%s: local.%s undeclared" % (f, a))
                elif kind == "data" and "%s.%s" % (a, b) not in decl["data"]:
                    errors.append("%s: data.%s.%s undeclared" % (f, a, b))
                elif kind == "resource" and "%s.%s" % (a, b) not in decl["resource"] and \
                        "%s.%s" % (a, b) not in decl["data"]:
                    errors.append("%s: %s.%s undeclared" % (f, a, b))
            for m in re.finditer(r'file\("\$\{path\.module\}/([^"]+)"\)|source_file\s*=\s*"\$\{path\.module\}/([^"]+)"',
                                 "".join(texts.values())):
                p = m.group(1) or m.group(2)
                if not os.path.exists(os.path.normpath(os.path.join(mdir, p))):
                    errors.append("missing file %s" % p)
            assert not errors, "; ".join(errors)

        @check("terraform/%s: same resources as the CloudFormation template" % module)
        def _(decl=decl, twin=twin):
            tf_types = {r.split(".")[0] for r in decl["resource"]}
            missing = {t for t in (cfn_to_tf[v["Type"]] for v in twin["Resources"].values()) if t not in tf_types}
            assert not missing, "no Terraform counterpart for %s" % missing

        @check("terraform/%s: parses with HashiCorp's HCL parser" % module)
        def _(module=module, decl=decl, texts=texts):
            if not opts.hcl_json or not os.path.isdir(os.path.join(opts.hcl_json, module)):
                return "HCL parser not available (npm @cdktf/hcl2json not installed)"
            outdir = os.path.join(opts.hcl_json, module)
            errors, parsed = [], {"resource": set(), "variable": set()}
            for name in texts:
                err = os.path.join(outdir, name + ".error")
                if os.path.exists(err):
                    errors.append("%s: %s" % (name, read(err).strip()))
                    continue
                doc = json.load(open(os.path.join(outdir, name + ".json"), encoding="utf-8"))
                for t, items in doc.get("resource", {}).items():
                    parsed["resource"].update("%s.%s" % (t, n) for n in items)
                parsed["variable"].update(doc.get("variable", {}))
            assert not errors, "; ".join(errors)
            assert parsed["resource"] == decl["resource"], (parsed["resource"] ^ decl["resource"])
            assert parsed["variable"] == decl["variable"]

    @check("terraform/eventbridge: rule state, X-Api-Key, destination path, retry policy, DLQ")
    def _():
        t = read(os.path.join(tf_root, "eventbridge", "main.tf"))
        assert 'state = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"' in re.sub(r"\s+", " ", t)
        assert 'key = "X-Api-Key"' in re.sub(r"\s+", " ", t)
        assert '/v1/ingest/eventbridge"' in t and "invocation_rate_limit_per_second" in t
        assert "retry_policy {" in t and "dead_letter_config {" in t
        assert '"events:InvokeApiDestination"' in t

    @check("terraform/securityhub: default product ARN, one secret, public URL with both permissions, URL output")
    def _():
        t = re.sub(r"\s+", " ", read(os.path.join(tf_root, "securityhub", "main.tf")))
        assert ':product/${local.account_id}/default"' in t and "resources = [local.product_arn]" in t
        assert "SECURITYHUB_PRODUCT_ARN = local.product_arn" in t and "CREDWATCH_SECRET_REF" in t
        assert 'runtime = "python3.12"' in t and 'handler = "handler.handler"' in t and "timeout = 8" in t
        assert 'authorization_type = "NONE"' in t
        assert 'action = "lambda:InvokeFunctionUrl"' in t and 'function_url_auth_type = "NONE"' in t
        assert 'action = "lambda:InvokeFunction"' in t and "invoked_via_function_url = true" in t
        assert "precondition {" in t, "no check for exactly one secret reference"
        assert '"*"' not in t.replace('principal = "*"', ""), "a wildcard outside the URL's principal"
        o = read(os.path.join(tf_root, "securityhub", "outputs.tf"))
        assert 'output "function_url"' in o and "aws_lambda_function_url.importer.function_url" in o
        v = read(os.path.join(tf_root, "securityhub", "versions.tf"))
        assert re.search(r'version\s*=\s*">= 6\.(2[89]|[3-9]\d)', v), "invoked_via_function_url needs aws >= 6.28"

    # -- observability --
    obs = os.path.join(DEPLOY, "observability")
    metric_re = re.compile(r"\bcredwatch_[a-z_]+")

    def metric_base(m):
        for suffix in ("_bucket", "_sum", "_count"):
            if m.endswith(suffix) and m[:-len(suffix)] in HISTOGRAMS:
                return m[:-len(suffix)]
        return m

    def promql_ok(expr):
        depth = 0
        for c in expr:
            depth += {"(": 1, ")": -1}.get(c, 0)
            if depth < 0:
                return False
        return depth == 0 and expr.count("{") == expr.count("}") and expr.count("[") == expr.count("]")

    dash = json.load(open(os.path.join(obs, "grafana-dashboard.json"), encoding="utf-8"))

    @check("grafana dashboard: panels cover every metric and query only known ones")
    def _():
        exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", []) if "expr" in t]
        used = {metric_base(m) for e in exprs for m in metric_re.findall(e)}
        assert used <= METRICS | SINK_METRICS, "unknown metrics %s" % (used - METRICS - SINK_METRICS)
        assert METRICS <= used, "no panel for %s" % (METRICS - used)
        for e in exprs:
            assert promql_ok(e), "unbalanced: %s" % e
            for m in metric_re.findall(e):
                if metric_base(m) in HISTOGRAMS:
                    assert m.endswith("_bucket") and "histogram_quantile" in e, e
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids)), "duplicate panel ids"
        for p in dash["panels"]:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24, p["title"]

    @check("grafana dashboard: findings table reads GET /v1/findings through the Infinity datasource")
    def _():
        inf = [p for p in dash["panels"] if p.get("datasource", {}).get("type") == "yesoreyeram-infinity-datasource"]
        assert inf, "no Infinity panel"
        t = inf[0]["targets"][0]
        assert t["url"].endswith("/v1/findings") and t["type"] == "json"
        cols = {c["selector"] for c in t["columns"]}
        finding_fields = {"id", "access_key_id", "account_id", "region", "function_name", "role_arn", "severity",
                          "status", "first_outside_at", "last_outside_at", "outside_source_ips", "outside_actions",
                          "inside_source_ips", "issued_by_event_id", "reasons", "attack", "created_at", "updated_at"}
        assert cols <= finding_fields, cols - finding_fields
        assert {"severity", "access_key_id", "function_name"} <= cols

    rules = load_yaml_all(os.path.join(obs, "prometheus-rules.yaml"))[0]

    @check("prometheus rules: well-formed alerts on ingest errors, store errors, readiness and findings")
    def _():
        alerts = {}
        for g in rules["groups"]:
            assert g["name"] and g["rules"]
            for r in g["rules"]:
                assert "alert" in r and "expr" in r, r
                assert r["labels"]["severity"] in ("critical", "warning", "info")
                assert r["annotations"]["summary"]
                assert promql_ok(r["expr"]), r["alert"]
                used = {metric_base(m) for m in metric_re.findall(r["expr"])}
                known = METRICS | SINK_METRICS | DURABLE_METRICS | TLS_METRICS
                assert used and used <= known, "%s: %s" % (r["alert"], used - known)
                if "for" in r:
                    assert re.fullmatch(r"\d+[smh]", r["for"]), r["for"]
                alerts[r["alert"]] = r
        assert len(alerts) == sum(len(g["rules"]) for g in rules["groups"]), "duplicate alert names"
        by_metric = {m: [a for a, r in alerts.items() if m in r["expr"]] for m in METRICS}
        assert any("status=~\"5..\"" in alerts[a]["expr"] for a in by_metric["credwatch_http_requests_total"])
        assert by_metric["credwatch_store_errors_total"], "no store error alert"
        assert by_metric["credwatch_ready"], "no readiness alert"
        assert by_metric["credwatch_findings_created_total"], "no findings alert"
        assert "credwatch_tls_certificate_not_after_seconds" in alerts.get("CredwatchCertificateExpiresSoon",
                                                                            {}).get("expr", ""), "no certificate alert"
        near = alerts.get("CredwatchDurableStoreNearFull", {}).get("expr", "")
        assert {"credwatch_store_used_bytes", "credwatch_store_data_max_bytes"} <= set(metric_re.findall(near)), \
            "no alert on the durable store approaching its bound"
        # Delivery to the sinks: backlog age, dead letters, and a sink failing with nothing getting through.
        for name, metrics in (("CredwatchSinkBacklog", {"credwatch_sink_oldest_undelivered_age_seconds"}),
                              ("CredwatchSinkDeadLetters", {"credwatch_sink_dead_lettered_total"}),
                              ("CredwatchSinkFailing", {"credwatch_sink_failed_attempts_total",
                                                        "credwatch_sink_delivered_total"})):
            assert name in alerts, "no %s alert" % name
            assert set(metric_re.findall(alerts[name]["expr"])) == metrics, (name, alerts[name]["expr"])
            assert "sink" in alerts[name]["expr"], "%s does not keep the sink label" % name

    @check("compose observability profile: Prometheus loads the rules, Grafana gets the dashboard")
    def _():
        svcs = compose["services"]
        vols = " ".join(svcs["prometheus"]["volumes"] + svcs["grafana"]["volumes"])
        assert "prometheus-rules.yaml" in vols and "grafana-dashboard.json" in vols
        prom = load_yaml_all(os.path.join(obs, "compose", "prometheus.yml"))[0]
        assert prom["scrape_configs"][0]["dns_sd_configs"][0]["names"] == ["credwatch"]

    @check("deploy READMEs exist and link only to files that exist")
    def _():
        errors = []
        for path in deploy_files(".md"):
            for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", read(path)):
                if link.startswith(("http://", "https://")):
                    continue
                if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(path), link))):
                    errors.append("%s -> %s" % (rel(path), link))
        for need in ("README.md", "kubernetes/README.md", "aws/README.md", "observability/README.md"):
            if not os.path.exists(os.path.join(DEPLOY, need)):
                errors.append("missing deploy/%s" % need)
        assert not errors, errors

    return 0 if all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
