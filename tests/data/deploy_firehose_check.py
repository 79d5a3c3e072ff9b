#!/usr/bin/python3
"""The Firehose paths under deploy/aws (issue 15), checked without AWS (run by tests/it_deploy.sh).

  cloudformation/firehose-cloudwatch.yaml   CloudTrail -> CloudWatch Logs -> subscription filter -> Firehose -> credwatch
  cloudformation/firehose-eventbridge.yaml  EventBridge rule -> Firehose -> credwatch
  terraform/firehose/                       both, source_type = "cloudwatch_logs" | "eventbridge"

Prints `ok - ` / `not ok - ` lines through deploy_check.py's `check` and exits 1 when one failed. Checks: the
templates' structure (deploy_check.check_cfn_template: references, cycles, parameter defaults, and every property with
--cfn-spec); the Firehose stream's required settings (HTTP endpoint on /v1/ingest/firehose, the access key only in
Secrets Manager in Firehose's {"api_key"} form, FailedDataOnly S3 backup, retry duration, buffering that fits
credwatch's body cap, GZIP requests, delivery error logging) and that both templates share them; least privilege of
the three roles; the EventBridge pattern equal to eventbridge.yaml's and event-pattern.json; the CloudWatch Logs filter
pattern (same text in CloudFormation and Terraform, at most 1,024 characters) run by a matcher of the JSON filter
syntax it uses against the workload record shapes, deploy_samples.json and non-workload records, with the EventBridge
pattern on the same records as the reference; the Terraform module's references, resources and defaults.
"""

import argparse
import copy
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_check as dc  # noqa: E402

ROOT = dc.ROOT
AWS = os.path.join(ROOT, "deploy", "aws")
CFN = os.path.join(AWS, "cloudformation")
TF = os.path.join(AWS, "terraform")
SHAPES = os.path.join(ROOT, "tests", "data", "workload-shapes.json")
check = dc.check

# Without the npm CloudFormation specification: the types and GetAtt attributes these templates use (cfn-lint, when
# installed, checks them against AWS's current schemas).
dc.KNOWN_TYPES.update({
    "AWS::KinesisFirehose::DeliveryStream": {"Arn"}, "AWS::SecretsManager::Secret": {"Id"},
    "AWS::S3::Bucket": {"Arn", "DomainName", "RegionalDomainName"}, "AWS::S3::BucketPolicy": set(),
    "AWS::Logs::LogStream": set(), "AWS::Logs::SubscriptionFilter": set(),
})

# Properties newer than the pinned npm specification (@aws-cdk/cfnspec 2.72.1, March 2023), left to cfn-lint.
dc.SPEC_NEWER.add(("AWS::KinesisFirehose::DeliveryStream", "SecretsManagerConfiguration"))  # 2024

CFN_TO_TF = {
    "AWS::KinesisFirehose::DeliveryStream": "aws_kinesis_firehose_delivery_stream",
    "AWS::SecretsManager::Secret": "aws_secretsmanager_secret", "AWS::S3::Bucket": "aws_s3_bucket",
    "AWS::S3::BucketPolicy": "aws_s3_bucket_policy", "AWS::Logs::LogGroup": "aws_cloudwatch_log_group",
    "AWS::Logs::LogStream": "aws_cloudwatch_log_stream",
    "AWS::Logs::SubscriptionFilter": "aws_cloudwatch_log_subscription_filter", "AWS::IAM::Role": "aws_iam_role",
    "AWS::Events::Rule": "aws_cloudwatch_event_rule", "AWS::SQS::Queue": "aws_sqs_queue",
    "AWS::SQS::QueuePolicy": "aws_sqs_queue_policy", "AWS::CloudWatch::Alarm": "aws_cloudwatch_metric_alarm",
}

# AWS's ranges (Firehose API reference: HttpEndpointBufferingHints, HttpEndpointRetryOptions) and credwatch's default
# body cap (README "Running the service": CREDWATCH_MAX_BODY_BYTES).
FIREHOSE_SIZE_MIB = (1, 64)
FIREHOSE_INTERVAL_S = (0, 900)
FIREHOSE_RETRY_S = (0, 7200)
CWL_PATTERN_MAX = 1024  # PutSubscriptionFilter filterPattern: at most 1,024 characters


