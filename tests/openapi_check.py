#!/usr/bin/python3
"""openapi_check.py — the contract test between `credwatch serve` and openapi/openapi.json.

  openapi_check.py routes SPEC ROUTES      the (method, path) pairs printed by --print-routes
                                           equal the operations of the spec
  openapi_check.py live SPEC BASE INGEST_TOKEN READ_TOKEN SAMPLE
                                           live responses of a running server validate against
                                           the spec's response schemas (and documented headers);
                                           the query parameters the requests use are documented

Prints `ok - name` / `not ok - name`; exits 1 when anything failed.
"""
import base64
import json
import sys
import urllib.error
import urllib.request

import jsonschema

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
failures = 0


def report(name, cond, detail=""):
    global failures
    print(("ok - " if cond else "not ok - ") + name + ("" if cond or not detail else " (" + detail + ")"))
    if not cond:
        failures += 1
    return cond


def spec_routes(spec):
    return {(m.upper(), p) for p, item in spec["paths"].items() for m in item if m in HTTP_METHODS}


def check_routes(spec, routes_file):
    served = set()
    for line in open(routes_file):
        line = line.strip()
        if line:
            method, path = line.split(" ", 1)
            served.add((method, path))
    documented = spec_routes(spec)
    report("--print-routes is not empty", len(served) > 0)
    report("every served route is in openapi.json", served <= documented,
           "undocumented: " + repr(sorted(served - documented)))
    report("every openapi.json operation is served", documented <= served,
           "not served: " + repr(sorted(documented - served)))


class Checker:
    def __init__(self, spec):
        self.spec = spec
        self.resolver = jsonschema.RefResolver.from_schema(spec)
        self.formats = jsonschema.FormatChecker()

    def deref(self, obj):
        while isinstance(obj, dict) and "$ref" in obj:
            _, obj = self.resolver.resolve(obj["$ref"])
        return obj

    def response_spec(self, template, method, status):
        """The documented response; unknown paths and methods fall back to the shared errors."""
        item = self.spec["paths"].get(template)
        op = item.get(method.lower()) if item else None
        if op is None and item is not None:
            # a path whose operations document their own 405 (Firehose's shape) answers other methods so
            own = [o["responses"]["405"] for m, o in item.items() if m in HTTP_METHODS and "405" in o["responses"]]
            if own and status == 405:
                return self.deref(own[0]), True
        if op is None:
            name = "NotFound" if item is None else "MethodNotAllowed"
            return self.deref({"$ref": "#/components/responses/" + name}), True
        resp = op["responses"].get(str(status))
        return (self.deref(resp), True) if resp is not None else (None, False)

    def validate(self, name, template, method, status, headers, body):
        resp, documented = self.response_spec(template, method, status)
        if not report(name + ": status %d is documented" % status, documented):
            return
        for hname in resp.get("headers", {}):
            report(name + ": header " + hname, hname.lower() in headers, "missing")
        content = resp.get("content", {})
        ctype = headers.get("content-type", "").split(";")[0].strip()
        if not report(name + ": content type " + ctype + " documented", ctype in content,
                      "documented: " + ", ".join(content)):
            return
        schema = content[ctype].get("schema", {})
        if ctype != "application/json":
            return
        try:
            doc = json.loads(body)
        except ValueError as e:
            report(name + ": body is JSON", False, str(e))
            return
        validator = jsonschema.Draft202012Validator(schema, resolver=self.resolver, format_checker=self.formats)
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        report(name + ": body validates", not errors,
               "; ".join("%s: %s" % ("/".join(map(str, e.absolute_path)), e.message[:200]) for e in errors[:3]))


