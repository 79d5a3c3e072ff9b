#!/usr/bin/env python3
"""Writes the table-driven detection fixtures (tests/cases/*.json).

Each fixture is CloudTrail records (field shapes as in AWS's records; see shared/data's
lambda-event-shapes.json, from panther-labs/panther-analysis) plus the findings they must produce.
The fixtures are committed; this script documents how they were made and regenerates them.
Addresses are from documentation ranges (RFC 5737) and AWS ranges of the ip-ranges.json copy.
"""
import json, os

ACCT = "111122223333"
ROLE = "arn:aws:iam::%s:role/orders-fn-role" % ACCT
FN = "orders-fn"
INSIDE_IP = "3.5.140.2"        # an AWS us-east-1 address: where the function runs
WORKER_IP = "3.5.140.9"
OUT_IP = "198.51.100.7"        # the attacker's machine
UA_PY = "Boto3/1.34.20 md/Botocore#1.34.20 ua/2.0 os/linux#5.10 md/arch#x86_64 lang/python#3.12.1 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.20"
UA_GO_RAW = "Go-http-client/1.1"
UA_CLI_MAC = "aws-cli/2.15.0 md/awscrt#0.19.19 ua/2.0 os/macos#23.2.0 md/arch#arm64 lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off md/command#sts.get-caller-identity"
UA_CLI_LINUX = "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 source/x86_64.ubuntu.22 prompt/off command/sts.get-caller-identity"
UA_WORKER = "awslambda-worker/1.0 rusoto/0.48.0 rust/1.94.0 linux"

_n = [0]
def eid():
    _n[0] += 1
    return "00000000-0000-4000-8000-%012d" % _n[0]

def issue(key, t, exp="Mar 13, 2024, 8:33:21 PM", region="us-east-1", fn=FN):
    return {"eventVersion": "1.08",
            "userIdentity": {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"},
            "eventTime": t, "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
            "awsRegion": region, "sourceIPAddress": "lambda.amazonaws.com", "userAgent": "lambda.amazonaws.com",
            "requestParameters": {"roleArn": ROLE, "roleSessionName": fn},
            "responseElements": {"credentials": {"accessKeyId": key, "sessionToken": "IQoJb3JpZ2luX2VjE...",
                                                  "expiration": exp}},
            "requestID": eid(), "eventID": eid(), "readOnly": True, "eventType": "AwsApiCall",
            "managementEvent": True, "recipientAccountId": ACCT, "eventCategory": "Management"}

def use(key, t, ip, ua, source="sts.amazonaws.com", name="GetCallerIdentity", error=None, region="us-east-1",
        invoked_by=None, extra=None, fn=FN):
    ui = {"type": "AssumedRole", "principalId": "AROAEXAMPLEID:" + fn,
          "arn": "arn:aws:sts::%s:assumed-role/orders-fn-role/%s" % (ACCT, fn), "accountId": ACCT,
          "accessKeyId": key,
          "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEID", "arn": ROLE,
                                               "accountId": ACCT, "userName": "orders-fn-role"},
                             "attributes": {"creationDate": "2024-03-13T08:33:21Z", "mfaAuthenticated": "false"}}}
    if invoked_by:
        ui["invokedBy"] = invoked_by
    r = {"eventVersion": "1.08", "userIdentity": ui, "eventTime": t, "eventSource": source, "eventName": name,
         "awsRegion": region, "sourceIPAddress": ip, "userAgent": ua, "requestParameters": None,
         "responseElements": None, "requestID": eid(), "eventID": eid(), "readOnly": True,
         "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCT,
         "eventCategory": "Management"}
    if error:
        r["errorCode"] = error
        r["errorMessage"] = "not authorized"
    if extra:
        r.update(extra)
    return r

def finding(key, severity, outside, reasons, actions=None):
    f = {"access_key_id": key, "severity": severity, "outside_source_ips": outside, "reasons": reasons}
    if actions is not None:
        f["outside_actions"] = actions
    return f

K1, K2, K3 = "ASIAQEXAMPLEKEY00001", "ASIAQEXAMPLEKEY00002", "ASIAQEXAMPLEKEY00003"
cases = []
def case(name, desc, records, expect, keys=None, settings=None, analyst=None):
    c = {"name": name, "description": desc, "records": records, "expect": expect, "expect_keys": keys or {}}
    if settings:
        c["settings"] = settings
    if analyst:
        c["analyst"] = analyst
    cases.append(c)

# Network knowledge (issue: AWS ranges, allow-lists, VPC endpoints): the full AWS list of 2026-08-22.
RANGES = "tests/data/aws-ip-ranges-2026-08-22.json"
FN_IP = "3.80.1.10"        # us-east-1 EC2 (3.80.0.0/12)
FN_IP2 = "3.80.7.20"       # us-east-1 EC2, another address of the function's region
OTHER_AWS = "15.193.0.10"  # ap-south-1 (15.193.0.0/24)
UA_GO_NOMARK = "aws-sdk-go-v2/1.24.0 os/linux lang/go#1.21.5 md/GOOS#linux md/GOARCH#amd64"

def nfinding(key, severity, outside, reasons, networks):
    f = finding(key, severity, outside, reasons)
    f["networks"] = networks
    return f

case("theft_after_inside_use",
     "The function runs (issuance, marked calls from its AWS address), then the key is replayed from a laptop.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:25Z", INSIDE_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, "2024-03-13T09:10:00Z", OUT_IP, UA_CLI_MAC)],
     [finding(K1, "high", [OUT_IP], ["issued_by_lambda", "runtime_marker", "outside_address", "successful_call",
                                     "desktop_client"], ["sts:GetCallerIdentity"])],
     {K1: {"lambda": True, "inside_count": 1, "outside_count": 1}})

case("outside_before_inside",
     "The attacker's call is earlier in event time than any call of the function with the key.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:34:00Z", OUT_IP, UA_CLI_LINUX),
      use(K1, "2024-03-13T08:40:00Z", INSIDE_IP, UA_PY, "s3.amazonaws.com", "ListObjects")],
     [finding(K1, "high", [OUT_IP], ["issued_by_lambda", "runtime_marker", "outside_address", "successful_call"])])

case("issuance_only_then_outside",
     "Lambda issued the key; the only use ever seen is from outside.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T10:00:00Z", OUT_IP, UA_CLI_LINUX, "iam.amazonaws.com", "CreateUser")],
     [finding(K1, "critical", [OUT_IP], ["issued_by_lambda", "outside_address", "successful_call",
                                         "sensitive_action"], ["iam:CreateUser"])])

case("unmarked_call_from_usual_address",
     "The runtime makes a raw HTTP call without the marker from the address its marked calls use: inside.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:25Z", INSIDE_IP, UA_PY, "dynamodb.amazonaws.com", "GetItem"),
      use(K1, "2024-03-13T08:33:26Z", INSIDE_IP, UA_GO_RAW, "s3.amazonaws.com", "GetObject")],
     [], {K1: {"lambda": True, "inside_count": 2, "outside_count": 0}})

case("worker_and_on_behalf_calls",
     "Lambda's own calls with the key (log stream creation, cold-start decrypt) and calls AWS services make "
     "on the function's behalf are never outside.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:22Z", WORKER_IP, UA_WORKER, "logs.amazonaws.com", "CreateLogStream",
          error="AccessDenied"),
      use(K1, "2024-03-13T08:33:22Z", "3.5.140.10", "aws-sdk-java/1.12.500 Linux/5.10 OpenJDK_64-Bit_Server_VM/25.362",
          "kms.amazonaws.com", "Decrypt",
          extra={"requestParameters": {"encryptionContext": {"aws:lambda:FunctionArn":
                 "arn:aws:lambda:us-east-1:%s:function:%s" % (ACCT, FN)}, "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}}),
      use(K1, "2024-03-13T08:33:25Z", INSIDE_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, "2024-03-13T08:35:00Z", "s3.amazonaws.com", "s3.amazonaws.com", "kms.amazonaws.com", "GenerateDataKey",
          invoked_by="s3.amazonaws.com"),
      use(K1, "2024-03-13T08:36:00Z", "AWS Internal", "AWS Internal", "kms.amazonaws.com", "Decrypt")],
     [], {K1: {"lambda": True, "inside_count": 3, "outside_count": 0}})

case("duplicates_in_one_file",
     "CloudTrail repeats records and S3/EventBridge overlap: the same eventID twice counts once.",
     None, [finding(K1, "high", [OUT_IP], ["issued_by_lambda", "runtime_marker", "outside_address", "successful_call",
                                           "desktop_client"])],
     {K1: {"lambda": True, "inside_count": 1, "outside_count": 1}})
base = cases[0]["records"]
cases[-1]["records"] = [base[0], base[1], base[2], base[2], base[1]]

case("old_archive_2019",
     "An archive from 2019 (expiration in the 'Aug 26, 2019 11:15:26 PM' form) is judged as of its own time.",
     [issue(K1, "2019-08-26T11:15:26Z", exp="Aug 26, 2019 11:15:26 PM"),
      use(K1, "2019-08-26T11:20:00Z", INSIDE_IP, UA_PY.replace("python3.12", "python3.7")),
      use(K1, "2019-08-26T15:00:00Z", OUT_IP, UA_CLI_LINUX, "secretsmanager.amazonaws.com", "GetSecretValue")],
     [finding(K1, "critical", [OUT_IP], ["issued_by_lambda", "runtime_marker", "outside_address",
                                         "successful_call", "sensitive_action"])])

case("no_lambda_evidence",
     "A temporary key with no issuance by Lambda and no runtime marker: no finding, however many addresses.",
     [use(K2, "2024-03-13T08:%02d:00Z" % i, "198.51.100.%d" % (10 + i), UA_CLI_LINUX) for i in range(12)],
     [], {K2: {"lambda": False, "outside_count": 0}})

case("marker_only_lambda_key",
     "No issuance seen (e.g. the trail started later), but the runtime marker makes the key Lambda's.",
     [use(K1, "2024-03-13T08:33:25Z", INSIDE_IP, UA_PY),
      use(K1, "2024-03-13T09:00:00Z", OUT_IP, UA_CLI_LINUX, "s3.amazonaws.com", "ListBuckets")],
     [finding(K1, "critical", [OUT_IP], ["runtime_marker", "outside_address", "successful_call",
                                         "sensitive_action"])])

case("all_outside_calls_failed",
     "Every outside call was denied: still a stolen key, medium.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:25Z", INSIDE_IP, UA_PY),
      use(K1, "2024-03-13T09:00:00Z", OUT_IP, UA_CLI_LINUX, "iam.amazonaws.com", "ListUsers", error="AccessDenied"),
      use(K1, "2024-03-13T09:00:05Z", OUT_IP, UA_CLI_LINUX, "ec2.amazonaws.com", "DescribeInstances",
          error="Client.UnauthorizedOperation")],
     [finding(K1, "medium", [OUT_IP], ["issued_by_lambda", "runtime_marker", "outside_address",
                                       "all_calls_failed"], ["ec2:DescribeInstances", "iam:ListUsers"])])

case("presigned_url_only",
     "Only a presigned S3 URL made with the key was used from outside (a browser): low.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:25Z", INSIDE_IP, UA_PY, "s3.amazonaws.com", "PutObject"),
      use(K1, "2024-03-13T09:00:00Z", "203.0.113.50", "Mozilla/5.0 (X11; Linux x86_64)", "s3.amazonaws.com",
          "GetObject", extra={"additionalEventData": {"AuthenticationMethod": "QueryString",
                                                      "SignatureVersion": "SigV4"}})],
     [finding(K1, "low", ["203.0.113.50"], ["issued_by_lambda", "runtime_marker", "outside_address",
                                            "presigned_url_only"])])

case("network_activity_is_not_use",
     "A VPC endpoint network-activity event names the key but is not an API use.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:40:00Z", OUT_IP, UA_CLI_LINUX,
          extra={"eventType": "AwsVpceEvent", "eventCategory": "NetworkActivity"})],
     [], {K1: {"lambda": True, "outside_count": 0}})

case("one_of_many_keys_stolen",
     "A function has several execution environments, each with its own key and the same ARN: only the "
     "replayed key has a finding.",
     [issue(K1, "2024-03-13T08:33:21Z"), issue(K3, "2024-03-13T08:34:21Z"),
      use(K1, "2024-03-13T08:33:25Z", INSIDE_IP, UA_PY),
      use(K3, "2024-03-13T08:34:25Z", "3.5.140.77", UA_PY),
      use(K3, "2024-03-13T10:00:00Z", OUT_IP, UA_CLI_LINUX)],
     [finding(K3, "high", [OUT_IP], ["issued_by_lambda", "runtime_marker", "outside_address", "successful_call"])],
     {K1: {"lambda": True, "outside_count": 0}})

