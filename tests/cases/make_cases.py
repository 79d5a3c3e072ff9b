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

here = os.path.dirname(os.path.abspath(__file__))
for i, c in enumerate(cases):
    with open(os.path.join(here, "%02d_%s.json" % (i + 1, c["name"])), "w") as f:
        json.dump(c, f, indent=1)
        f.write("\n")
print(len(cases), "cases written")
