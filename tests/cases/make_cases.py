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
def case(name, desc, records, expect, keys=None, settings=None):
    c = {"name": name, "description": desc, "records": records, "expect": expect, "expect_keys": keys or {}}
    if settings:
        c["settings"] = settings
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
     [], {K1: {"lambda": True, "inside_count": 1, "outside_count": 0}})

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
                                                    "sensitive_action"],
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
     "A key whose runtime marks its calls, used without the marker from an AWS address it never used "
     "(an attacker's EC2 instance): medium, GuardDuty's InsideAWS analogue.",
     [issue(K1, "2024-03-13T08:33:21Z"),
      use(K1, "2024-03-13T08:33:25Z", FN_IP, UA_PY, "dynamodb.amazonaws.com", "PutItem"),
      use(K1, "2024-03-13T09:00:00Z", OTHER_AWS, UA_CLI_LINUX, "sts.amazonaws.com", "GetCallerIdentity",
          region="us-east-1")],
     [nfinding(K1, "medium", [OTHER_AWS], ["issued_by_lambda", "runtime_marker", "outside_address", "inside_aws",
                                           "successful_call"], {OTHER_AWS: "aws:ap-south-1:"})],
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

here = os.path.dirname(os.path.abspath(__file__))
for i, c in enumerate(cases):
    with open(os.path.join(here, "%02d_%s.json" % (i + 1, c["name"])), "w") as f:
        json.dump(c, f, indent=1)
        f.write("\n")
print(len(cases), "cases written")