case("failed_call_is_a_use",
     "A failed outside call still uses the key; a later success raises the severity.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:25Z", INSIDE_IP, UA_PY),
      use(K1, "2024-03-13T09:00:00Z", OUT_IP, UA_CLI_LINUX, "iam.amazonaws.com", "CreateAccessKey",
          error="AccessDenied"),
      use(K1, "2024-03-13T09:01:00Z", "198.51.100.8", UA_CLI_LINUX, "lambda.amazonaws.com",
          "UpdateFunctionCode20150331v2")],
     [finding(K1, "critical", [OUT_IP, "198.51.100.8"], ["issued_by_lambda", "runtime_marker", "outside_address",
                                                         "successful_call", "sensitive_action"])])

case("new_region_between_first_and_last",
     "Every outside call failed (medium), but one of them, neither the first nor the last, was made in a "
     "region the function does not run in: high.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:25Z", INSIDE_IP, UA_PY),
      use(K1, "2024-03-13T09:00:00Z", OUT_IP, UA_CLI_LINUX, "iam.amazonaws.com", "ListUsers", error="AccessDenied"),
      use(K1, "2024-03-13T09:05:00Z", OUT_IP, UA_CLI_LINUX, "ec2.amazonaws.com", "DescribeInstances",
          error="Client.UnauthorizedOperation", region="ap-southeast-2"),
      use(K1, "2024-03-13T09:10:00Z", OUT_IP, UA_CLI_LINUX, "s3.amazonaws.com", "ListBuckets", error="AccessDenied")],
     [finding(K1, "high", [OUT_IP], ["issued_by_lambda", "runtime_marker", "outside_address", "all_calls_failed",
                                     "new_region"])])

case("net_no_marker_runtime_in_region",
     "A Go runtime on provided.al2023 sends no marker: its calls from AWS addresses of the function's "
     "region are its own network, not outside.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:25Z", FN_IP, UA_GO_NOMARK, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, "2024-03-13T09:33:25Z", FN_IP2, UA_GO_NOMARK, "dynamodb.amazonaws.com", "GetItem")],
     [], {K1: {"lambda": True, "inside_count": 2, "outside_count": 0}}, {"aws_ip_ranges": RANGES})

case("net_no_marker_runtime_out_of_region",
     "The same runtime's key used from an AWS address of another region and from the internet: outside.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:25Z", FN_IP, UA_GO_NOMARK, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, "2024-03-13T09:00:00Z", OTHER_AWS, UA_CLI_LINUX, "sts.amazonaws.com", "GetCallerIdentity"),
      use(K1, "2024-03-13T09:05:00Z", OUT_IP, UA_CLI_LINUX, "s3.amazonaws.com", "ListBuckets")],
     [nfinding(K1, "critical", [OTHER_AWS, OUT_IP], ["issued_by_lambda", "outside_address", "successful_call",
                                                    "sensitive_action", "new_region"],
               {OTHER_AWS: "aws:ap-south-1:", OUT_IP: "external"})],
     None, {"aws_ip_ranges": RANGES})

case("net_copied_marker",
     "The attacker copies the runtime user agent: a marked call from a non-AWS address is critical.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:25Z", FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, "2024-03-13T09:00:00Z", OUT_IP, UA_PY, "sts.amazonaws.com", "GetCallerIdentity")],
     [nfinding(K1, "critical", [OUT_IP], ["issued_by_lambda", "runtime_marker", "outside_address",
                                          "copied_user_agent", "successful_call"], {OUT_IP: "external"})],
     {K1: {"lambda": True, "inside_count": 1, "outside_count": 1}}, {"aws_ip_ranges": RANGES})

case("net_inside_aws",
     "A key whose runtime marks its calls, used without the marker from an AWS address of another region "
     "(an attacker's EC2 instance): GuardDuty's InsideAWS analogue, high because the function's network is "
     "in its own region.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:25Z", FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, "2024-03-13T09:00:00Z", OTHER_AWS, UA_CLI_LINUX, "sts.amazonaws.com", "GetCallerIdentity",
          region="us-east-1")],
     [nfinding(K1, "high", [OTHER_AWS], ["issued_by_lambda", "runtime_marker", "outside_address", "inside_aws",
                                         "successful_call", "new_region"], {OTHER_AWS: "aws:ap-south-1:"})],
     None, {"aws_ip_ranges": RANGES})

VPCE_OWN = {"vpcEndpointId": "vpce-0a1b2c3d4e5f60001", "vpcEndpointAccountId": ACCT}
VPCE_FOREIGN = {"vpcEndpointId": "vpce-0fedcba987654321f", "vpcEndpointAccountId": "999988887777"}
case("net_foreign_vpc_endpoint",
     "A function in a VPC calls through its own VPC endpoint from private addresses; the attacker uses the "
     "key through an endpoint of an account outside the organisation: outside.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:25Z", "10.0.5.9", UA_PY, "secretsmanager.amazonaws.com", "GetSecretValue",
          extra=VPCE_OWN),
      use(K1, "2024-03-13T09:00:00Z", "10.0.7.7", UA_CLI_LINUX, "secretsmanager.amazonaws.com", "GetSecretValue",
          extra=VPCE_FOREIGN)],
     [nfinding(K1, "critical", ["10.0.7.7"], ["issued_by_lambda", "runtime_marker", "outside_address",
                                              "foreign_vpc_endpoint", "successful_call", "sensitive_action"],
               {"10.0.7.7": "private"})],
     None, {"aws_ip_ranges": RANGES, "accounts": ACCT})

case("net_corporate_allow_list",
     "Developers test with exported credentials from the corporate VPN, which is allow-listed: no finding, "
     "the uses are shown in the key's context.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:25Z", FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, "2024-03-13T09:00:00Z", "203.0.113.50", UA_CLI_MAC, "dynamodb.amazonaws.com", "Scan")],
     [], {K1: {"lambda": True, "outside_count": 0, "allowlisted_count": 1}},
     {"aws_ip_ranges": RANGES, "allow_cidrs": "203.0.113.0/24=corp-vpn,198.51.100.200/32=nat-gw-a"})

case("net_worker_imitation",
     "Lambda's worker user agent is excused only from AWS addresses: the same call from the internet is outside.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:22Z", "3.80.9.9", UA_WORKER, "logs.amazonaws.com", "CreateLogStream"),
      use(K1, "2024-03-13T09:00:00Z", OUT_IP, UA_WORKER, "logs.amazonaws.com", "CreateLogStream")],
     [nfinding(K1, "high", [OUT_IP], ["issued_by_lambda", "outside_address", "successful_call"],
               {OUT_IP: "external"})],
     {K1: {"lambda": True, "inside_count": 1, "outside_count": 1}}, {"aws_ip_ranges": RANGES})

case("net_presigned_url",
     "A presigned URL made by the function, fetched by a customer's browser: low, never excused by name.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:25Z", FN_IP, UA_PY, "s3.amazonaws.com", "PutObject"),
      use(K1, "2024-03-13T09:00:00Z", "203.0.113.51", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
          "s3.amazonaws.com", "GetObject",
          extra={"additionalEventData": {"AuthenticationMethod": "QueryString", "SignatureVersion": "SigV4"}})],
     [nfinding(K1, "low", ["203.0.113.51"], ["issued_by_lambda", "runtime_marker", "outside_address",
                                             "presigned_url_only"], {"203.0.113.51": "external"})],
     None, {"aws_ip_ranges": RANGES})


# ---- The attacker has read the README (issue: the verdict against an attacker who knows the rules) ----
# Each case below reproduces one way the red team evaded the verdict or silenced a finding, or a variant
# of it; docs/detection.md explains the rule each one holds to.
ATT_IP = "198.51.100.7"     # the attacker's own machine (not AWS)
ATT_EC2_EU = "3.248.0.10"   # an EC2 address of eu-west-1: the attacker's instance in another region
ATT_EC2_US = "3.80.200.5"   # an EC2 address of us-east-1, the function's region, that the key never used
ATT_EC2_V6 = "2a05:d018::10"  # an EC2 IPv6 address of eu-west-1
FLOOD_US = ["100.24.0.%d" % (i + 1) for i in range(16)]      # us-east-1 EC2, sort before ATT_IP
FLOOD_V6 = ["2600:1f18::%x" % (i + 1) for i in range(16)]    # us-east-1 EC2 IPv6, sort before ATT_EC2_V6
UA_PY_ATT = UA_PY  # the thief copies the runtime's user agent byte for byte
COLD_CTX = {"encryptionContext": {"aws:lambda:FunctionArn": "arn:aws:lambda:us-east-1:%s:function:%s" % (ACCT, FN)},
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
UA_JAVA = "aws-sdk-java/1.12.500 Linux/5.10 OpenJDK_64-Bit_Server_VM/25.362"
NET = {"aws_ip_ranges": RANGES}
NET_ORG = {"aws_ip_ranges": RANGES, "accounts": ACCT}

import datetime
T0 = datetime.datetime(2024, 3, 13, 8, 33, 21)   # the issuance; the function's first call follows at t(0, 4)
def t(m, s=0):
    return (T0 + datetime.timedelta(minutes=m, seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ")

# 1. Eviction must not retract: inside-equivalent addresses cannot push an outside one out.
case("adv_eviction_go_flood",
     "A Go function (no marker) calls from 16 AWS addresses of its region that sort before the attacker's "
     "address; the attacker's iam:CreateUser from outside stays critical, and the overflow is reported.",
     [issue(K1, t(0))] +
     [use(K1, t(1 + i), ip, UA_GO_NOMARK, "dynamodb.amazonaws.com", "GetItem") for i, ip in enumerate(FLOOD_US)] +
     [use(K1, t(40), ATT_IP, UA_CLI_LINUX, "iam.amazonaws.com", "CreateUser"),
      use(K1, t(41), "100.24.1.200", UA_GO_NOMARK, "dynamodb.amazonaws.com", "GetItem")],
     [nfinding(K1, "critical", [ATT_IP], ["issued_by_lambda", "outside_address", "successful_call",
                                          "sensitive_action", "evidence_truncated"], {ATT_IP: "external"})],
     None, NET)

case("adv_eviction_worker_flood_acknowledged",
     "An acknowledged finding; then 16 awslambda-worker calls from AWS addresses of the function's region. "
     "The finding keeps its outside address, its severity and the analyst's status.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(30), ATT_IP, UA_CLI_LINUX, "s3.amazonaws.com", "ListBuckets")] +
     [use(K1, t(31 + i), ip, UA_WORKER, "logs.amazonaws.com", "CreateLogStream") for i, ip in enumerate(FLOOD_US)],
     [dict(nfinding(K1, "critical", [ATT_IP], ["issued_by_lambda", "runtime_marker", "outside_address",
                                               "successful_call", "sensitive_action", "evidence_truncated"],
                    {ATT_IP: "external"}), status="acknowledged")],
     None, NET, {"after": 3, "status": "acknowledged"})

case("adv_eviction_ipv6_other_region",
     "A Go function's own calls from 16 IPv6 addresses of its region rank with the attacker's IPv6 EC2 address "
     "of another region and sort before it: the attacker's address is not kept, so the overflow counts as "
     "outside from another region: high, never lower than the attacker's own evidence would give.",
     [issue(K1, t(0)),
      use(K1, t(20), ATT_EC2_V6, UA_CLI_LINUX, "sts.amazonaws.com", "GetCallerIdentity")] +
     [use(K1, t(21 + i), ip, UA_GO_NOMARK, "dynamodb.amazonaws.com", "GetItem") for i, ip in enumerate(FLOOD_V6)],
     [nfinding(K1, "high", [], ["issued_by_lambda", "evidence_truncated"], {})],
     None, NET)

# 2. The worker's user agent excuses only the worker's actions, from the function's region.
case("adv_worker_ua_other_region",
     "iam:CreateUser and secretsmanager:GetSecretValue with the awslambda-worker user agent from an EC2 "
     "address of another region: outside (the worker only creates log groups and streams).",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_GO_NOMARK, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), ATT_EC2_EU, UA_WORKER, "iam.amazonaws.com", "CreateUser"),
      use(K1, t(21), ATT_EC2_EU, UA_WORKER, "secretsmanager.amazonaws.com", "GetSecretValue")],
     [nfinding(K1, "high", [ATT_EC2_EU], ["issued_by_lambda", "outside_address", "successful_call",
                                           "sensitive_action", "new_region"], {ATT_EC2_EU: "aws:eu-west-1:"})],
     {K1: {"lambda": True, "inside_count": 1, "outside_count": 2}}, NET)

case("adv_worker_ua_same_region_sensitive",
     "The worker's user agent on iam:CreateUser from an AWS address of the function's own region, for a key "
     "whose runtime marks its calls: not the worker's action, so InsideAWS; high, because the function's own "
     "address never made that call.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), ATT_EC2_US, UA_WORKER, "iam.amazonaws.com", "CreateUser")],
     [nfinding(K1, "high", [ATT_EC2_US], ["issued_by_lambda", "runtime_marker", "outside_address", "inside_aws",
                                           "successful_call", "sensitive_action"], {ATT_EC2_US: "aws:us-east-1:"})],
     None, NET)