def readme_body_cap():
    m = re.search(r"\|\s*`CREDWATCH_MAX_BODY_BYTES`\s*\|\s*`(\d+)`", dc.read(os.path.join(ROOT, "README.md")))
    assert m, "README.md has no CREDWATCH_MAX_BODY_BYTES default"
    return int(m.group(1))


# ---- CloudWatch Logs JSON filter patterns ---------------------------------------------------------------------------
# The subset these templates use, implemented only where its meaning is unambiguous: `{ EXPR }`, EXPR a chain of
# terms joined by one kind of operator per parenthesis level (&& or ||: a level mixing both is refused, so operator
# precedence never matters), a term `( EXPR )` or `$.a.b.c = "value"` with `*` in the value matching any run of
# characters (AWS's CloudTrail alarm examples: "AccessDenied*", "*UnauthorizedOperation"). The selector must name a
# string; an absent field or another JSON type does not match. Anything else (!=, numbers, arrays, IS NULL, regex) is
# refused: extend the matcher when the pattern needs it.

TOKEN = re.compile(r'\s*(?:(\(|\)|&&|\|\||=)|(\$(?:\.[A-Za-z0-9_]+)+)|"((?:[^"\\]|\\.)*)")')


def cwl_parse(text):
    text = text.strip()
    assert text.startswith("{") and text.endswith("}"), "not a JSON filter pattern { ... }"
    body, pos, toks = text[1:-1], 0, []
    while body[pos:].strip():
        m = TOKEN.match(body, pos)
        assert m, "unsupported filter syntax at %r" % body[pos:pos + 30]
        if m.group(1):
            toks.append(m.group(1))
        elif m.group(2):
            toks.append(("sel", m.group(2)))
        else:
            toks.append(("str", m.group(3)))
        pos = m.end()
    toks.append(None)
    i = 0

    def expr():
        nonlocal i
        terms, ops = [term()], set()
        while toks[i] in ("&&", "||"):
            ops.add(toks[i])
            i += 1
            terms.append(term())
        assert len(ops) <= 1, "&& and || mixed at one level: add parentheses"
        return ("and" if ops == {"&&"} else "or", terms) if ops else terms[0]

    def term():
        nonlocal i
        t = toks[i]
        if t == "(":
            i += 1
            e = expr()
            assert toks[i] == ")", "missing )"
            i += 1
            return e
        assert isinstance(t, tuple) and t[0] == "sel", "expected a $.selector, got %r" % (t,)
        assert toks[i + 1] == "=", "only = is supported here"
        v = toks[i + 2]
        assert isinstance(v, tuple) and v[0] == "str", "only quoted string values are supported here"
        i += 3
        return ("eq", t[1][2:].split("."), v[1])

    tree = expr()
    assert toks[i] is None, "trailing tokens"
    return tree


def cwl_matches(tree, record):
    kind = tree[0]
    if kind == "and":
        return all(cwl_matches(t, record) for t in tree[1])
    if kind == "or":
        return any(cwl_matches(t, record) for t in tree[1])
    _, path, want = tree
    v = record
    for p in path:
        if not isinstance(v, dict) or p not in v:
            return False
        v = v[p]
    return isinstance(v, str) and dc._wildcard(want, v)


def cwl_equalities(tree, out=None):
    """{selector: set of values} of every equality in the pattern."""
    out = {} if out is None else out
    if tree[0] in ("and", "or"):
        for t in tree[1]:
            cwl_equalities(t, out)
    else:
        out.setdefault(".".join(tree[1]), set()).add(tree[2])
    return out


DETAIL_TYPES = {"AwsApiCall": "AWS API Call via CloudTrail", "AwsServiceEvent": "AWS Service Event via CloudTrail",
                "AwsConsoleSignIn": "AWS Console Sign In via CloudTrail",
                "AwsConsoleAction": "AWS Console Action via CloudTrail"}


