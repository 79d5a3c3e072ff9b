// fixtures.mjs: the findings the browser test loads, made from the detection fixtures (tests/cases/*.json).
// Every case uses the key ASIAQEXAMPLEKEY00001, so each copy gets a key of its own (and event ids of its own),
// a function name and an account, to give the filters something to tell apart. One more finding carries
// hostile strings wherever the decoder lets a string through: the function (session) name, the account,
// the address and the user agent.
import fs from 'node:fs';
import path from 'node:path';

export const IMG = '<img src=x onerror=alert(1)>';
export const SCRIPT_END = '</script>';
export const JS_URL = 'javascript:alert(1)';
export const HOSTILE = {
  session: IMG,                                     // the function name (roleSessionName of Lambda's AssumeRole)
  account: SCRIPT_END,                              // recipientAccountId: up to 15 characters are kept
  ip: JS_URL,                                       // sourceIPAddress: a "not-ip" address
  ua: IMG + ' ' + SCRIPT_END + ' ' + JS_URL,        // userAgent
};

// name -> case file; function and account by position
export const FIXTURES = [
  ['theft', '01_theft_after_inside_use'], ['issuance_only', '03_issuance_only_then_outside'],
  ['failed', '10_all_outside_calls_failed'], ['failed_is_use', '14_failed_call_is_a_use'],
  ['no_marker', '17_net_no_marker_runtime_out_of_region'], ['inside_aws', '19_net_inside_aws'],
  ['vpce', '20_net_foreign_vpc_endpoint'], ['presigned', '23_net_presigned_url'],
  ['eviction', '24_adv_eviction_go_flood'], ['flood', '52_adv_outside_flood_keeps_own'],
  ['forged_id', '53_adv_forged_same_event_id'], ['inside_aws_medium', '58_adv_inside_aws_reasons_agree_with_severity'],
].map(([name, file], i) => ({ name, file, n: i + 1, fn: ['orders-fn', 'billing-fn', 'etl-fn'][i % 3], account: ['111122223333', '444455556666'][i % 2] }));

function records(root, file, n, fn, account) {
  const text = fs.readFileSync(path.join(root, 'tests', 'cases', file + '.json'), 'utf8')
    .replaceAll('ASIAQEXAMPLEKEY00001', 'ASIAQEXAMPLEKEY' + String(200 + n).padStart(5, '0'))
    .replaceAll('-4000-8000-', '-4000-8' + String(n).padStart(3, '0') + '-')
    .replaceAll('orders-fn', fn)
    .replaceAll('111122223333', account);
  return JSON.parse(text).records;
}

export function fixtureRecords(root, fx) {
  return records(root, fx.file, fx.n, fx.fn, fx.account);
}

// one more finding, for the auto-refresh test
export function newRecords(root) {
  return records(root, '01_theft_after_inside_use', 77, 'late-fn', '111122223333');
}

// A theft the CORS case tries to ingest from a browser on another origin: it must never be stored.
export function corsRecords(root) {
  return records(root, '01_theft_after_inside_use', 88, 'cors-fn', '111122223333');
}

export function hostileRecords(root) {
  const r = records(root, '01_theft_after_inside_use', 66, 'orders-fn', '111122223333');
  // [0] Lambda's AssumeRole (issuance), [1] the function's own call, [2] the thief's call
  r[0].requestParameters.roleSessionName = HOSTILE.session;
  r[0].recipientAccountId = HOSTILE.account;
  r[2].sourceIPAddress = HOSTILE.ip;
  r[2].userAgent = HOSTILE.ua;
  return r;
}

// Other workloads (shapes of tests/data/workload-shapes.json): an ECS task's key, issued by ecs-tasks and used
// from an external address (full rules); an EC2 instance's key known only from ec2RoleDelivery, used from an
// external and a private address (outside-AWS rules: the private one is not judged); an ECS key whose task id
// (the issuance's roleSessionName, a forger's choice) is hostile.
export const ECS_TASK = '0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b';
export const EC2_INSTANCE = 'i-0abcdef1234567890';
function issue(n, akid, session) {
  return { eventVersion: '1.08', eventID: 'e0000000-0000-4000-9' + String(n).padStart(3, '0') + '-000000000001', eventTime: '2024-03-13T08:30:00Z',
    eventSource: 'sts.amazonaws.com', eventName: 'AssumeRole', awsRegion: 'us-east-1', sourceIPAddress: 'ecs-tasks.amazonaws.com',
    userAgent: 'ecs-tasks.amazonaws.com', userIdentity: { type: 'AWSService', invokedBy: 'ecs-tasks.amazonaws.com' },
    requestParameters: { roleArn: 'arn:aws:iam::111122223333:role/orders-task-role', roleSessionName: session },
    responseElements: { credentials: { accessKeyId: akid, expiration: 'Mar 13, 2024, 2:30:00 PM' } }, recipientAccountId: '111122223333' };
}
function use(n, i, akid, ip, role, session, ec2) {
  return { eventVersion: '1.08', eventID: 'e0000000-0000-4000-9' + String(n).padStart(3, '0') + '-00000000001' + i, eventTime: '2024-03-13T09:0' + i + ':00Z',
    eventSource: 's3.amazonaws.com', eventName: 'ListBuckets', awsRegion: 'us-east-1', sourceIPAddress: ip,
    userAgent: '[aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 botocore/1.17.59]',
    userIdentity: { type: 'AssumedRole', accessKeyId: akid, accountId: '111122223333', arn: 'arn:aws:sts::111122223333:assumed-role/' + role + '/' + session,
      sessionContext: ec2 ? { ec2RoleDelivery: '2.0' } : {} }, recipientAccountId: '111122223333' };
}
export function ecsRecords() {
  return [issue(1, 'ASIAQEXAMPLEECSBR001', ECS_TASK), use(1, 2, 'ASIAQEXAMPLEECSBR001', '198.51.100.7', 'orders-task-role', ECS_TASK)];
}
export function ec2Records() {
  return [use(2, 1, 'ASIAQEXAMPLEEC2BR001', '198.51.100.8', 'web-role', EC2_INSTANCE, true),
    use(2, 2, 'ASIAQEXAMPLEEC2BR001', '10.1.2.3', 'web-role', EC2_INSTANCE, true)];
}
export function hostileEcsRecords() {
  return [issue(3, 'ASIAQEXAMPLEECSBR066', HOSTILE.session), use(3, 2, 'ASIAQEXAMPLEECSBR066', '198.51.100.9', 'orders-task-role', HOSTILE.session)];
}