case("adv_worker_log_stream_other_region",
     "Even the worker's own action, logs:CreateLogStream with its user agent, is the worker's only from the "
     "function's region: from another region it is outside.",
     [issue(K1, t(0)),
      use(K1, t(0, 1), "3.80.9.9", UA_WORKER, "logs.amazonaws.com", "CreateLogStream"),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), ATT_EC2_EU, UA_WORKER, "logs.amazonaws.com", "CreateLogStream")],
     [nfinding(K1, "high", [ATT_EC2_EU], ["issued_by_lambda", "runtime_marker", "outside_address", "inside_aws",
                                           "successful_call", "new_region"], {ATT_EC2_EU: "aws:eu-west-1:"})],
     {K1: {"lambda": True, "inside_count": 2, "outside_count": 1}}, NET)

# 3. A cold-start decrypt is Lambda's only from the function's region and for the function the issuance names.
case("adv_forged_coldstart_decrypt",
     "kms:Decrypt with an encryption context naming the function, from an EC2 address of another region: "
     "outside (the context is a request parameter the thief writes).",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), ATT_EC2_EU, UA_JAVA, "kms.amazonaws.com", "Decrypt", extra={"requestParameters": COLD_CTX})],
     [nfinding(K1, "high", [ATT_EC2_EU], ["issued_by_lambda", "runtime_marker", "outside_address", "inside_aws",
                                           "successful_call", "sensitive_action", "new_region"],
               {ATT_EC2_EU: "aws:eu-west-1:"})],
     None, NET)

case("adv_coldstart_other_function",
     "A cold-start-shaped kms:Decrypt from an AWS address of the function's region, but naming another "
     "function: not Lambda's decrypt of this function's environment.",
     [issue(K1, t(0)),
      use(K1, t(0, 1), "3.80.9.10", UA_JAVA, "kms.amazonaws.com", "Decrypt",
          extra={"requestParameters": {"encryptionContext": {"aws:lambda:FunctionArn":
                 "arn:aws:lambda:us-east-1:%s:function:payments-fn" % ACCT}}}),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem")],
     [nfinding(K1, "high", ["3.80.9.10"], ["issued_by_lambda", "runtime_marker", "outside_address", "inside_aws",
                                            "successful_call", "sensitive_action"], {"3.80.9.10": "aws:us-east-1:"})],
     None, NET)

case("adv_coldstart_genuine",
     "The genuine cold-start decrypt (the function's ARN, from its region) stays inside-equivalent.",
     [issue(K1, t(0)),
      use(K1, t(0, 1), "3.80.9.10", UA_JAVA, "kms.amazonaws.com", "Decrypt", extra={"requestParameters": COLD_CTX}),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem")],
     [], {K1: {"lambda": True, "inside_count": 2, "outside_count": 0}}, NET)

# 4. A copied marker from an AWS address is InsideAWS, never inside, and never retracts or re-statuses.
case("adv_copied_marker_ec2_other_region",
     "A marked call from the attacker's EC2 instance in another region: InsideAWS from another region, high.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), ATT_EC2_EU, UA_PY_ATT, "sts.amazonaws.com", "GetCallerIdentity")],
     [nfinding(K1, "high", [ATT_EC2_EU], ["issued_by_lambda", "runtime_marker", "outside_address", "inside_aws",
                                           "successful_call", "new_region"], {ATT_EC2_EU: "aws:eu-west-1:"})],
     None, NET)

case("adv_copied_marker_ec2_same_region",
     "A marked call from an EC2 address of the function's own region that the key never used: InsideAWS, "
     "medium (a second egress address of the function cannot be ruled out). Either address could be the "
     "function's (contested_own_address), so both are shown outside and neither counts as inside.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), ATT_EC2_US, UA_PY_ATT, "dynamodb.amazonaws.com", "PutItem")],
     [nfinding(K1, "medium", [FN_IP, ATT_EC2_US], ["issued_by_lambda", "runtime_marker", "outside_address",
                                                    "inside_aws", "successful_call", "contested_own_address"],
               {ATT_EC2_US: "aws:us-east-1:", FN_IP: "aws:us-east-1:"})],
     None, NET)

case("adv_copied_marker_keeps_acknowledged",
     "An acknowledged InsideAWS finding; the thief then sends marked calls from the same address. The finding "
     "is not retracted, the status stays acknowledged, and every later call from the address still counts.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), ATT_EC2_EU, UA_CLI_LINUX, "sts.amazonaws.com", "GetCallerIdentity"),
      use(K1, t(21), ATT_EC2_EU, UA_PY_ATT, "s3.amazonaws.com", "ListObjects"),
      use(K1, t(22), ATT_EC2_EU, UA_CLI_LINUX, "s3.amazonaws.com", "ListObjects")],
     [dict(nfinding(K1, "high", [ATT_EC2_EU], ["issued_by_lambda", "runtime_marker", "outside_address", "inside_aws",
                                                "successful_call", "new_region"], {ATT_EC2_EU: "aws:eu-west-1:"}),
           status="acknowledged")],
     {K1: {"lambda": True, "inside_count": 1, "outside_count": 3}}, NET, {"after": 3, "status": "acknowledged"})

case("adv_copied_marker_keeps_suppressed",
     "A suppressed finding; marked calls from the outside address follow. It stays suppressed: an analyst's "
     "decision is never replaced by the engine.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), ATT_EC2_US, UA_CLI_LINUX, "sts.amazonaws.com", "GetCallerIdentity"),
      use(K1, t(21), ATT_EC2_US, UA_PY_ATT, "sts.amazonaws.com", "GetCallerIdentity"),
      use(K1, t(22), ATT_EC2_US, UA_PY_ATT, "dynamodb.amazonaws.com", "Scan")],
     [dict(nfinding(K1, "medium", [FN_IP, ATT_EC2_US], ["issued_by_lambda", "runtime_marker", "outside_address",
                                                  "inside_aws", "successful_call", "contested_own_address"],
                    {ATT_EC2_US: "aws:us-east-1:"}),
           status="suppressed")],
     None, NET, {"after": 3, "status": "suppressed"})

case("adv_copied_marker_ipv6",
     "The same with an IPv6 EC2 address of another region.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), ATT_EC2_V6, UA_PY_ATT, "iam.amazonaws.com", "CreateAccessKey")],
     [nfinding(K1, "high", [ATT_EC2_V6], ["issued_by_lambda", "runtime_marker", "outside_address", "inside_aws",
                                           "successful_call", "sensitive_action", "new_region"],
               {ATT_EC2_V6: "aws:eu-west-1:"})],
     None, NET)

# 5. Any call through a foreign VPC endpoint is outside, marker or not.
VPCE_ATT = {"vpcEndpointId": "vpce-0fedcba987654321f", "vpcEndpointAccountId": "999988887777"}
case("adv_copied_marker_foreign_vpce",
     "A marked call through a VPC endpoint of an account outside the organisation, from a private address: "
     "outside, critical (the marker comes from a network that is never the function's).",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), "10.8.0.5", UA_PY_ATT, "sts.amazonaws.com", "GetCallerIdentity", extra=VPCE_ATT)],
     [nfinding(K1, "critical", ["10.8.0.5"], ["issued_by_lambda", "runtime_marker", "outside_address",
                                              "foreign_vpc_endpoint", "copied_user_agent", "successful_call"],
               {"10.8.0.5": "private"})],
     None, NET_ORG)

case("adv_copied_marker_foreign_vpce_aws_address",
     "The same through the attacker's endpoint with an AWS address of the function's region as the source.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), FN_IP, UA_PY_ATT, "secretsmanager.amazonaws.com", "GetSecretValue", extra=VPCE_ATT)],
     [nfinding(K1, "critical", [FN_IP], ["issued_by_lambda", "runtime_marker", "outside_address",
                                         "foreign_vpc_endpoint", "copied_user_agent", "successful_call",
                                         "sensitive_action"], {FN_IP: "aws:us-east-1:"})],
     {K1: {"lambda": True, "inside_count": 1, "outside_count": 1}}, NET_ORG)

# 6. Action noise cannot push the sensitive action out of the kept set.
RECON = [("acm", "ListCertificates"), ("apigateway", "GetRestApis"), ("autoscaling", "DescribeAutoScalingGroups"),
         ("cloudformation", "ListStacks"), ("cloudwatch", "DescribeAlarms"), ("dynamodb", "ListTables"),
         ("ec2", "DescribeInstances"), ("ecr", "DescribeRepositories")]
case("adv_action_noise_before_iam",
     "Eight recon calls whose action names sort before iam: and then iam:CreateUser, all from outside: "
     "critical, sensitive_action, and iam:CreateUser is among the actions shown.",
     [issue(K1, t(0)), use(K1, t(0, 4), INSIDE_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem")] +
     [use(K1, t(20 + i), OUT_IP, UA_CLI_LINUX, svc + ".amazonaws.com", name) for i, (svc, name) in enumerate(RECON)] +
     [use(K1, t(30), OUT_IP, UA_CLI_LINUX, "iam.amazonaws.com", "CreateUser")],
     [finding(K1, "critical", [OUT_IP], ["issued_by_lambda", "runtime_marker", "outside_address", "successful_call",
                                         "sensitive_action"])],
     None, None)
cases[-1]["expect"][0]["actions_include"] = ["iam:CreateUser"]

case("adv_action_noise_failed_sensitive",
     "Eight failed sensitive attempts, then one that succeeds (ssm:GetParameter, which sorts after them): the "
     "success is kept and the key is critical.",
     [issue(K1, t(0)), use(K1, t(0, 4), INSIDE_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem")] +
     [use(K1, t(20 + i), OUT_IP, UA_CLI_LINUX, "iam.amazonaws.com", n, error="AccessDenied")
      for i, n in enumerate(["AddUserToGroup", "AttachRolePolicy", "AttachUserPolicy", "CreateAccessKey",
                             "CreateLoginProfile", "CreateRole", "CreateUser", "PutUserPolicy"])] +
     [use(K1, t(30), OUT_IP, UA_CLI_LINUX, "ssm.amazonaws.com", "GetParameter")],
     [finding(K1, "critical", [OUT_IP], ["issued_by_lambda", "runtime_marker", "outside_address", "successful_call",
                                         "sensitive_action"])],
     None, None)
cases[-1]["expect"][0]["actions_include"] = ["ssm:GetParameter"]

case("adv_action_noise_inside_aws",
     "The same noise from an EC2 address of the function's region, for a marked key: the sensitive action "
     "the function's own address never made is kept and raises InsideAWS to high.",
     [issue(K1, t(0)), use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem")] +
     [use(K1, t(20 + i), ATT_EC2_US, UA_CLI_LINUX, svc + ".amazonaws.com", name) for i, (svc, name) in enumerate(RECON)] +
     [use(K1, t(30), ATT_EC2_US, UA_CLI_LINUX, "iam.amazonaws.com", "CreateUser")],
     [nfinding(K1, "high", [ATT_EC2_US], ["issued_by_lambda", "runtime_marker", "outside_address", "inside_aws",
                                           "successful_call", "sensitive_action"], {ATT_EC2_US: "aws:us-east-1:"})],
     None, NET)
cases[-1]["expect"][0]["actions_include"] = ["iam:CreateUser"]

# 7. A second issuance record does not rewrite the finding; it raises it.
def forged_issue(key, tm, eid_, region="ap-south-1", fn="innocent-fn", acct="444455556666",
                 exp="Jan 1, 1971, 12:00:00 AM"):
    r = issue(key, tm, exp=exp, region=region, fn=fn)
    r["eventID"] = eid_
    r["recipientAccountId"] = acct
    r["requestParameters"]["roleArn"] = "arn:aws:iam::%s:role/innocent-role" % acct
    return r

FIELDS_K1 = {"account_id": ACCT, "function_name": FN, "region": "us-east-1", "expires_at": "2024-03-13T20:33:21Z",
             "issued_at": "2024-03-13T08:33:21Z"}
case("adv_forged_issuance",
     "With a leaked ingest token, an AssumeRole record for the stolen key with a smaller eventID, another "
     "account, function and region, and a 1971 expiry: the finding keeps its account, function, region and "
     "expiry, says conflicting_issuance, and stays high.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), INSIDE_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(40), OUT_IP, UA_CLI_LINUX, "sts.amazonaws.com", "GetCallerIdentity"),
      forged_issue(K1, t(50), "00000000-0000-0000-0000-000000000000")],
     [dict(finding(K1, "high", [OUT_IP], ["issued_by_lambda", "runtime_marker", "outside_address",
                                          "successful_call", "conflicting_issuance"]), fields=FIELDS_K1)],
     None, None)

case("adv_forged_issuance_go_region",
     "A Go key used from an EC2 address of ap-south-1; a forged issuance naming ap-south-1 as the function's "
     "region must not make that address the function's: the regions disagree, so no region is trusted.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_GO_NOMARK, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(40), OTHER_AWS, UA_CLI_LINUX, "iam.amazonaws.com", "CreateUser"),
      forged_issue(K1, t(45), "00000000-0000-0000-0000-000000000000", region="ap-south-1", fn=FN, acct=ACCT,
                   exp="Mar 13, 2024, 9:18:00 PM")],
     [dict(nfinding(K1, "high", [FN_IP, OTHER_AWS], ["issued_by_lambda", "outside_address", "successful_call",
                                                     "sensitive_action", "new_region", "conflicting_issuance"],
                    {OTHER_AWS: "aws:ap-south-1:"}),
           fields={"region": "us-east-1", "expires_at": "2024-03-13T20:33:21Z"})],
     None, NET)

case("adv_forged_issuance_acknowledged",
     "The forged issuance arrives after the analyst acknowledged the finding: status, account and function "
     "stay.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), INSIDE_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(40), OUT_IP, UA_CLI_LINUX, "secretsmanager.amazonaws.com", "GetSecretValue"),
      forged_issue(K1, t(50), "00000000-0000-0000-0000-000000000001"),
      forged_issue(K1, t(51), "00000000-0000-0000-0000-000000000002", region="eu-west-1")],
     [dict(finding(K1, "critical", [OUT_IP], ["issued_by_lambda", "runtime_marker", "outside_address",
                                              "successful_call", "sensitive_action", "conflicting_issuance"]),
           fields={"account_id": ACCT, "function_name": FN, "region": "us-east-1"}, status="acknowledged")],
     None, None, {"after": 3, "status": "acknowledged"})

case("adv_global_prefix_not_own_region",
     "A Go key used through an AWS address AWS lists as GLOBAL (CloudFront origin-facing): no region's, so "
     "never the function's network (red-team finding).",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_GO_NOMARK, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(27), "130.176.88.10", UA_CLI_LINUX, "iam.amazonaws.com", "CreateUser")],
     [nfinding(K1, "high", ["130.176.88.10"], ["issued_by_lambda", "outside_address", "successful_call",
                                               "sensitive_action", "new_region"], {"130.176.88.10": "aws:GLOBAL:"})],
     None, NET)