def call(base, method, path, token=None, body=None, ctype=None, extra=None):
    req = urllib.request.Request(base + path, data=body, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if ctype:
        req.add_header("Content-Type", ctype)
    for k, v in (extra or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


# Other workloads' keys (shapes of tests/data/workload-shapes.json): an ECS task's key issued by
# ecs-tasks, named again by an EC2 issuance (conflicting_issuance of another kind) and used from an
# external address (full rules); an EC2 instance's key known only from ec2RoleDelivery, used from an
# external and a private address (outside-AWS rules: the private one is not judged).
ECS_KEY, EC2_KEY = "ASIAQEXAMPLEECSOAS01", "ASIAQEXAMPLEEC2OAS01"


def _issue(eid, akid, service, session, role):
    return {"eventVersion": "1.08", "eventID": eid, "eventTime": "2024-03-13T08:30:00Z",
            "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole", "awsRegion": "us-east-1",
            "sourceIPAddress": service, "userAgent": service,
            "userIdentity": {"type": "AWSService", "invokedBy": service},
            "requestParameters": {"roleArn": "arn:aws:iam::111122223333:role/" + role, "roleSessionName": session},
            "responseElements": {"credentials": {"accessKeyId": akid, "expiration": "Mar 13, 2024, 2:30:00 PM"}},
            "recipientAccountId": "111122223333"}


def _use(eid, akid, ip, role, session, ec2=False):
    ctx = {"ec2RoleDelivery": "2.0"} if ec2 else {}
    return {"eventVersion": "1.08", "eventID": eid, "eventTime": "2024-03-13T09:00:00Z",
            "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets", "awsRegion": "us-east-1",
            "sourceIPAddress": ip, "userAgent": "[aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 botocore/1.17.59]",
            "userIdentity": {"type": "AssumedRole", "accessKeyId": akid, "accountId": "111122223333",
                             "arn": "arn:aws:sts::111122223333:assumed-role/%s/%s" % (role, session),
                             "sessionContext": ctx},
            "recipientAccountId": "111122223333"}


WORKLOAD_RECORDS = json.dumps({"Records": [
    _issue("oas-ecs-issue", ECS_KEY, "ecs-tasks.amazonaws.com", "0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b", "task"),
    _issue("oas-ecs-issue-2", ECS_KEY, "ec2.amazonaws.com", "i-0abcdef1234567890", "web"),
    _use("oas-ecs-use", ECS_KEY, "198.51.100.7", "task", "0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b"),
    _use("oas-ec2-use-1", EC2_KEY, "198.51.100.8", "web", "i-0abcdef1234567890", ec2=True),
    _use("oas-ec2-use-2", EC2_KEY, "10.1.2.3", "web", "i-0abcdef1234567890", ec2=True),
]}).encode()


# POST /v1/ingest/firehose: one Firehose request holding one record of the sample (set in check_live).
FH = "/v1/ingest/firehose"


def firehose_body(sample):
    rec = json.loads(sample)["Records"][0]
    data = base64.b64encode(json.dumps(rec).encode()).decode()
    return json.dumps({"requestId": "ed4acda5-034f-9f42-bba1-f29aea6d7d8f", "timestamp": 1,
                       "records": [{"data": data}]}).encode()


def check_live(spec, base, ingest, read, sample_path):
    c = Checker(spec)
    sample = open(sample_path, "rb").read()
    FH_BODY = firehose_body(sample)
    fid = "cwf-ASIAEXAMPLEKEY000001"
    J = "application/json"
    cases = [
        # name, template, method, path, token, body, content type, expected status
        ("ingest", "/v1/ingest/cloudtrail", "POST", "/v1/ingest/cloudtrail", ingest, sample, J, 200),
        ("ingest again (eventbridge)", "/v1/ingest/eventbridge", "POST", "/v1/ingest/eventbridge", ingest, sample, J, 200),
        ("ingest malformed", "/v1/ingest/cloudtrail", "POST", "/v1/ingest/cloudtrail", ingest, b"{\"Records\":[", J, 400),
        ("ingest unauthenticated", "/v1/ingest/cloudtrail", "POST", "/v1/ingest/cloudtrail", None, sample, J, 401),
        ("ingest wrong role", "/v1/ingest/cloudtrail", "POST", "/v1/ingest/cloudtrail", read, sample, J, 403),
        ("ingest text/plain", "/v1/ingest/cloudtrail", "POST", "/v1/ingest/cloudtrail", ingest, sample, "text/plain", 415),
        ("ingest too large", "/v1/ingest/cloudtrail", "POST", "/v1/ingest/cloudtrail", ingest, b" " * 70000, J, 413),
        ("ingest GET", "/v1/ingest/cloudtrail", "GET", "/v1/ingest/cloudtrail", ingest, None, None, 405),
        ("firehose", FH, "POST", FH, ingest, FH_BODY, J, 200),
        ("firehose no envelope", FH, "POST", FH, ingest, b"[]", J, 400),
        ("firehose unauthenticated", FH, "POST", FH, None, FH_BODY, J, 401),
        ("firehose wrong role", FH, "POST", FH, read, FH_BODY, J, 403),
        ("firehose text/plain", FH, "POST", FH, ingest, FH_BODY, "text/plain", 415),
        ("firehose too large", FH, "POST", FH, ingest, b" " * 70000, J, 413),
        ("firehose GET", FH, "GET", FH, ingest, None, None, 405),
        ("list", "/v1/findings", "GET", "/v1/findings", read, None, None, 200),
        ("list page", "/v1/findings", "GET", "/v1/findings?limit=1&status=open", read, None, None, 200),
        ("list bad limit", "/v1/findings", "GET", "/v1/findings?limit=9999", read, None, None, 400),
        ("list bad cursor", "/v1/findings", "GET", "/v1/findings?cursor=%%%", read, None, None, 400),
        ("ingest workloads", "/v1/ingest/cloudtrail", "POST", "/v1/ingest/cloudtrail", ingest, WORKLOAD_RECORDS, J, 200),
        ("list workload", "/v1/findings", "GET", "/v1/findings?workload=ecs&limit=5", read, None, None, 200),
        ("list bad workload", "/v1/findings", "GET", "/v1/findings?workload=fargate", read, None, None, 400),
        ("get ecs", "/v1/findings/{id}", "GET", "/v1/findings/cwf-" + ECS_KEY, read, None, None, 200),
        ("get ec2", "/v1/findings/{id}", "GET", "/v1/findings/cwf-" + EC2_KEY, read, None, None, 200),
        ("get ecs ocsf", "/v1/findings/{id}", "GET", "/v1/findings/cwf-" + ECS_KEY + "?format=ocsf", read, None, None, 200),
        ("get ecs asff", "/v1/findings/{id}", "GET", "/v1/findings/cwf-" + ECS_KEY + "?format=asff", read, None, None, 200),
        ("key ecs", "/v1/keys/{accessKeyId}", "GET", "/v1/keys/" + ECS_KEY, read, None, None, 200),
        ("key ec2", "/v1/keys/{accessKeyId}", "GET", "/v1/keys/" + EC2_KEY, read, None, None, 200),
        ("get", "/v1/findings/{id}", "GET", "/v1/findings/" + fid, read, None, None, 200),
        ("get unknown", "/v1/findings/{id}", "GET", "/v1/findings/cwf-NOPE", read, None, None, 404),
        ("patch", "/v1/findings/{id}", "PATCH", "/v1/findings/" + fid, read,
         b'{"status":"suppressed","note":"known test key"}', J, 200),
        ("patch invalid", "/v1/findings/{id}", "PATCH", "/v1/findings/" + fid, read, b'{"status":"retracted"}', J, 400),
        ("patch text/plain", "/v1/findings/{id}", "PATCH", "/v1/findings/" + fid, read, b'{}', "text/plain", 415),
        ("delete finding", "/v1/findings/{id}", "DELETE", "/v1/findings/" + fid, read, None, None, 405),
        ("key", "/v1/keys/{accessKeyId}", "GET", "/v1/keys/ASIAEXAMPLEKEY000001", read, None, None, 200),
        ("key invalid", "/v1/keys/{accessKeyId}", "GET", "/v1/keys/nope", read, None, None, 400),
        ("key unknown", "/v1/keys/{accessKeyId}", "GET", "/v1/keys/ASIAUNKNOWNKEY000099", read, None, None, 404),
        ("key wrong role", "/v1/keys/{accessKeyId}", "GET", "/v1/keys/ASIAEXAMPLEKEY000001", ingest, None, None, 403),
        ("backup wrong role", "/v1/backup", "GET", "/v1/backup", ingest, None, None, 403),
        ("backup on the memory store", "/v1/backup", "GET", "/v1/backup", read, None, None, 409),
        ("healthz", "/healthz", "GET", "/healthz", None, None, None, 200),
        ("readyz", "/readyz", "GET", "/readyz", None, None, None, 200),
        ("metrics", "/metrics", "GET", "/metrics", None, None, None, 200),
        ("openapi", "/openapi.json", "GET", "/openapi.json", None, None, None, 200),
        ("unknown path", None, "GET", "/v2/nothing", None, None, None, 404),
    ]
    for name, template, method, path, token, body, ctype, want in cases:
        if template and "?" in path:
            item = spec["paths"][template]
            params = [c.deref(x) for x in item.get("parameters", []) + item[method.lower()].get("parameters", [])]
            known = {x["name"] for x in params if x.get("in") == "query"}
            used = {kv.split("=", 1)[0] for kv in path.split("?", 1)[1].split("&")}
            report(name + ": query parameters documented", used <= known, "undocumented: " + repr(sorted(used - known)))
        status, headers, text = call(base, method, path, token, body, ctype)
        if not report(name + ": status %d" % want, status == want, "got %d: %s" % (status, text[:200])):
            continue
        c.validate(name, template, method, status, headers, text)
    # The workload fields hold what the schemas describe (a schema alone would pass nulls).
    _, _, text = call(base, "GET", "/v1/keys/" + ECS_KEY, read)
    k = json.loads(text)
    report("key ecs: workload, full rules, the EC2 issuance as conflicting",
           k["workload"] == {"kind": "ecs", "id": "0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b"} and
           k["verdict_rules"] == "full" and k["conflicting_issuance"]["kind"] == "ec2" and
           k["conflicting_issuance"]["workload_id"] == "i-0abcdef1234567890" and
           k["conflicting_issuance"]["function_name"] is None, json.dumps(k)[:300])
    _, _, text = call(base, "GET", "/v1/keys/" + EC2_KEY, read)
    k = json.loads(text)
    report("key ec2: outside-AWS rules, the private address not judged",
           k["workload"]["kind"] == "ec2" and k["verdict_rules"] == "outside_aws" and
           k["not_judged"]["count"] == 1 and k["not_judged"]["source_ips"] == ["10.1.2.3"] and
           k["outside"]["source_ips"] == ["198.51.100.8"], json.dumps(k)[:300])
    _, _, text = call(base, "GET", "/v1/findings/cwf-" + ECS_KEY, read)
    f = json.loads(text)
    codes = {r["code"] for r in f["reasons"]}
    report("get ecs: workload, no function name, issued_by_service, T1552.005",
           f["workload"]["kind"] == "ecs" and f["function_name"] is None and "issued_by_service" in codes and
           "T1552.005" in {t["id"] for t in f["attack"]}, json.dumps(f)[:300])
    # The served document is the one in the repository.
    status, _, text = call(base, "GET", "/openapi.json")
    report("served openapi.json equals the file", status == 200 and json.loads(text) == spec)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("routes", "live"):
        print(__doc__, file=sys.stderr)
        return 2
    spec = json.load(open(sys.argv[2]))
    if sys.argv[1] == "routes":
        jsonschema.Draft202012Validator.check_schema({"$defs": spec["components"]["schemas"]})
        check_routes(spec, sys.argv[3])
    else:
        check_live(spec, *sys.argv[3:7])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