def envelope(rec):
    """A CloudTrail record as the default bus delivers it (detail-type from eventType, source aws.<service>)."""
    return {"version": "0", "id": "0f1e2d3c-0000-4000-8000-0000000000bb",
            "detail-type": DETAIL_TYPES.get(rec.get("eventType"), "unknown"),
            "source": "aws." + str(rec.get("eventSource", "")).split(".")[0],
            "account": rec.get("recipientAccountId", "111122223333"), "time": rec.get("eventTime"),
            "region": rec.get("awsRegion"), "resources": [], "detail": rec}


# ---- helpers ---------------------------------------------------------------------------------------------------------

def of_type(template, t):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == t}


def one(template, t):
    items = list(of_type(template, t).items())
    assert len(items) == 1, "%d resources of type %s" % (len(items), t)
    return items[0]


def statements(role):
    return [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def as_list(v):
    return v if isinstance(v, list) else [v]


def param_default(template, value):
    """The default of a Ref'd parameter (or the literal)."""
    if isinstance(value, dict) and "Ref" in value:
        return template["Parameters"][value["Ref"]]["Default"]
    return value


def param_range(template, value):
    p = template["Parameters"][value["Ref"]]
    return float(p["MinValue"]), float(p["MaxValue"])


def tf_defaults(text):
    out = {}
    for m in re.finditer(r'^variable\s+"([^"]+)"\s*\{(.*?)^\}', text, re.M | re.S):
        d = re.search(r"^\s*default\s*=\s*(\S+)", m.group(2), re.M)
        if d:
            out[m.group(1)] = d.group(1).strip('"')
    return out


# ---- checks ----------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cfn-spec")
    opts = ap.parse_args()
    spec = json.load(open(opts.cfn_spec, encoding="utf-8")) if opts.cfn_spec else None

    cw = dc.check_cfn_template(os.path.join(CFN, "firehose-cloudwatch.yaml"), spec)
    ebf = dc.check_cfn_template(os.path.join(CFN, "firehose-eventbridge.yaml"), spec)
    eb = dc.load_yaml_all(os.path.join(CFN, "eventbridge.yaml"), cfn=True)[0]
    templates = (("firehose-cloudwatch.yaml", cw), ("firehose-eventbridge.yaml", ebf))
    body_cap = readme_body_cap()

    for name, t in templates:
        res = t["Resources"]

        @check("%s: HTTP endpoint /v1/ingest/firehose, access key only in Secrets Manager ({\"api_key\"}), GZIP "
               "requests, FailedDataOnly backup to the stack's bucket, delivery errors logged" % name)
        def _(t=t, res=res):
            sname, stream = one(t, "AWS::KinesisFirehose::DeliveryStream")
            p = stream["Properties"]
            assert p["DeliveryStreamType"] == "DirectPut"
            assert p["DeliveryStreamEncryptionConfigurationInput"]["KeyType"] == "AWS_OWNED_CMK"
            h = p["HttpEndpointDestinationConfiguration"]
            ep = h["EndpointConfiguration"]
            assert ep["Url"]["Fn::Sub"] == "${CredwatchBaseUrl}/v1/ingest/firehose", ep["Url"]
            assert "AccessKey" not in ep, "the access key must not be in the stream's configuration"
            sm = h["SecretsManagerConfiguration"]
            assert sm["Enabled"] is True
            secret_name = sm["SecretARN"]["Ref"]
            secret = res[secret_name]
            assert secret["Type"] == "AWS::SecretsManager::Secret"
            assert secret["Properties"]["SecretString"] == {"Fn::Sub": '{"api_key":"${IngestToken}"}'}
            assert t["Parameters"]["IngestToken"].get("NoEcho") is True
            # the token goes into JSON unescaped: the parameter must exclude quotes and backslashes
            pat = t["Parameters"]["IngestToken"]["AllowedPattern"]
            assert not re.fullmatch(pat, 'abc"defghijklmnopq') and not re.fullmatch(pat, "abc\\defghijklmnopq")
            assert h["RequestConfiguration"]["ContentEncoding"] == "GZIP"
            assert h["S3BackupMode"] == "FailedDataOnly"
            s3 = h["S3Configuration"]
            bucket = s3["BucketARN"]["Fn::GetAtt"][0]
            assert res[bucket]["Type"] == "AWS::S3::Bucket"
            assert res[bucket].get("DeletionPolicy") == "Retain", "failed records must survive the stack"
            assert "ProcessingConfiguration" not in h, "credwatch inflates CloudWatch Logs messages itself"
            for where, opts_ in (("destination", h["CloudWatchLoggingOptions"]),
                                 ("backup", s3["CloudWatchLoggingOptions"])):
                assert opts_["Enabled"] is True, where
                assert res[opts_["LogGroupName"]["Ref"]]["Type"] == "AWS::Logs::LogGroup", where
                assert res[opts_["LogStreamName"]["Ref"]]["Type"] == "AWS::Logs::LogStream", where
            role = h["RoleARN"]["Fn::GetAtt"][0]
            assert s3["RoleARN"]["Fn::GetAtt"][0] == role and sm["RoleARN"]["Fn::GetAtt"][0] == role

        @check("%s: retry duration 3600-7200 s by default, buffering within Firehose's ranges and credwatch's "
               "%d-byte body cap" % (name, body_cap))
        def _(t=t):
            h = one(t, "AWS::KinesisFirehose::DeliveryStream")[1]["Properties"]["HttpEndpointDestinationConfiguration"]
            retry = h["RetryOptions"]["DurationInSeconds"]
            assert 3600 <= param_default(t, retry) <= 7200, param_default(t, retry)
            lo, hi = param_range(t, retry)
            assert FIREHOSE_RETRY_S[0] <= lo and hi <= FIREHOSE_RETRY_S[1]
            size, interval = h["BufferingHints"]["SizeInMBs"], h["BufferingHints"]["IntervalInSeconds"]
            lo, hi = param_range(t, size)
            assert FIREHOSE_SIZE_MIB[0] <= lo <= param_default(t, size) <= hi <= FIREHOSE_SIZE_MIB[1]
            # Worst case on the wire: records that do not compress (CloudWatch Logs messages are gzip already),
            # base64 (4/3) inside the JSON envelope, and a Firehose overshoot of its hint by a 4 MiB PutRecordBatch.
            worst = (hi + 4) * 2 ** 20 * 4 / 3 + 64 * 1024
            assert worst < body_cap, "largest buffer %d MiB may exceed the body cap: %d bytes" % (hi, worst)
            lo, hi = param_range(t, interval)
            assert FIREHOSE_INTERVAL_S[0] <= lo <= param_default(t, interval) <= hi <= FIREHOSE_INTERVAL_S[1]
            s3 = h["S3Configuration"]
            assert s3["CompressionFormat"] == "GZIP"

        @check("%s: Firehose role trusts firehose.amazonaws.com for this account only and may write the backup "
               "bucket, read the one secret and log, nothing else" % name)
        def _(t=t, res=res):
            h = one(t, "AWS::KinesisFirehose::DeliveryStream")[1]["Properties"]["HttpEndpointDestinationConfiguration"]
            role = res[h["RoleARN"]["Fn::GetAtt"][0]]["Properties"]
            trust = role["AssumeRolePolicyDocument"]["Statement"]
            assert len(trust) == 1 and trust[0]["Principal"] == {"Service": "firehose.amazonaws.com"}
            assert trust[0]["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}
            bucket = h["S3Configuration"]["BucketARN"]["Fn::GetAtt"][0]
            secret = h["SecretsManagerConfiguration"]["SecretARN"]["Ref"]
            logs = h["CloudWatchLoggingOptions"]["LogGroupName"]["Ref"]
            allowed = {
                "BackupBucket": ({"s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket",
                                  "s3:ListBucketMultipartUploads", "s3:PutObject"},
                                 [{"Fn::GetAtt": [bucket, "Arn"]}, {"Fn::Sub": "${%s.Arn}/*" % bucket}]),
                "AccessKey": ({"secretsmanager:GetSecretValue"}, [{"Ref": secret}]),
                "DeliveryErrors": ({"logs:PutLogEvents"}, [{"Fn::Sub": "${%s.Arn}:*" % logs}]),
            }
            sts = statements({"Properties": role})
            assert len(role["Policies"]) == 1 and "ManagedPolicyArns" not in role
            assert {s["Sid"] for s in sts} == set(allowed), [s.get("Sid") for s in sts]
            for s in sts:
                acts, resources = allowed[s["Sid"]]
                assert s["Effect"] == "Allow" and set(as_list(s["Action"])) == acts, s
                assert as_list(s["Resource"]) == resources, s

    @check("firehose-cloudwatch.yaml and firehose-eventbridge.yaml: the same stream, secret, bucket, log, role, "
           "alarms and shared parameters (only the source differs)")
    def _():
        shared = ["AccessKeySecret", "BackupBucket", "BackupBucketPolicy", "DeliveryLogGroup", "DestinationLogStream",
                  "BackupLogStream", "FirehoseRole", "DeliveryFreshnessAlarm", "BackupAlarm"]
        for r in shared:
            assert cw["Resources"][r] == ebf["Resources"][r], r
        a = copy.deepcopy(cw["Resources"]["DeliveryStream"])
        b = copy.deepcopy(ebf["Resources"]["DeliveryStream"])
        for x, src in ((a, "cloudwatch-logs"), (b, "eventbridge")):
            attrs = x["Properties"]["HttpEndpointDestinationConfiguration"]["RequestConfiguration"]["CommonAttributes"]
            assert attrs == [{"AttributeName": "credwatch-source", "AttributeValue": src}], attrs
            attrs[0]["AttributeValue"] = ""
        assert a == b, "the two DeliveryStream definitions differ"
        for p in set(cw["Parameters"]) & set(ebf["Parameters"]):
            assert cw["Parameters"][p] == ebf["Parameters"][p], p
        assert set(cw["Parameters"]) - set(ebf["Parameters"]) == {"CloudTrailLogGroupName"}

    # -- (a) CloudWatch Logs --
    cwr = cw["Resources"]
    fname, filt = one(cw, "AWS::Logs::SubscriptionFilter")
    fp = filt["Properties"]
    pattern_text = fp["FilterPattern"]
    tf_pattern_text = dc.read(os.path.join(TF, "firehose", "filter-pattern.txt")).strip()

    @check("firehose-cloudwatch.yaml: subscription filter on the trail's log group into the stream, with a role "
           "CloudWatch Logs of this account and region may assume, allowed only PutRecord/PutRecordBatch on it")
    def _():
        assert fp["LogGroupName"] == {"Ref": "CloudTrailLogGroupName"}
        stream = one(cw, "AWS::KinesisFirehose::DeliveryStream")[0]
        assert fp["DestinationArn"] == {"Fn::GetAtt": [stream, "Arn"]}
        role = cwr[fp["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
        trust = role["AssumeRolePolicyDocument"]["Statement"]
        assert len(trust) == 1 and trust[0]["Principal"] == {"Service": "logs.amazonaws.com"}
        assert trust[0]["Condition"] == {"StringLike": {"aws:SourceArn": {
            "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:*"}}}
        sts = statements({"Properties": role})
        assert len(sts) == 1 and set(sts[0]["Action"]) == {"firehose:PutRecord", "firehose:PutRecordBatch"}
        assert sts[0]["Resource"] == {"Fn::GetAtt": [stream, "Arn"]}
        assert "Distribution" not in fp, "Distribution applies to Kinesis Data Streams only"

    @check("CloudWatch Logs filter pattern: the same text in firehose-cloudwatch.yaml and terraform/firehose/"
           "filter-pattern.txt, at most %d characters, parsed by the matcher" % CWL_PATTERN_MAX)
    def _():
        assert pattern_text == tf_pattern_text, "CloudFormation and Terraform filter patterns differ"
        assert len(pattern_text) <= CWL_PATTERN_MAX, len(pattern_text)
        cwl_parse(pattern_text)

    tree = None
    try:
        tree = cwl_parse(pattern_text)
    except AssertionError:
        pass
    ev_pattern = json.load(open(os.path.join(TF, "eventbridge", "event-pattern.json"), encoding="utf-8"))

    @check("CloudWatch Logs filter pattern names exactly the event pattern's values (detail-type as eventType "
           "AwsApiCall, source aws.sts as eventSource, the four AssumeRole issuers, both STS calls)")
    def _():
        assert tree, "filter pattern does not parse"
        eq = cwl_equalities(tree)
        alts = ev_pattern["$or"]
        issuers = set(alts[1]["detail"]["userIdentity"]["invokedBy"])
        want = {
            "eventType": {k for k, v in DETAIL_TYPES.items() if v in ev_pattern["detail-type"]},
            "userIdentity.type": set(alts[0]["detail"]["userIdentity"]["type"]),
            "userIdentity.accessKeyId": {r["prefix"] + "*" for r in alts[0]["detail"]["userIdentity"]["accessKeyId"]},
            "eventSource": set(alts[1]["detail"]["eventSource"]) | set(alts[2]["detail"]["eventSource"]),
            "eventName": set(alts[1]["detail"]["eventName"]) | set(alts[2]["detail"]["eventName"]),
            "userIdentity.invokedBy": issuers,
        }
        assert eq == want, "filter %s, event pattern %s" % (eq, want)

    shapes = json.load(open(SHAPES, encoding="utf-8"))["shapes"]
    samples = json.load(open(dc.SAMPLES, encoding="utf-8"))
    records = [("workload shape: " + s["name"], s["record"]) for s in shapes]
    records += [("EventBridge sample: " + s["name"], s["event"]["detail"]) for s in samples["eventbridge"]
                if isinstance(s["event"].get("detail"), dict) and "eventSource" in s["event"]["detail"]]
    base = next(s["record"] for s in shapes
                if (s["record"].get("userIdentity") or {}).get("invokedBy") == "ecs-tasks.amazonaws.com")
    use = next(s["record"] for s in shapes if (s["record"].get("userIdentity") or {}).get("type") == "AssumedRole")

    def variant(rec, **fields):
        r = copy.deepcopy(rec)
        r.update(fields)
        return r

    iam_user = {"type": "IAMUser", "principalId": "AIDAEXAMPLEUSERID001", "arn": "arn:aws:iam::111122223333:user/alice",
                "accountId": "111122223333", "accessKeyId": "AKIAQEXAMPLEUSER0001", "userName": "alice"}
    negatives = [
        ("an IAM user's call with a long-term key (AKIA)",
         variant(use, userIdentity=iam_user, sourceIPAddress="198.51.100.7", userAgent="aws-cli/2.15.0")),
        ("an IAM user's AssumeRole (AKIA)", variant(base, userIdentity=iam_user, sourceIPAddress="198.51.100.7")),
        ("an IAM user's call with a GetSessionToken key (ASIA)",
         variant(use, userIdentity=dict(iam_user, accessKeyId="ASIAQEXAMPLEUSER0002"))),
        ("a console sign-in of a role session (eventType AwsConsoleSignIn)",
         variant(use, eventType="AwsConsoleSignIn", eventName="ConsoleLogin", eventSource="signin.amazonaws.com")),
        ("a CodeBuild issuance (invokedBy codebuild.amazonaws.com, not forwarded until captured)",
         variant(base, userIdentity={"type": "AWSService", "invokedBy": "codebuild.amazonaws.com"})),
        ("an AssumedRole use whose key is not ASIA", variant(use, userIdentity=dict(use["userIdentity"],
                                                                                  accessKeyId="AKIAQEXAMPLEKEY00001"))),
        ("AssumeRole invoked by lambda but not on STS (eventSource iam)", variant(base, eventSource="iam.amazonaws.com",
                                                                                 userIdentity={"type": "AWSService",
                                                                                               "invokedBy":
                                                                                               "lambda.amazonaws.com"})),
        ("a record without userIdentity", {k: v for k, v in use.items() if k != "userIdentity"}),
    ]

    @check("CloudWatch Logs filter pattern takes exactly what the EventBridge pattern takes: %d records "
           "(workload shapes, deploy samples) and %d that neither may take" % (len(records), len(negatives)))
    def _():
        assert tree, "filter pattern does not parse"
        errors, taken = [], 0
        for name, rec in records:
            want = dc.pattern_matches(ev_pattern, envelope(rec))
            got = cwl_matches(tree, rec)
            taken += got
            if got != want:
                errors.append("%s: filter %s, event pattern %s" % (name, got, want))
        for name, rec in negatives:
            got = (cwl_matches(tree, rec), dc.pattern_matches(ev_pattern, envelope(rec)))
            if any(got):
                errors.append("%s taken (filter, event pattern) = %s" % (name, got))
        assert not errors, "; ".join(errors)
        assert taken >= 15, "only %d records taken: the comparison proves little" % taken

    @check("CloudWatch Logs filter pattern takes every workload issuance and role-session use of the shapes and no "
           "IAM user's call")
    def _():
        assert tree, "filter pattern does not parse"
        for s in shapes:
            rec = s["record"]
            ui = rec.get("userIdentity") or {}
            must = s["expect"].get("evidence") == "issuance" or rec.get("eventName") == "AssumeRoleWithWebIdentity" or \
                (ui.get("type") == "AssumedRole" and str(ui.get("accessKeyId", "")).startswith("ASIA"))
            assert cwl_matches(tree, rec) == must, s["name"]
            if ui.get("type") == "IAMUser":
                assert not cwl_matches(tree, rec), s["name"]

    # -- (b) EventBridge --
    @check("firehose-eventbridge.yaml: the rule's pattern equals eventbridge.yaml's, terraform/eventbridge/"
           "event-pattern.json and terraform/firehose/event-pattern.json")
    def _():
        rule = one(ebf, "AWS::Events::Rule")[1]["Properties"]
        copy_ = json.load(open(os.path.join(TF, "firehose", "event-pattern.json"), encoding="utf-8"))
        base_rule = one(eb, "AWS::Events::Rule")[1]["Properties"]
        assert rule["EventPattern"] == ev_pattern, "differs from terraform/eventbridge/event-pattern.json"
        assert rule["EventPattern"] == base_rule["EventPattern"], "differs from eventbridge.yaml"
        assert copy_ == ev_pattern, "terraform/firehose/event-pattern.json differs"

    @check("firehose-eventbridge.yaml: rule state, target the stream through a put-only role, retry policy, DLQ")
    def _():
        rname, rule = one(ebf, "AWS::Events::Rule")
        p = rule["Properties"]
        assert p["State"] == "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" and p["EventBusName"] == "default"
        stream = one(ebf, "AWS::KinesisFirehose::DeliveryStream")[0]
        (target,) = p["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [stream, "Arn"]}
        assert "InputTransformer" not in target and "Input" not in target and "InputPath" not in target
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] and target["RetryPolicy"]["MaximumRetryAttempts"]
        dlq = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        assert ebf["Resources"][dlq]["Type"] == "AWS::SQS::Queue"
        role = ebf["Resources"][target["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
        trust = role["AssumeRolePolicyDocument"]["Statement"]
        assert len(trust) == 1 and trust[0]["Principal"] == {"Service": "events.amazonaws.com"}
        assert trust[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
        sts = statements({"Properties": role})
        assert len(sts) == 1 and set(sts[0]["Action"]) == {"firehose:PutRecord", "firehose:PutRecordBatch"}
        assert sts[0]["Resource"] == {"Fn::GetAtt": [stream, "Arn"]}
        qp = one(ebf, "AWS::SQS::QueuePolicy")[1]["Properties"]
        st = qp["PolicyDocument"]["Statement"][0]
        assert st["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": [rname, "Arn"]}

    # -- Terraform --
    mdir = os.path.join(TF, "firehose")
    decl, refs, texts = dc.tf_module(mdir)
    main_tf = re.sub(r"\s+", " ", texts.get("main.tf", ""))

    @check("terraform/firehose: files balance and every var/local/data/resource reference is declared")
    def _():
        assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf"} <= set(texts), sorted(texts)
        errors = []
        for name in texts:
            if not dc.hcl_balanced(dc.read(os.path.join(mdir, name))):
                errors.append("%s: unbalanced" % name)
        for f, kind, a, b in refs:
            if kind == "var" and a not in decl["variable"]:
                errors.append("%s: var.%s" % (f, a))
            elif kind == "local" and a not in decl["local"]:
                errors.append("%s: local.%s" % (f, a))
            elif kind == "data" and "%s.%s" % (a, b) not in decl["data"]:
                errors.append("%s: data.%s.%s" % (f, a, b))
            elif kind == "resource" and "%s.%s" % (a, b) not in decl["resource"] | decl["data"]:
                errors.append("%s: %s.%s" % (f, a, b))
        for m in re.finditer(r'file\("\$\{path\.module\}/([^"]+)"\)', "".join(texts.values())):
            if not os.path.exists(os.path.join(mdir, m.group(1))):
                errors.append("missing file %s" % m.group(1))
        assert not errors, "; ".join(errors)

    @check("terraform/firehose: the resources of both CloudFormation templates, the source's ones on count")
    def _():
        tf_types = {r.split(".")[0] for r in decl["resource"]}
        missing = {CFN_TO_TF[v["Type"]] for _, t in templates for v in t["Resources"].values()} - tf_types
        assert not missing, "no Terraform counterpart for %s" % missing
        for r in ('aws_cloudwatch_log_subscription_filter" "credwatch', 'aws_iam_role" "subscription'):
            assert 'resource "%s" { count = local.from_logs' % r in main_tf, r
        for r in ('aws_cloudwatch_event_rule" "credwatch', 'aws_cloudwatch_event_target" "credwatch',
                  'aws_sqs_queue" "dead_letter', 'aws_iam_role" "put_record'):
            assert 'resource "%s" { count = local.from_rule' % r in main_tf, r

    @check("terraform/firehose: FailedDataOnly, GZIP, Secrets Manager (no access_key), retry, buffering, logging, "
           "rule state, shared pattern files; defaults equal the templates'")
    def _():
        t = main_tf
        for s in ('destination = "http_endpoint"', 's3_backup_mode = "FailedDataOnly"', 'content_encoding = "GZIP"',
                  "secrets_manager_configuration { enabled = true", "retry_duration = var.retry_duration_seconds",
                  "buffering_size = var.buffer_size_mib", "buffering_interval = var.buffer_interval_seconds",
                  '/v1/ingest/firehose"', 'state = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"',
                  'filter_pattern = trimspace(file("${path.module}/filter-pattern.txt"))',
                  'event_pattern = file("${path.module}/event-pattern.json")', 'key_type = "AWS_OWNED_CMK"',
                  "secret_string = jsonencode({ api_key = var.ingest_token })",
                  'actions = ["firehose:PutRecord", "firehose:PutRecordBatch"]',
                  'identifiers = ["firehose.amazonaws.com"]', 'variable = "sts:ExternalId"'):
            assert s in t, "main.tf lacks: " + s
        assert "access_key =" not in t, "an access key in the stream's configuration"
        assert "processing_configuration" not in t
        assert t.count("cloudwatch_logging_options { enabled = true") == 2
        d = tf_defaults(texts["variables.tf"])
        p = cw["Parameters"]
        pairs = {"buffer_size_mib": "BufferSizeMiB", "buffer_interval_seconds": "BufferIntervalSeconds",
                 "retry_duration_seconds": "RetryDurationSeconds", "backup_retention_days": "BackupRetentionDays",
                 "log_retention_days": "LogRetentionDays", "freshness_alarm_seconds": "FreshnessAlarmSeconds"}
        for tfv, cfp in pairs.items():
            assert float(d[tfv]) == float(p[cfp]["Default"]), "%s %s != %s %s" % (tfv, d[tfv], cfp, p[cfp]["Default"])
        for tfv, cfp in (("maximum_event_age_in_seconds", "MaximumEventAgeInSeconds"),
                         ("maximum_retry_attempts", "MaximumRetryAttempts"),
                         ("dead_letter_retention_seconds", "DeadLetterRetentionSeconds")):
            assert float(d[tfv]) == float(ebf["Parameters"][cfp]["Default"]), tfv
        v = re.sub(r"\s+", " ", texts["variables.tf"])
        assert 'contains(["cloudwatch_logs", "eventbridge"], var.source_type)' in v
        assert "var.buffer_size_mib >= 1 && var.buffer_size_mib <= %d" % int(p["BufferSizeMiB"]["MaxValue"]) in v
        assert "var.retry_duration_seconds >= 0 && var.retry_duration_seconds <= 7200" in v
        assert "var.buffer_interval_seconds >= 0 && var.buffer_interval_seconds <= 900" in v

    sys.exit(0 if all(dc.RESULTS) else 1)


if __name__ == "__main__":
    main()