# ---- Second red-team round: the verdict's own bounds and the key's own address ----
# 8. Being first buys nothing: the key's own address is a guess by time, and the severity is the
#    highest any address that could be the function's gives as the own one.
case("adv_home_capture_first_marked",
     "The thief reads the key before the function's first SDK call and replays it, marker copied, from an EC2 "
     "instance of the function's region: its iam:CreateUser comes first. Being first no longer makes its "
     "address the key's own: both addresses are shown outside, and the severity is judged both ways round: "
     "high, with the sensitive action (red-team finding).",
     [issue(K1, t(0)),
      use(K1, t(0, 1), "3.80.9.9", UA_WORKER, "logs.amazonaws.com", "CreateLogStream"),
      use(K1, t(0, 2), ATT_EC2_US, UA_PY_ATT, "iam.amazonaws.com", "CreateUser"),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(3), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem")],
     [nfinding(K1, "high", [FN_IP, ATT_EC2_US], ["issued_by_lambda", "runtime_marker", "outside_address",
                                                 "inside_aws", "successful_call", "sensitive_action",
                                                 "contested_own_address"],
               {FN_IP: "aws:us-east-1:", ATT_EC2_US: "aws:us-east-1:"})],
     None, NET)

tie = use(K1, t(0, 4), ATT_EC2_US, UA_PY_ATT, "secretsmanager.amazonaws.com", "GetSecretValue")
tie["eventID"] = "00000000-0000-0000-0000-000000000001"   # sorts before the function's own call's id
case("adv_home_capture_same_second",
     "The thief's marked secretsmanager:GetSecretValue from an EC2 address of the function's region falls in "
     "the same second as the function's first call and its event id sorts first: high all the same.",
     [issue(K1, t(0)), tie,
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem")],
     [nfinding(K1, "high", [FN_IP, ATT_EC2_US], ["issued_by_lambda", "runtime_marker", "outside_address",
                                                 "inside_aws", "successful_call", "sensitive_action",
                                                 "contested_own_address"],
               {FN_IP: "aws:us-east-1:", ATT_EC2_US: "aws:us-east-1:"})],
     None, NET)

# 9. Overflow of an address's own sets only raises.
FN_REGIONS = ["af-south-1", "ap-east-1", "us-east-1", "us-east-2"]   # the four smallest a key keeps
case("adv_regions_overflow",
     "The function's address calls four regions; the thief, from an EC2 address of the function's region, "
     "calls the same four and us-west-2, which sorts after them and is not kept: the overflow counts as "
     "new_region (high), never as 'nothing new'.",
     [issue(K1, t(0))] +
     [use(K1, t(0, 4 + i), FN_IP, UA_PY, "s3.amazonaws.com", "ListObjects", region=r) for i, r in enumerate(FN_REGIONS)] +
     [use(K1, t(20 + i), ATT_EC2_US, UA_CLI_LINUX, "s3.amazonaws.com", "ListObjects", region=r)
      for i, r in enumerate(FN_REGIONS + ["us-west-2"])],
     [nfinding(K1, "high", [ATT_EC2_US], ["issued_by_lambda", "runtime_marker", "outside_address", "inside_aws",
                                           "successful_call", "new_region"], {ATT_EC2_US: "aws:us-east-1:"})],
     None, NET)

FN_SENSITIVE = [("kms", "Decrypt"), ("s3", "GetObject"), ("s3", "ListBuckets"), ("secretsmanager", "GetSecretValue"),
                ("ssm", "GetParameter"), ("ssm", "GetParameters"), ("ssm", "GetParametersByPath"),
                ("sts", "AssumeRole")]
case("adv_actions_overflow",
     "The function's address makes eight sensitive calls; the thief, from an EC2 address of its region, makes "
     "the same eight and sts:GetFederationToken, which sorts after them and is not kept: the full set may hide "
     "a sensitive action the function never made, so high, never medium.",
     [issue(K1, t(0))] +
     [use(K1, t(0, 4 + i), FN_IP, UA_PY, svc + ".amazonaws.com", n) for i, (svc, n) in enumerate(FN_SENSITIVE)] +
     [use(K1, t(20 + i), ATT_EC2_US, UA_CLI_LINUX, svc + ".amazonaws.com", n)
      for i, (svc, n) in enumerate(FN_SENSITIVE + [("sts", "GetFederationToken")])],
     [nfinding(K1, "high", [ATT_EC2_US], ["issued_by_lambda", "runtime_marker", "outside_address", "inside_aws",
                                           "successful_call", "sensitive_action"], {ATT_EC2_US: "aws:us-east-1:"})],
     None, NET)

# 10. A presigned signature is the caller's choice: only what applications hand out rates low.
PRESIGNED = {"additionalEventData": {"AuthenticationMethod": "QueryString", "SignatureVersion": "SigV4"}}
case("adv_presigned_thief_listing",
     "The thief signs a bucket listing and a download as presigned URLs from their own machine: a listing is "
     "nothing an application hands out, so the address is judged as any other: critical.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "s3.amazonaws.com", "PutObject"),
      use(K1, t(30), ATT_IP, "curl/8.5.0", "s3.amazonaws.com", "ListObjects", extra=PRESIGNED),
      use(K1, t(31), ATT_IP, "curl/8.5.0", "s3.amazonaws.com", "GetObject", extra=PRESIGNED)],
     [nfinding(K1, "critical", [ATT_IP], ["issued_by_lambda", "runtime_marker", "outside_address",
                                          "successful_call", "sensitive_action"], {ATT_IP: "external"})],
     None, NET)

# 11. Outside addresses cannot push the function's own address out of the evidence.
FLOOD_EXT = ["203.0.113.%d" % (i + 10) for i in range(16)]
case("adv_outside_flood_keeps_own",
     "Sixteen marked calls from the thief's own machines (external addresses rank above AWS ones): the "
     "function's own address keeps its place (addresses that can be the function's have 4 of the 16 slots), "
     "so its calls stay inside; one thief address is not kept and the overflow is reported.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem")] +
     [use(K1, t(20 + i), ip, UA_PY_ATT, "sts.amazonaws.com", "GetCallerIdentity") for i, ip in enumerate(FLOOD_EXT)],
     [nfinding(K1, "critical", FLOOD_EXT[:15], ["issued_by_lambda", "runtime_marker", "outside_address",
                                               "copied_user_agent", "successful_call", "evidence_truncated"],
               {FLOOD_EXT[0]: "external"})],
     {K1: {"lambda": True, "inside_count": 1, "outside_count": 15}}, NET)

# 12. A forged record that reuses a real record's event id cannot make the real one a duplicate.
real = use(K1, t(30), ATT_IP, UA_CLI_LINUX, "iam.amazonaws.com", "CreateAccessKey")
forged = use(K1, t(30), FN_IP, UA_PY, "dynamodb.amazonaws.com", "GetItem")
forged["eventID"] = real["eventID"]
case("adv_forged_same_event_id",
     "With a leaked ingest token, a benign record from the function's address that reuses the eventID of the "
     "thief's iam:CreateAccessKey: both are events (the identity covers the content), in every arrival order, "
     "so the theft stays critical.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      forged, real],
     [nfinding(K1, "critical", [ATT_IP], ["issued_by_lambda", "runtime_marker", "outside_address",
                                          "successful_call", "sensitive_action"], {ATT_IP: "external"})],
     {K1: {"lambda": True, "inside_count": 2, "outside_count": 1}}, NET)

# ---- Third red-team round (a helper attacking the second round's rules) ----
VPCE_NO_OWNER = {"vpcEndpointId": "vpce-0badbadbadbad0001"}   # the record names no endpoint owner
case("adv_vpce_without_owner_not_own",
     "With the organisation's accounts set, the thief's marked iam:CreateUser through a VPC endpoint whose "
     "record names no owner, for a function that never made a marked call: not the key's own address (it "
     "could be the thief's endpoint), so other_address with a sensitive action: high, never no finding.",
     [issue(K1, t(0)),
      use(K1, t(0, 1), "3.80.9.9", UA_WORKER, "logs.amazonaws.com", "CreateLogStream"),
      use(K1, t(30), "10.9.8.7", UA_PY_ATT, "iam.amazonaws.com", "CreateUser", extra=VPCE_NO_OWNER)],
     [nfinding(K1, "high", ["10.9.8.7"], ["issued_by_lambda", "runtime_marker", "outside_address", "other_address",
                                          "successful_call", "sensitive_action"], {"10.9.8.7": "private"})],
     None, NET_ORG)

case("adv_presigned_failure_masks_nothing",
     "A successful dynamodb:Scan from outside and a failed presigned GetObject from the same address: the "
     "failed presigned call must not cancel the successful one: high.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(30), ATT_IP, "curl/8.5.0", "dynamodb.amazonaws.com", "Scan"),
      use(K1, t(31), ATT_IP, "curl/8.5.0", "s3.amazonaws.com", "GetObject", error="NoSuchKey", extra=PRESIGNED)],
     [nfinding(K1, "high", [ATT_IP], ["issued_by_lambda", "runtime_marker", "outside_address", "successful_call"],
               {ATT_IP: "external"})],
     None, NET)

case("adv_two_forged_issuances_agree",
     "With a leaked ingest token, two forged issuances that agree with each other (eu-west-1, earlier than the "
     "real one): a third issuance is a conflict whatever the two kept say, so no region is trusted and the "
     "thief's eu-west-1 address stays outside with its sensitive actions.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_GO_NOMARK, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(40), ATT_EC2_EU, UA_CLI_LINUX, "iam.amazonaws.com", "CreateUser"),
      use(K1, t(41), ATT_EC2_EU, UA_CLI_LINUX, "secretsmanager.amazonaws.com", "GetSecretValue"),
      forged_issue(K1, "2024-03-13T08:30:00Z", "00000000-0000-0000-0000-00000000f001", region="eu-west-1", fn=FN,
                   acct=ACCT, exp="Mar 13, 2024, 8:30:00 PM"),
      forged_issue(K1, "2024-03-13T08:30:01Z", "00000000-0000-0000-0000-00000000f002", region="eu-west-1", fn=FN,
                   acct=ACCT, exp="Mar 13, 2024, 8:30:01 PM")],
     [nfinding(K1, "high", [FN_IP, ATT_EC2_EU], ["issued_by_lambda", "outside_address", "successful_call",
                                                 "sensitive_action", "new_region", "conflicting_issuance"],
               {ATT_EC2_EU: "aws:eu-west-1:"})],
     None, NET)

case("adv_sensitive_action_list",
     "Actions that read secrets or open access, missing from the first list: ssm:GetParameterHistory "
     "(returns SecureString values) and ec2:ModifySecurityGroupRules from outside are critical.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(30), ATT_IP, UA_CLI_LINUX, "ssm.amazonaws.com", "GetParameterHistory"),
      use(K1, t(31), ATT_IP, UA_CLI_LINUX, "ec2.amazonaws.com", "ModifySecurityGroupRules")],
     [nfinding(K1, "critical", [ATT_IP], ["issued_by_lambda", "runtime_marker", "outside_address", "successful_call",
                                          "sensitive_action"], {ATT_IP: "external"})],
     None, NET)
cases[-1]["expect"][0]["actions_include"] = ["ssm:GetParameterHistory", "ec2:ModifySecurityGroupRules"]

case("adv_inside_aws_reasons_agree_with_severity",
     "The function's own address reads a secret; an unmarked call from another EC2 address of its region reads "
     "the same secret: inside_aws, medium, and the reasons do not claim a sensitive action the severity did not "
     "count.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "secretsmanager.amazonaws.com", "GetSecretValue"),
      use(K1, t(30), ATT_EC2_US, UA_CLI_LINUX, "secretsmanager.amazonaws.com", "GetSecretValue")],
     [nfinding(K1, "medium", [ATT_EC2_US], ["issued_by_lambda", "runtime_marker", "outside_address", "inside_aws",
                                             "successful_call"], {ATT_EC2_US: "aws:us-east-1:"})],
     None, NET)

# ---- Workloads as profiles (issue 14, docs/workloads.md; step 8 of its section 6) ----
# The shapes are tests/data/workload-shapes.json's (synthetic values; field shapes from the sources it names).
# How the engine takes them (service/detect.c det_kind, det_judge, place_of): a key's kind is its first
# issuance's; else ec2RoleDelivery (AWS-written) says ec2; else the Lambda marker; else the session name's form
# (i-<hex> ec2, AWSCodeBuild-<hex> codebuild, eks-...-<uuid> eks); else the ECS marker. Issued keys of any kind
# (and Lambda-marked keys) get the full rules 1-10; any weaker evidence only the outside-AWS rules: a foreign
# VPC endpoint (1), the allow-list (2), the organisation's endpoints (4), an external address (6); AWS, private
# and unknown addresses are "not judged" (the key context's not_judged). Markers anchor the key's own address
# (rule 3) for Lambda and for an issued ECS task with ECS-marked calls; EC2, EKS and CodeBuild keys have no
# marker, so their issuance region's AWS addresses are their network (rule 7). Rule 5 is Lambda's alone.
ECS_EXP = "Mar 13, 2024, 2:33:21 PM"      # issued 08:33:21 + 6 h (ECS, EC2 and Pod Identity keys: [S1][S4][S10])
IRSA_EXP = "Mar 13, 2024, 9:33:21 AM"     # + 1 h (the IRSA example's lifetime [S9])
TASK_ID = "0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b"
INSTANCE_ID = "i-0abcdef1234567890"
POD_SESSION = "eks-payments-invoice-w-3b2d6f0e-8a41-4c7e-9d15-2f6b8e0c4a71"
OIDC_ID = "EXAMPLED539D4633E53DE1B71EXAMPLE"
OIDC_PROVIDER = "arn:aws:iam::%s:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/%s" % (ACCT, OIDC_ID)
GITHUB_PROVIDER = "arn:aws:iam::%s:oidc-provider/token.actions.githubusercontent.com" % ACCT
SA_SUBJECT = "system:serviceaccount:payments:invoice-worker"
IRSA_ID = OIDC_ID + "/" + SA_SUBJECT       # the workload id of an IRSA key: cluster OIDC id / subject
IRSA_SESSION = "1700000000000000001"       # the Go SDK's nanosecond clock [S8]: names nothing
BUILD_SESSION = "AWSCodeBuild-7c2e9a41"
SCHED_SESSION = "example-schedule-session"
KE, KC, KP = "ASIAQEXAMPLEECS00001", "ASIAQEXAMPLEEC200001", "ASIAQEXAMPLEPOD00001"
KI, KB, KS = "ASIAQEXAMPLEIRSA0001", "ASIAQEXAMPLEBLD00001", "ASIAQEXAMPLESCHED001"
KR, KM, KG = "ASIAQEXAMPLEANYWHER1", "ASIAQEXAMPLESSMMI001", "ASIAQEXAMPLEGITHUB01"
UA_ECS_TASK = ("aws-sdk-java/2.25.60 Linux/5.10.219-208.866.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.11+9-LTS "
               "Java/17.0.11 vendor/Amazon.com_Inc. exec-env/AWS_ECS_FARGATE io/sync http/Apache cfg/retry-mode/legacy")
UA_S1_REPLAY = "[aws-cli/1.16.19 Python/2.7.10 Darwin/17.7.0 botocore/1.12.9]"     # the flaws2 replay [S1]
UA_OTRF = "[aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 botocore/1.17.59]"         # the OTRF replay [S4]
UA_EC2_APP = ("aws-cli/2.15.38 Python/3.11.8 Linux/6.1.84-99.169.amzn2023.x86_64 exe/x86_64.amzn.2023 prompt/off "
              "command/s3.cp")
UA_POD = "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/s3#1.58.2"
UA_BUILD = ("aws-cli/2.34.11 md/awscrt#0.27.2 ua/2.1 os/linux#5.10.0 md/arch#x86_64 lang/python#3.13.7 "
            "md/pyimpl#CPython exec-env/AWS_ECS_EC2 m/C,b md/command#s3.sync")                          # [S12]
UA_SCHED = ("AmazonEventBridgeScheduler aws-sdk-java/2.28.29 md/io#async md/http#NettyNio md/internal ua/2.0 "
            "os/Linux#5.10.226-214.880.amzn2.x86_64 lang/java#17.0.13 exec-env/AWS_ECS_FARGATE "
            "cfg/retry-mode#legacy")                                                                      # [S14]
UA_SSM_AGENT = "aws-sdk-go/1.44.260 (go1.20.6; linux; amd64) amazon-ssm-agent/3.2.1377.0"
UA_GITHUB = "aws-sdk-nodejs/2.1500.0 linux/v20.10.0 configure-aws-credentials"
SCHED_IP = "3.34.11.70"       # ap-northeast-2 EC2: the Scheduler fleet's address in [S14]
STRATUS_LIKE_IP = "18.236.253.47"   # us-west-2 EC2 (the Stratus ec2-steal capture's address)
VPCE_BUILD = {"vpcEndpointId": "vpce-0example0000000b", "vpcEndpointAccountId": ACCT}

def wl_issue(invoked_by, key, tm, session, role, exp=ECS_EXP, region="us-east-1", rp_extra=None):
    """sts:AssumeRole by an AWS service for a workload (ecs-tasks, ec2, pods.eks, rolesanywhere)."""
    r = issue(key, tm, exp=exp, region=region, fn=session)
    r["userIdentity"]["invokedBy"] = invoked_by
    r["sourceIPAddress"] = r["userAgent"] = invoked_by
    r["requestParameters"]["roleArn"] = "arn:aws:iam::%s:role/%s" % (ACCT, role)
    if rp_extra:
        r["requestParameters"].update(rp_extra)
    return r

def web_identity_issue(key, tm, ip, provider=OIDC_PROVIDER, subject=SA_SUBJECT, exp=IRSA_EXP,
                       ua="aws-sdk-go/1.45.1 (go1.21.4; linux; amd64)", session=IRSA_SESSION,
                       role="example-web-identity-role"):
    """sts:AssumeRoleWithWebIdentity made by the holder of the token itself ([S8]; responseElements as [S9])."""
    return {"eventVersion": "1.08",
            "userIdentity": {"type": "WebIdentityUser", "principalId": "%s:sts.amazonaws.com:%s" % (provider, subject),
                             "userName": subject, "identityProvider": provider},
            "eventTime": tm, "eventSource": "sts.amazonaws.com", "eventName": "AssumeRoleWithWebIdentity",
            "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": ua,
            "requestParameters": {"roleArn": "arn:aws:iam::%s:role/%s" % (ACCT, role), "roleSessionName": session},
            "responseElements": {"credentials": {"accessKeyId": key, "sessionToken": "EXAMPLE-SESSION-TOKEN",
                                                 "expiration": exp},
                                 "subjectFromWebIdentityToken": subject,
                                 "assumedRoleUser": {"assumedRoleId": "AROAEXAMPLEROLEID0002:" + session,
                                                     "arn": "arn:aws:sts::%s:assumed-role/%s/%s" % (ACCT, role, session)},
                                 "provider": provider, "audience": "sts.amazonaws.com"},
            "requestID": eid(), "eventID": eid(), "readOnly": True, "eventType": "AwsApiCall",
            "managementEvent": True, "recipientAccountId": ACCT, "eventCategory": "Management"}

def wl_use(key, tm, ip, ua, role, session, source="sts.amazonaws.com", name="GetCallerIdentity", delivery=None,
           **kw):
    """A call with a workload's key: the session is the workload's (task id, instance id, ...); delivery is
    sessionContext.ec2RoleDelivery, which AWS writes on every use of a key an instance got from IMDS."""
    r = use(key, tm, ip, ua, source, name, fn=session, **kw)
    ui = r["userIdentity"]
    ui["arn"] = "arn:aws:sts::%s:assumed-role/%s/%s" % (ACCT, role, session)
    ui["sessionContext"]["sessionIssuer"]["arn"] = "arn:aws:iam::%s:role/%s" % (ACCT, role)
    ui["sessionContext"]["sessionIssuer"]["userName"] = role
    if delivery:
        ui["sessionContext"]["ec2RoleDelivery"] = delivery
    return r

def ecs_use(tm, ip, ua, *a, **kw):
    return wl_use(kw.pop("key", KE), tm, ip, ua, "orders-task-role", TASK_ID, *a, **kw)

def ec2_use(tm, ip, ua, *a, **kw):
    kw.setdefault("delivery", "2.0")
    return wl_use(kw.pop("key", KC), tm, ip, ua, "web-instance-role", INSTANCE_ID, *a, **kw)

def pod_use(tm, ip, ua, *a, **kw):
    return wl_use(KP, tm, ip, ua, "example-pod-s3-read-role", POD_SESSION, *a, **kw)

def irsa_use(tm, ip, ua, *a, **kw):
    return wl_use(KI, tm, ip, ua, "example-web-identity-role", IRSA_SESSION, *a, **kw)

def build_use(tm, ip, ua, *a, **kw):
    return wl_use(KB, tm, ip, ua, "example-codebuild-service-role", BUILD_SESSION, *a, **kw)

def sched_use(tm, ip, ua, *a, **kw):
    kw.setdefault("region", "ap-northeast-2")
    return wl_use(KS, tm, ip, ua, "ecsEventsRole", SCHED_SESSION, *a, **kw)

def ecs_issue(tm=None, key=KE):
    return wl_issue("ecs-tasks.amazonaws.com", key, tm or t(0), TASK_ID, "orders-task-role")

def ec2_issue(tm=None):
    return wl_issue("ec2.amazonaws.com", KC, tm or t(0), INSTANCE_ID, "web-instance-role")

def pod_issue():
    return wl_issue("pods.eks.amazonaws.com", KP, t(0), POD_SESSION, "example-pod-s3-read-role", rp_extra={
        "durationSeconds": 21600,
        "tags": [{"key": "eks-cluster-arn", "value": "arn:aws:eks:us-east-1:%s:cluster/payments" % ACCT},
                 {"key": "eks-cluster-name", "value": "payments"},
                 {"key": "kubernetes-namespace", "value": "payments"},
                 {"key": "kubernetes-service-account", "value": "invoice-worker"},
                 {"key": "kubernetes-pod-name", "value": "invoice-worker-7d9f"},
                 {"key": "kubernetes-pod-uid", "value": "00000000-0000-4000-8000-0000000000aa"}]})

def on_behalf(maker, tm, **kw):
    """Calls AWS services make on the workload's behalf with its key: neither inside nor outside."""
    return [maker(tm, "s3.amazonaws.com", "s3.amazonaws.com", "kms.amazonaws.com", "GenerateDataKey",
                  invoked_by="s3.amazonaws.com", **kw),
            maker(tm, "AWS Internal", "AWS Internal", "kms.amazonaws.com", "Decrypt", **kw)]

def wfinding(key, severity, outside, reasons, networks, kind, wid, region="us-east-1", function=None):
    """A finding of a workload's key: its workload {kind, id}; function_name is a Lambda function's only."""
    f = nfinding(key, severity, outside, reasons, networks)
    f["fields"] = {"workload": {"kind": kind, "id": wid}, "function_name": function, "region": region}
    return f

def wkey(kind, wid, rules, **more):
    """Key context expectations: the workload, which rules judged it, and counts."""
    k = {"lambda": kind == "lambda", "workload": {"kind": kind}, "verdict_rules": rules}
    if wid is not None:
        k["workload"]["id"] = wid
    k.update(more)
    return k

# -- ECS task role (workloads.md 1.2) --
case("wl_ecs_task_inside",
     "ECS task: ecs-tasks.amazonaws.com issues the task's key (issued, so the full rules 1-10). The task's SDK "
     "calls carry exec-env/AWS_ECS_FARGATE, which for an issued ECS key anchors its own address (rule 3): every "
     "call from that address is inside, the unmarked one too. Calls AWS services make on the task's behalf "
     "(invokedBy, AWS Internal) are neither inside nor outside. No finding.",
     [ecs_issue(),
      ecs_use(t(0, 4), FN_IP, UA_ECS_TASK, "dynamodb.amazonaws.com", "PutItem"),
      ecs_use(t(0, 5), FN_IP, UA_GO_RAW, "s3.amazonaws.com", "GetObject")] + on_behalf(ecs_use, t(2)),
     [], {KE: wkey("ecs", TASK_ID, "full", issued=True, inside_count=2, outside_count=0, on_behalf_count=2,
                   not_judged_count=0)}, NET)

case("wl_ecs_task_replay_laptop",
     "The task's key replayed from a laptop 37 minutes after issue, as in [S1] (ListBuckets, AWS CLI on macOS): "
     "an external address (rule 6) with a successful sensitive action (s3:ListBuckets) from a network that is "
     "not AWS: critical; desktop_client for the macOS CLI; workload_marker from the task's own calls.",
     [ecs_issue(),
      ecs_use(t(0, 4), FN_IP, UA_ECS_TASK, "dynamodb.amazonaws.com", "PutItem"),
      ecs_use(t(37), "203.0.113.25", UA_S1_REPLAY, "s3.amazonaws.com", "ListBuckets")],
     [wfinding(KE, "critical", ["203.0.113.25"], ["issued_by_service", "workload_marker", "outside_address",
                                                  "successful_call", "sensitive_action", "desktop_client"],
               {"203.0.113.25": "external"}, "ecs", TASK_ID)],
     {KE: wkey("ecs", TASK_ID, "full", inside_count=1, outside_count=1)}, NET)

case("wl_ecs_same_region_other_aws",
     "The task's marked calls anchor its own address (rule 3, an issued ECS key). An unmarked call from another "
     "EC2 address of the task's region is another host (rule 8, inside_aws), as for a marked Lambda key: a "
     "successful call that is not sensitive gives medium (GuardDuty's InsideAWS severity); same region, so no "
     "new_region.",
     [ecs_issue(),
      ecs_use(t(0, 4), FN_IP, UA_ECS_TASK, "dynamodb.amazonaws.com", "PutItem"),
      ecs_use(t(30), ATT_EC2_US, UA_CLI_LINUX, "dynamodb.amazonaws.com", "Scan")],
     [wfinding(KE, "medium", [ATT_EC2_US], ["issued_by_service", "workload_marker", "outside_address", "inside_aws",
                                            "successful_call"], {ATT_EC2_US: "aws:us-east-1:"}, "ecs", TASK_ID)],
     {KE: wkey("ecs", TASK_ID, "full", inside_count=1, outside_count=1)}, NET)

case("wl_ecs_anywhere_allow_listed",
     "ECS Anywhere: a task on the customer's own hardware gets its key from ecs-tasks.amazonaws.com like any task "
     "and calls from the site's egress, an external address. Nothing in the records tells it from a theft "
     "(workloads.md 2), so the operator allow-lists the egress (rule 2): no finding, the uses shown as "
     "allow-listed. (ECS Anywhere's exec-env value has no public sample: the calls here carry no marker.)",
     [ecs_issue(),
      ecs_use(t(0, 4), "203.0.113.60", UA_GO_NOMARK, "sqs.amazonaws.com", "ReceiveMessage"),
      ecs_use(t(1), "203.0.113.60", UA_GO_NOMARK, "s3.amazonaws.com", "PutObject")],
     [], {KE: wkey("ecs", TASK_ID, "full", allowlisted_count=2, outside_count=0, inside_count=0)},
     {"aws_ip_ranges": RANGES, "allow_cidrs": "203.0.113.0/26=ecs-anywhere-site-a"})

case("wl_ecs_marker_only_scheduler_fleet",
     "EventBridge Scheduler signs with a customer's role session from its own fleet, user agent carrying "
     "exec-env/AWS_ECS_FARGATE, no invokedBy [S14]. No issuance: the ECS marker is the only evidence (kind ecs, "
     "weak), so only the outside-AWS rules apply and its AWS address (ap-northeast-2) is not judged: no finding.",
     [sched_use(t(0), SCHED_IP, UA_SCHED, "autoscaling.amazonaws.com", "SetDesiredCapacity",
                error="ValidationException"),
      sched_use(t(5), SCHED_IP, UA_SCHED, "ecs.amazonaws.com", "RunTask")],
     [], {KS: wkey("ecs", SCHED_SESSION, "outside_aws", issued=False, not_judged_count=2,
                   not_judged_ips=[SCHED_IP], outside_count=0, inside_count=0)}, NET)

case("wl_ecs_marker_only_replay_external",
     "The same marker-only key used from an external address without the marker: the outside-AWS rules still "
     "judge external addresses (rule 6): a successful call that is not sensitive, high. No issuance, so no "
     "region of its own and no new_region: the finding is labelled with the smallest region its calls named "
     "(the fleet's ap-northeast-2); the fleet's AWS address stays not judged.",
     [sched_use(t(0), SCHED_IP, UA_SCHED, "ecs.amazonaws.com", "RunTask"),
      sched_use(t(20), OUT_IP, UA_CLI_LINUX, "sts.amazonaws.com", "GetCallerIdentity")],
     [wfinding(KS, "high", [OUT_IP], ["workload_marker", "outside_address", "successful_call"],
               {OUT_IP: "external"}, "ecs", SCHED_SESSION, region="ap-northeast-2")],
     {KS: wkey("ecs", SCHED_SESSION, "outside_aws", not_judged_count=1, not_judged_ips=[SCHED_IP],
               outside_count=1)}, NET)

# -- EC2 instance profile (workloads.md 1.4) --
case("wl_ec2_instance_inside",
     "EC2 instance profile: ec2.amazonaws.com issues the instance's key (full rules). EC2 has no marker, so "
     "nothing anchors one address: AWS addresses of the issuance's region (us-east-1) are the instance's "
     "network (rule 7): its public address and its NAT. On-behalf calls are neither. No finding.",
     [ec2_issue(),
      ec2_use(t(1), FN_IP, UA_EC2_APP, "s3.amazonaws.com", "PutObject"),
      ec2_use(t(2), FN_IP2, UA_EC2_APP, "s3.amazonaws.com", "GetObject")] + on_behalf(ec2_use, t(3)),
     [], {KC: wkey("ec2", INSTANCE_ID, "full", issued=True, inside_count=2, outside_count=0, on_behalf_count=2)},
     NET)

case("wl_ec2_instance_other_region",
     "The instance's key used from an EC2 address of eu-west-1: rule 7, an AWS address of another region than "
     "the issuance's, is outside with new_region. Successful s3:ListBuckets and s3:GetObject are sensitive, but "
     "from an AWS network that is high, not critical. ec2RoleDelivery on the uses: workload_identity.",
     [ec2_issue(),
      ec2_use(t(1), FN_IP, UA_EC2_APP, "s3.amazonaws.com", "PutObject"),
      ec2_use(t(30), ATT_EC2_EU, UA_CLI_LINUX, "s3.amazonaws.com", "ListBuckets"),
      ec2_use(t(31), ATT_EC2_EU, UA_CLI_LINUX, "s3.amazonaws.com", "GetObject")],
     [wfinding(KC, "high", [ATT_EC2_EU], ["issued_by_service", "workload_identity", "outside_address",
                                          "successful_call", "sensitive_action", "new_region"],
               {ATT_EC2_EU: "aws:eu-west-1:"}, "ec2", INSTANCE_ID)],
     {KC: wkey("ec2", INSTANCE_ID, "full", inside_count=1, outside_count=2)}, NET)

case("wl_ec2_instance_replay_external",
     "The OTRF capture's story [S4] with synthetic values: the instance's key replayed from a laptop (AWS CLI "
     "on macOS): ListBuckets, ListObjects, GetObject, all successful, from an external address (rule 6): "
     "critical (s3:GetObject and s3:ListBuckets are sensitive), desktop_client.",
     [ec2_issue(),
      ec2_use(t(1), FN_IP, UA_EC2_APP, "s3.amazonaws.com", "PutObject"),
      ec2_use(t(12), OUT_IP, UA_OTRF, "s3.amazonaws.com", "ListBuckets", delivery="1.0"),
      ec2_use(t(13), OUT_IP, UA_OTRF, "s3.amazonaws.com", "ListObjects", delivery="1.0"),
      ec2_use(t(14), OUT_IP, UA_OTRF, "s3.amazonaws.com", "GetObject", delivery="1.0")],
     [wfinding(KC, "critical", [OUT_IP], ["issued_by_service", "workload_identity", "outside_address",
                                          "successful_call", "sensitive_action", "desktop_client"],
               {OUT_IP: "external"}, "ec2", INSTANCE_ID)],
     {KC: wkey("ec2", INSTANCE_ID, "full", inside_count=1, outside_count=3)}, NET)
cases[-1]["expect"][0]["outside_actions"] = ["s3:GetObject", "s3:ListBuckets", "s3:ListObjects"]

case("wl_ec2_unissued_aws_not_judged",
     "No issuance seen (the trail missed it); every use carries ec2RoleDelivery, which AWS writes: the key is an "
     "EC2 instance's (kind ec2), but without the issuance nothing says which region or address is its network, "
     "so only the outside-AWS rules apply and both AWS addresses (us-east-1 and us-west-2, as in the Stratus "
     "capture) are not judged: no finding. GuardDuty's InsideAWS is the detector for another account's host.",
     [ec2_use(t(1), FN_IP, UA_EC2_APP, "s3.amazonaws.com", "PutObject", delivery="1.0"),
      ec2_use(t(20), STRATUS_LIKE_IP, "stratus-red-team_00000000-0000-4000-8000-000000000000", "ec2.amazonaws.com",
              "DescribeInstances", delivery="1.0", region="us-west-2")],
     [], {KC: wkey("ec2", INSTANCE_ID, "outside_aws", issued=False, not_judged_count=2,
                   not_judged_ips=[FN_IP, STRATUS_LIKE_IP], outside_count=0, inside_count=0)}, NET)

case("wl_ec2_unissued_replay_external",
     "The same unissued EC2 key replayed from an external address: the outside-AWS rules judge it (rule 6), "
     "GuardDuty's OutsideAWS analogue: successful s3:ListBuckets from a non-AWS network, critical; "
     "desktop_client. No issuance: no region of its own (the finding is labelled with its calls' us-east-1), no new_region, and the instance's AWS address not judged.",
     [ec2_use(t(1), FN_IP, UA_EC2_APP, "s3.amazonaws.com", "PutObject", delivery="1.0"),
      ec2_use(t(12), OUT_IP, UA_OTRF, "s3.amazonaws.com", "ListBuckets", delivery="1.0")],
     [wfinding(KC, "critical", [OUT_IP], ["workload_identity", "outside_address", "successful_call",
                                          "sensitive_action", "desktop_client"], {OUT_IP: "external"},
               "ec2", INSTANCE_ID, region="us-east-1")],
     {KC: wkey("ec2", INSTANCE_ID, "outside_aws", not_judged_count=1, not_judged_ips=[FN_IP], outside_count=1)},
     NET)

# -- EKS Pod Identity (workloads.md 1.6) --
case("wl_eks_pod_identity_inside",
     "EKS Pod Identity: pods.eks.amazonaws.com issues the pod's key (full rules). No marker: the node's AWS "
     "addresses of the issuance's region are the pod's network (rule 7). On-behalf calls are neither. No "
     "finding; the key is the pod's (its eks-<cluster>-<pod>-<uuid> session).",
     [pod_issue(),
      pod_use(t(1), FN_IP, UA_POD, "s3.amazonaws.com", "ListBuckets"),
      pod_use(t(2), FN_IP2, UA_POD, "s3.amazonaws.com", "GetObject")] + on_behalf(pod_use, t(3)),
     [], {KP: wkey("eks", POD_SESSION, "full", issued=True, inside_count=2, outside_count=0, on_behalf_count=2)},
     NET)

case("wl_eks_pod_identity_replay",
     "The pod's key replayed from an external address (secretsmanager:GetSecretValue, sensitive: critical) and "
     "from an EC2 address of eu-west-1 (rule 7, another region: new_region). workload_identity from the "
     "eks-...-<uuid> session on the uses.",
     [pod_issue(),
      pod_use(t(1), FN_IP, UA_POD, "s3.amazonaws.com", "ListBuckets"),
      pod_use(t(30), OUT_IP, UA_CLI_LINUX, "secretsmanager.amazonaws.com", "GetSecretValue"),
      pod_use(t(31), ATT_EC2_EU, UA_CLI_LINUX, "sts.amazonaws.com", "GetCallerIdentity")],
     [wfinding(KP, "critical", [OUT_IP, ATT_EC2_EU], ["issued_by_service", "workload_identity", "outside_address",
                                                      "successful_call", "sensitive_action", "new_region"],
               {OUT_IP: "external", ATT_EC2_EU: "aws:eu-west-1:"}, "eks", POD_SESSION)],
     {KP: wkey("eks", POD_SESSION, "full", inside_count=1, outside_count=2)}, NET)

# -- EKS IRSA (workloads.md 1.5) --
case("wl_eks_irsa_inside",
     "EKS IRSA: the pod exchanges its service-account token itself (AssumeRoleWithWebIdentity, provider "
     "oidc.eks.us-east-1.amazonaws.com/id/<ID>) from its node's AWS address. Issued: full rules; no marker, so "
     "rule 7 (the region's AWS addresses inside). The workload id is <cluster OIDC id>/<subject>; the session "
     "name (a nanosecond clock) names nothing. No finding.",
     [web_identity_issue(KI, t(0), FN_IP),
      irsa_use(t(0, 2), FN_IP, UA_POD, "s3.amazonaws.com", "GetObject"),
      irsa_use(t(1), FN_IP, UA_POD, "s3.amazonaws.com", "PutObject")] + on_behalf(irsa_use, t(2)),
     [], {KI: wkey("eks", IRSA_ID, "full", issued=True, inside_count=2, outside_count=0, on_behalf_count=2)}, NET)

case("wl_eks_irsa_replay",
     "An IRSA key exchanged by the pod on its node, then replayed from an external address: s3:ListObjects "
     "succeeded (not sensitive): high. No workload_identity (the session name has no form); the exchange was "
     "inside AWS, so no issued_outside.",
     [web_identity_issue(KI, t(0), FN_IP),
      irsa_use(t(0, 2), FN_IP, UA_POD, "s3.amazonaws.com", "GetObject"),
      irsa_use(t(20), OUT_IP, UA_CLI_LINUX, "s3.amazonaws.com", "ListObjects")],
     [wfinding(KI, "high", [OUT_IP], ["issued_by_service", "outside_address", "successful_call"],
               {OUT_IP: "external"}, "eks", IRSA_ID)],
     {KI: wkey("eks", IRSA_ID, "full", inside_count=1, outside_count=1)}, NET)

case("wl_eks_irsa_token_exchanged_outside",
     "The pod's web identity token itself was stolen: the AssumeRoleWithWebIdentity that issued the key came "
     "from an external address (AWS writes sourceIPAddress; a pod calls STS from its node). That alone is a "
     "finding (issued_outside, at least high), even though the thief then uses the key only from an EC2 address "
     "of the cluster's region, which rule 7 takes as the pod's network (the documented same-region limit).",
     [web_identity_issue(KI, t(0), OUT_IP, ua=UA_CLI_LINUX),
      irsa_use(t(1), ATT_EC2_US, UA_CLI_LINUX, "s3.amazonaws.com", "ListObjects")],
     [wfinding(KI, "high", [], ["issued_by_service", "issued_outside"], {}, "eks", IRSA_ID)],
     {KI: wkey("eks", IRSA_ID, "full", inside_count=1, outside_count=0)}, NET)

case("wl_eks_irsa_token_exchanged_and_used_outside",
     "The stolen token exchanged and the key used from the same external address with the AWS CLI on macOS: "
     "issued_outside (high) and a successful s3:ListBuckets from outside AWS (critical): critical.",
     [web_identity_issue(KI, t(0), OUT_IP, ua=UA_CLI_MAC),
      irsa_use(t(1), OUT_IP, UA_CLI_MAC, "s3.amazonaws.com", "ListBuckets")],
     [wfinding(KI, "critical", [OUT_IP], ["issued_by_service", "issued_outside", "outside_address",
                                          "successful_call", "sensitive_action", "desktop_client"],
               {OUT_IP: "external"}, "eks", IRSA_ID)],
     {KI: wkey("eks", IRSA_ID, "full", inside_count=0, outside_count=1)}, NET)

case("wl_eks_irsa_hybrid_node_allow_listed",
     "EKS hybrid nodes: a pod on the customer's own hardware exchanges its token and calls from the site's "
     "egress. Allow-listed (workloads.md 2): the exchange is not issued_outside (the address is not external) "
     "and the uses are allow-listed (rule 2): no finding.",
     [web_identity_issue(KI, t(0), "203.0.113.80"),
      irsa_use(t(1), "203.0.113.80", UA_POD, "s3.amazonaws.com", "GetObject"),
      irsa_use(t(2), "203.0.113.80", UA_POD, "s3.amazonaws.com", "PutObject")],
     [], {KI: wkey("eks", IRSA_ID, "full", allowlisted_count=2, outside_count=0)},
     {"aws_ip_ranges": RANGES, "allow_cidrs": "203.0.113.64/26=eks-hybrid-dc1"})

# -- CodeBuild (workloads.md 1.7: no public sample of its issuance, so no issuer matcher) --
case("wl_codebuild_build_not_judged",
     "A CodeBuild build's key: no issuance matcher (no public sample of the record), so the evidence is the "
     "AWSCodeBuild-<id> session form (weak identity), which outranks the exec-env/AWS_ECS_EC2 marker builds carry "
     "(kind codebuild). Outside-AWS rules only: the build's private address behind a VPC endpoint and its "
     "NAT's AWS address are not judged; an on-behalf call is neither. No finding.",
     [build_use(t(1), "10.0.71.123", UA_BUILD, "s3.amazonaws.com", "ListObjects", extra=VPCE_BUILD),
      build_use(t(2), FN_IP, UA_BUILD, "ecr.amazonaws.com", "GetAuthorizationToken")] + on_behalf(build_use, t(3)),
     [], {KB: wkey("codebuild", BUILD_SESSION, "outside_aws", issued=False, not_judged_count=2,
                   not_judged_ips=["10.0.71.123", FN_IP], outside_count=0, on_behalf_count=2)}, NET)

case("wl_codebuild_replay_external",
     "The build's key replayed from a laptop (macOS CLI, no marker): the outside-AWS rules judge the external "
     "address (rule 6): successful s3:GetObject, critical; desktop_client. The ECS marker of the build's own "
     "calls is not the build's kind's marker, so no workload_marker reason.",
     [build_use(t(1), "10.0.71.123", UA_BUILD, "s3.amazonaws.com", "ListObjects", extra=VPCE_BUILD),
      build_use(t(20), OUT_IP, UA_CLI_MAC, "s3.amazonaws.com", "GetObject")],
     [wfinding(KB, "critical", [OUT_IP], ["workload_identity", "outside_address", "successful_call",
                                          "sensitive_action", "desktop_client"], {OUT_IP: "external"},
               "codebuild", BUILD_SESSION, region="us-east-1")],
     {KB: wkey("codebuild", BUILD_SESSION, "outside_aws", not_judged_count=1, outside_count=1)}, NET)

# -- Workloads that legitimately run outside AWS (workloads.md 2) --
case("wl_roles_anywhere_session_not_a_workload",
     "IAM Roles Anywhere: rolesanywhere.amazonaws.com issues a session to an on-premises host (certificate "
     "serial as session name) that calls from its own external address. The issuer is no profile's and the "
     "uses carry no marker, identity field or session form: no workload, never a finding.",
     [wl_issue("rolesanywhere.amazonaws.com", KR, t(0), "7a3c1e5f9b2d4c6e8a0b1c2d3e4f5a6b", "example-onprem-role",
               exp="Mar 13, 2024, 9:33:21 AM", rp_extra={"sourceIdentity": "CN=onprem-host-01"}),
      wl_use(KR, t(1), "203.0.113.90", UA_GO_NOMARK, "example-onprem-role", "7a3c1e5f9b2d4c6e8a0b1c2d3e4f5a6b",
             "s3.amazonaws.com", "PutObject"),
      wl_use(KR, t(2), "203.0.113.90", UA_GO_NOMARK, "example-onprem-role", "7a3c1e5f9b2d4c6e8a0b1c2d3e4f5a6b",
             "secretsmanager.amazonaws.com", "GetSecretValue")],
     [], {KR: wkey(None, None, "none", issued=False, outside_count=0)}, NET)

case("wl_ssm_hybrid_mi_session_not_a_workload",
     "An SSM hybrid activation's managed instance (session mi-<hex>) calling from the data centre. No public "
     "sample of these records exists (workloads.md 2, 5.6): the shape is the generic AssumedRole use with the "
     "managed-instance id as the session name, no ec2RoleDelivery. mi- is no profile's session form: no "
     "workload, never a finding.",
     [wl_use(KM, t(1), "203.0.113.91", UA_SSM_AGENT, "example-ssm-hybrid-role", "mi-0123456789abcdef0",
             "ssm.amazonaws.com", "UpdateInstanceInformation"),
      wl_use(KM, t(2), "203.0.113.91", UA_SSM_AGENT, "example-ssm-hybrid-role", "mi-0123456789abcdef0",
             "ssmmessages.amazonaws.com", "CreateControlChannel")],
     [], {KM: wkey(None, None, "none", issued=False, outside_count=0)}, NET)

case("wl_github_oidc_not_irsa",
     "GitHub Actions exchanges its OIDC token with AssumeRoleWithWebIdentity from a runner outside AWS. The "
     "provider is token.actions.githubusercontent.com, not oidc.eks.<region>.amazonaws.com/id/<ID>: not an IRSA "
     "issuance (not issued_outside), and the key's uses name no workload: no finding.",
     [web_identity_issue(KG, t(0), "203.0.113.40", provider=GITHUB_PROVIDER,
                         subject="repo:example-org/example-repo:ref:refs/heads/main", ua=UA_GITHUB,
                         session="GitHubActions"),
      wl_use(KG, t(1), "203.0.113.40", UA_CLI_LINUX, "example-web-identity-role", "GitHubActions",
             "s3.amazonaws.com", "PutObject"),
      wl_use(KG, t(2), "203.0.113.40", UA_CLI_LINUX, "example-web-identity-role", "GitHubActions",
             "cloudfront.amazonaws.com", "CreateInvalidation")],
     [], {KG: wkey(None, None, "none", issued=False, outside_count=0)}, NET)

# -- The attacker has read docs/workloads.md --
case("wl_adv_lambda_marker_on_ec2_key",
     "The thief copies a Lambda runtime's user agent onto an issued EC2 key's calls. The kind stays ec2 (the "
     "issuance ranks above any marker), so no marker anchors an address: the thief's call from an EC2 address of "
     "the instance's region is inside by rule 7, exactly as without the marker (the documented same-region "
     "limit); the marked call from outside AWS is copied_user_agent, critical (higher than the high the same "
     "call without the marker gives).",
     [ec2_issue(),
      ec2_use(t(1), FN_IP, UA_EC2_APP, "s3.amazonaws.com", "PutObject"),
      ec2_use(t(20), ATT_EC2_US, UA_PY_ATT, "sts.amazonaws.com", "GetCallerIdentity"),
      ec2_use(t(21), OUT_IP, UA_PY_ATT, "sts.amazonaws.com", "GetCallerIdentity")],
     [wfinding(KC, "critical", [OUT_IP], ["issued_by_service", "workload_identity", "runtime_marker",
                                          "outside_address", "copied_user_agent", "successful_call"],
               {OUT_IP: "external"}, "ec2", INSTANCE_ID)],
     {KC: wkey("ec2", INSTANCE_ID, "full", runtime_marker=True, inside_count=2, outside_count=1)}, NET)

case("wl_adv_lambda_marker_on_unissued_ec2_key",
     "The same on an EC2 key whose issuance was not seen: ec2RoleDelivery, written by AWS, ranks above the "
     "Lambda marker, so the key stays ec2 with the outside-AWS rules (the marker cannot buy Lambda's full "
     "rules and make the thief's marked EC2 address the key's own). The thief's AWS addresses are not judged; "
     "the marked call from outside AWS is copied_user_agent, critical.",
     [ec2_use(t(1), FN_IP, UA_EC2_APP, "s3.amazonaws.com", "PutObject"),
      ec2_use(t(20), ATT_EC2_US, UA_PY_ATT, "iam.amazonaws.com", "CreateUser"),
      ec2_use(t(21), ATT_EC2_EU, UA_PY_ATT, "iam.amazonaws.com", "CreateUser"),
      ec2_use(t(22), OUT_IP, UA_PY_ATT, "sts.amazonaws.com", "GetCallerIdentity")],
     [wfinding(KC, "critical", [OUT_IP], ["workload_identity", "runtime_marker", "outside_address",
                                          "copied_user_agent", "successful_call"], {OUT_IP: "external"},
               "ec2", INSTANCE_ID, region="us-east-1")],
     {KC: wkey("ec2", INSTANCE_ID, "outside_aws", runtime_marker=True, not_judged_count=3,
               not_judged_ips=[FN_IP, ATT_EC2_US, ATT_EC2_EU], outside_count=1)}, NET)

case("wl_adv_ecs_marker_on_lambda_key_external",
     "The thief puts an ECS marker on a Lambda key's calls from outside AWS: the key stays Lambda's (issued); "
     "any workload's marker from a network that is never the function's is copied_user_agent: critical.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), OUT_IP, UA_ECS_TASK, "sts.amazonaws.com", "GetCallerIdentity")],
     [wfinding(K1, "critical", [OUT_IP], ["issued_by_lambda", "runtime_marker", "outside_address",
                                          "copied_user_agent", "successful_call"], {OUT_IP: "external"},
               "lambda", FN, function=FN)],
     {K1: wkey("lambda", FN, "full", inside_count=1, outside_count=1)}, NET)

case("wl_adv_ecs_marker_on_lambda_key_same_region",
     "The thief's ECS-marked iam:CreateUser from an EC2 address of the function's region: a marked call of any "
     "workload's marker from an address that could be the function's contests the key's own address, as a "
     "copied Lambda marker would (fixture 47): both addresses shown outside, and the severity is the highest "
     "either being the function's gives: high (the function's own address never made iam:CreateUser).",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), ATT_EC2_US, UA_ECS_TASK, "iam.amazonaws.com", "CreateUser")],
     [wfinding(K1, "high", [FN_IP, ATT_EC2_US], ["issued_by_lambda", "runtime_marker", "outside_address",
                                                 "inside_aws", "successful_call", "sensitive_action",
                                                 "contested_own_address"],
               {FN_IP: "aws:us-east-1:", ATT_EC2_US: "aws:us-east-1:"}, "lambda", FN, function=FN)],
     None, NET)

case("wl_adv_two_issuance_kinds",
     "With a leaked ingest token, a forged EC2 issuance (later than the real ECS one, same region) names the "
     "task's key. The first issuance keeps the kind (ecs) and the id; two issuances are conflicting_issuance: "
     "the thief's failed calls from outside (medium alone) rise to high. Issuances that disagree on the workload "
     "withdraw the leniency of either (fixture 88): the task's own marked address is no longer anchored as its "
     "home and shows as inside_aws, as a Lambda key's does when its issuances disagree on the region.",
     [ecs_issue(),
      ecs_use(t(0, 4), FN_IP, UA_ECS_TASK, "dynamodb.amazonaws.com", "PutItem"),
      ecs_use(t(30), OUT_IP, UA_CLI_LINUX, "iam.amazonaws.com", "ListUsers", error="AccessDenied"),
      dict(wl_issue("ec2.amazonaws.com", KE, t(35), INSTANCE_ID, "web-instance-role"),
           eventID="00000000-0000-0000-0000-00000000e002")],
     [wfinding(KE, "high", [OUT_IP, FN_IP], ["issued_by_service", "workload_marker", "outside_address",
                                             "successful_call", "inside_aws", "new_region", "conflicting_issuance"],
               {OUT_IP: "external", FN_IP: "aws:us-east-1:"}, "ecs", TASK_ID)],
     {KE: wkey("ecs", TASK_ID, "full", inside_count=0, outside_count=2)}, NET)

_dup = [ecs_issue(), ecs_use(t(0, 4), FN_IP, UA_ECS_TASK, "dynamodb.amazonaws.com", "PutItem"),
        ecs_use(t(37), "203.0.113.25", UA_S1_REPLAY, "s3.amazonaws.com", "ListBuckets")]
case("wl_duplicates_in_one_file",
     "A workload's records repeated in one file (CloudTrail redelivery, S3 and EventBridge overlapping): the same "
     "events count once; the verdict is the task replay's (critical).",
     [_dup[0], _dup[1], _dup[2], _dup[2], _dup[1], _dup[0]],
     [wfinding(KE, "critical", ["203.0.113.25"], ["issued_by_service", "workload_marker", "outside_address",
                                                  "successful_call", "sensitive_action", "desktop_client"],
               {"203.0.113.25": "external"}, "ecs", TASK_ID)],
     {KE: wkey("ecs", TASK_ID, "full", inside_count=1, outside_count=1)}, NET)

case("wl_adv_forged_earlier_issuance_other_kind",
     "Red-team finding (issue 14): fixture 28's theft (the worker's user agent on iam:CreateUser from a same-region "
     "EC2 address, high) plus a forged EC2 issuance of the Lambda key, earlier than the real one. The earliest "
     "issuance names the kind, so the forger chose ec2, whose region's AWS addresses are inside by rule 7: that "
     "erased the finding. Issuances that disagree on the workload now withdraw its leniency like issuances that "
     "disagree on the region: every AWS address is outside, conflicting_issuance holds the severity at high.",
     [issue(K1, t(0)),
      use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), ATT_EC2_US, UA_WORKER, "iam.amazonaws.com", "CreateUser"),
      dict(wl_issue("ec2.amazonaws.com", K1, t(-3), INSTANCE_ID, "web-instance-role", exp="Mar 13, 2024, 2:30:21 PM"),
           eventID="00000000-0000-0000-0000-00000000f0f0")],
     [nfinding(K1, "high", [ATT_EC2_US, FN_IP], ["issued_by_service", "runtime_marker", "outside_address",
                                                  "successful_call", "sensitive_action", "new_region",
                                                  "conflicting_issuance"],
               {ATT_EC2_US: "aws:us-east-1:", FN_IP: "aws:us-east-1:"})],
     None, NET)


# -- Red-team review of issue 14 (helper "review"): siblings of fixture 88 and a false positive --
case("wl_adv_forged_ec2_delivery_on_marked_key",
     "Red-team finding (review): a Lambda key whose issuance was not seen (the marker makes it Lambda's, full "
     "rules) is replayed from an EC2 address of eu-west-1 (iam:CreateUser: inside_aws, new_region, high). A holder "
     "of an ingest token adds one record: an on-behalf use of the key (AWS Internal, so no address) carrying "
     "sessionContext.ec2RoleDelivery. ec2RoleDelivery outranked the Lambda marker, so the key became an EC2 key "
     "under the outside-AWS rules and the thief's AWS address was not judged: no finding. AWS writes "
     "ec2RoleDelivery on every use of an IMDS key; the function's marked calls carry none, so the forged identity "
     "is contradicted and must not change the verdict the other records give.",
     [use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), ATT_EC2_EU, UA_CLI_LINUX, "iam.amazonaws.com", "CreateUser"),
      dict(use(K1, t(1), "AWS Internal", "AWS Internal", "kms.amazonaws.com", "Decrypt",
               extra={"eventID": "00000000-0000-0000-0000-0000000000d1"}))],
     [nfinding(K1, "high", [ATT_EC2_EU], ["runtime_marker", "outside_address", "successful_call",
                                          "sensitive_action", "inside_aws", "new_region"],
               {ATT_EC2_EU: "aws:eu-west-1:"})],
     None, NET)
cases[-1]["records"][2]["userIdentity"]["sessionContext"]["ec2RoleDelivery"] = "2.0"

case("wl_adv_forged_single_issuance_unanchors_marked_key",
     "Red-team finding (review), the single-issuance sibling of fixture 88: a Lambda key whose issuance was not "
     "seen, the function's marked call from its us-east-1 address, the thief's iam:CreateUser from another EC2 "
     "address of us-east-1 (inside_aws, high). A forged EC2 issuance (one, so no conflicting_issuance) names "
     "us-east-1: the issuance's kind outranked the marker, EC2 keys are not anchored, and rule 7 made both "
     "same-region addresses inside: no finding. A Lambda-marked key issued to another workload is evidence that "
     "disagrees on the workload (the key's uses carry no ec2RoleDelivery either), so, as in fixture 88, the "
     "kind's leniency is withdrawn: both AWS addresses outside, high.",
     [use(K1, t(0, 4), FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, t(20), ATT_EC2_US, UA_CLI_LINUX, "iam.amazonaws.com", "CreateUser"),
      dict(wl_issue("ec2.amazonaws.com", K1, t(-3), INSTANCE_ID, "web-instance-role", exp="Mar 13, 2024, 2:30:21 PM"),
           eventID="00000000-0000-0000-0000-00000000f0f1")],
     [nfinding(K1, "high", [FN_IP, ATT_EC2_US], ["issued_by_service", "runtime_marker", "outside_address",
                                                 "successful_call", "sensitive_action", "new_region"],
               {FN_IP: "aws:us-east-1:", ATT_EC2_US: "aws:us-east-1:"})],
     None, NET)

case("wl_adv_forged_issuances_hide_token_exchange",
     "Red-team finding (review), the third-issuance sibling: an IRSA token exchanged from an external address "
     "(issued_outside, high, before any use: fixture 72's story without the use). Two forged Pod Identity "
     "issuances of the key, earlier than the real one, fill the two kept issuance slots; issued_outside was read "
     "from those two only, so the finding disappeared. Whether an issuance came from outside must be kept as a "
     "union over every issuance, like the count that makes a third issuance a conflict.",
     [web_identity_issue(KI, t(0), OUT_IP, ua=UA_CLI_LINUX),
      dict(wl_issue("pods.eks.amazonaws.com", KI, t(-2), POD_SESSION, "example-pod-s3-read-role"),
           eventID="00000000-0000-0000-0000-00000000f0a1"),
      dict(wl_issue("pods.eks.amazonaws.com", KI, t(-1), POD_SESSION, "example-pod-s3-read-role"),
           eventID="00000000-0000-0000-0000-00000000f0a2")],
     [nfinding(KI, "high", [], ["issued_by_service", "issued_outside", "conflicting_issuance"], {})],
     None, NET)

OIDC_PROVIDER_EU = "arn:aws:iam::%s:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/%s" % (ACCT, OIDC_ID)
case("wl_eks_irsa_global_sts_endpoint",
     "False positive found in review: a pod of an eu-west-1 cluster exchanges its token through STS's global "
     "endpoint (the SDKs' legacy default) or another region's, so the AssumeRoleWithWebIdentity record's "
     "awsRegion is us-east-1 while the pod and its NAT (an EC2 address of eu-west-1) are in eu-west-1. The "
     "issuance's awsRegion is the STS endpoint the caller chose; the cluster's region is in the AWS-written "
     "identityProvider (oidc.eks.eu-west-1...). Taking awsRegion made the pod's own calls another region's "
     "(new_region, high). Expected: the provider's region is the pod's; no finding.",
     [web_identity_issue(KI, t(0), ATT_EC2_EU, provider=OIDC_PROVIDER_EU),
      irsa_use(t(1), ATT_EC2_EU, UA_POD, "s3.amazonaws.com", "GetObject", region="eu-west-1"),
      irsa_use(t(2), ATT_EC2_EU, UA_POD, "secretsmanager.amazonaws.com", "GetSecretValue", region="eu-west-1")],
     [], {KI: wkey("eks", IRSA_ID, "full", issued=True, inside_count=2, outside_count=0)}, NET)

LONG_FN = "x" * 126 + "\u00e9" + "y"   # 129 bytes: the 127-byte workload id bound falls inside the e-acute
case("wl_workload_id_cut_on_a_character",
     "Bound found in review: a workload id (here a forged Lambda issuance's session name) longer than the "
     "127 bytes kept is cut, and the cut fell inside a two-byte UTF-8 character; jansson refuses the broken "
     "string, so the finding lost its required function_name and workload.id (OpenAPI: both required). "
     "Expected: the id cut at a character boundary (126 bytes), present in the finding.",
     [issue(K2, t(0), fn=LONG_FN),
      use(K2, t(30), OUT_IP, UA_CLI_LINUX, fn=LONG_FN)],
     [dict(nfinding(K2, "high", [OUT_IP], ["issued_by_lambda", "outside_address", "successful_call"],
                    {OUT_IP: "external"}),
           fields={"function_name": "x" * 126, "workload": {"kind": "lambda", "id": "x" * 126}})],
     None, NET)


here = os.path.dirname(os.path.abspath(__file__))
for i, c in enumerate(cases):
    with open(os.path.join(here, "%02d_%s.json" % (i + 1, c["name"])), "w") as f:
        json.dump(c, f, indent=1)
        f.write("\n")
print(len(cases), "cases written")
