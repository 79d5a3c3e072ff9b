// ui_test.mjs: the findings page (ui/) in headless Chromium against real `credwatch serve` instances, driven
// by tests/it_browser.sh, which starts a redis-server and two instances sharing it:
//   CW_A  read and ingest tokens configured (the page asks for the read token);
//   CW_B  no read token (open on loopback: the page works without asking).
// Chromium is Debian's (CW_CHROMIUM, /usr/bin/chromium), started here with a fresh profile under CW_TMP and
// driven over CDP by playwright-core (no browser of its own is downloaded); its pid goes to CW_PIDFILE so the
// script's clean-up stops it whatever happens. Every request the browser makes is checked: anything not to
// one of the two loopback origins is aborted and fails the run. Prints `ok - ...` / `not ok - ...`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { FIXTURES, HOSTILE, IMG, SCRIPT_END, JS_URL, hostileRecords, fixtureRecords, newRecords, corsRecords, ecsRecords, ec2Records,
  hostileEcsRecords, ECS_TASK, EC2_INSTANCE } from './fixtures.mjs';

function need(k) {
  const v = process.env[k];
  if (!v) { console.log('not ok - environment ' + k + ' is set'); process.exit(1); }
  return v;
}
const A = need('CW_A');
const B = need('CW_B');
const READ = need('CW_READ_TOKEN');
const INGEST = need('CW_INGEST_TOKEN');
const TMP = need('CW_TMP');
const ROOT = need('CW_ROOT');
const SHOTS = need('CW_SHOTS');
const CHROMIUM = process.env.CW_CHROMIUM || '/usr/bin/chromium';
const PIDFILE = process.env.CW_PIDFILE || '';
const DOCS_PNG = process.env.CW_DOCS_PNG || '';
const WAIT = 10000;        // ms: any one wait for the page
const CASE_LIMIT = 40000;  // ms: any one test case
const ORIGINS = [A + '/', B + '/'];

let failures = 0;
const ok = (name) => console.log('ok - ' + name);
const nok = (name, why) => { failures += 1; console.log('not ok - ' + name + (why ? ' -- ' + String(why).slice(0, 600) : '')); };
const check = (name, cond, why) => (cond ? ok(name) : nok(name, why));
const sleep = (t) => new Promise((r) => setTimeout(r, t));
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const cut30 = (s) => (s.length > 30 ? s.slice(0, 29) + '\u2026' : s); // the timeline's label, as timeline.js cuts it
// what the queue's Workload column shows: a Lambda finding its function, another workload "ECS task <id>"
const WHAT = { ecs: 'ECS task', ec2: 'EC2 instance', eks: 'EKS pod', codebuild: 'CodeBuild build' };
const workloadText = (f) => (!f.workload || f.workload.kind === 'lambda' ? f.function_name : WHAT[f.workload.kind] + ' ' + f.workload.id);

// ---- the API, from node (the truth the page is compared with) ----
async function http(base, method, p, { token, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(WAIT) });
  const text = await res.text();
  let data = null;
  try { data = JSON.parse(text); } catch (e) { data = text; }
  return { status: res.status, headers: res.headers, data };
}
const getA = async (p) => (await http(A, 'GET', p, { token: READ })).data;
async function ingest(records) {
  const r = await http(A, 'POST', '/v1/ingest/cloudtrail', { token: INGEST, body: { Records: records } });
  if (r.status !== 200) throw new Error('ingest: HTTP ' + r.status + ' ' + JSON.stringify(r.data));
  return r.data;
}

// ---- what the browser did ----
const seen = { requests: [], offOrigin: [], dialogs: [], pageErrors: [], cspViolations: [], uiResponses: [], challenges: [] };

async function launch() {
  const profile = path.join(TMP, 'chromium-profile');
  const child = spawn(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-extensions', '--no-first-run', '--no-default-browser-check',
    '--user-data-dir=' + profile, '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', 'about:blank'],
  { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  if (PIDFILE) fs.appendFileSync(PIDFILE, child.pid + '\n');
  let tail = '';
  const ws = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('chromium did not start within 20 s: ' + tail)), 20000);
    child.stderr.on('data', (d) => {
      tail = (tail + d).slice(-2000);
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(tail);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (c) => { clearTimeout(timer); reject(new Error('chromium exited (' + c + '): ' + tail)); });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
  const browser = await chromium.connectOverCDP(ws, { timeout: 15000 });
  return { child, browser };
}

function stop(child) {
  try { process.kill(-child.pid, 'SIGKILL'); } catch (e) { /* gone */ }
}

function watch(context) {
  context.setDefaultTimeout(WAIT);
  return context.route('**/*', (r) => {
    const u = r.request().url();
    if (ORIGINS.some((o) => u.startsWith(o))) return r.continue();
    seen.offOrigin.push(u);
    return r.abort();
  });
}

function watchPage(page) {
  page.setDefaultTimeout(WAIT);
  page.on('request', (req) => seen.requests.push(req.url()));
  page.on('dialog', (d) => { seen.dialogs.push(d.type() + ': ' + d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => seen.pageErrors.push(e.message));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) seen.cspViolations.push(m.text());
  });
  page.on('response', async (res) => {
    const u = new URL(res.url());
    if (res.status() === 401) seen.challenges.push(...(await res.headerValues('www-authenticate').catch(() => ['?'])));
    if (u.pathname === '/' || u.pathname.startsWith('/ui/')) {
      seen.uiResponses.push({ url: res.url(), status: res.status(), csp: res.headers()['content-security-policy'] || '' });
    }
  });
  return page;
}

async function newPage(context, viewport) {
  const page = watchPage(await context.newPage());
  await page.setViewportSize(viewport || { width: 1280, height: 800 });
  return page;
}

// ---- the page, read back ----
const queueIds = (page) => page.$$eval('table.queue tbody tr', (rows) => rows.map((r) => r.getAttribute('data-id')));
const queueRows = (page) => page.$$eval('table.queue tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent.trim())));
const dataShown = (page) => page.evaluate(() => document.querySelectorAll('#view table tr, #view .finding, #view .key, #view .sink').length);

async function waitQueue(page, want) {
  // until the table shows exactly `want` (ids, in order) and no request is in flight
  await page.waitForFunction((w) => {
    const ids = [...document.querySelectorAll('table.queue tbody tr')].map((r) => r.getAttribute('data-id'));
    return document.documentElement.getAttribute('data-busy') === '0' && JSON.stringify(ids) === JSON.stringify(w);
  }, want, { timeout: WAIT }).catch(() => {});
  return queueIds(page);
}

async function login(page, base) {
  await page.goto(base + '/ui/');
  await page.waitForFunction(() => !document.getElementById('auth').hidden || document.querySelector('table.queue, #queue-count'));
  if (await page.isVisible('#auth')) {
    await page.fill('#token', READ);
    await page.press('#token', 'Enter');
  }
  await page.waitForSelector('#queue-count');
}

async function openFinding(page, id) {
  await page.evaluate((h) => { location.hash = h; }, '#/finding/' + encodeURIComponent(id));
  await page.waitForFunction((i) => {
    const a = document.querySelector('article.finding');
    return a && a.getAttribute('data-id') === i && document.getElementById('summary');
  }, id);
}

// ---- the cases ----
const ids = {}; // fixture name -> finding id

async function loadFixtures() {
  for (const fx of FIXTURES) {
    const r = await ingest(fixtureRecords(ROOT, fx));
    if (r.findings_count !== 1) throw new Error(fx.name + ': expected one finding, got ' + JSON.stringify(r.findings));
    ids[fx.name] = r.findings[0];
  }
  const h = await ingest(hostileRecords(ROOT));
  ids.hostile = h.findings[0];
  for (const [name, recs] of [['ecs', ecsRecords()], ['ec2', ec2Records()], ['hostile_ecs', hostileEcsRecords()]]) {
    const r = await ingest(recs);
    if (r.findings_count !== 1) throw new Error(name + ': expected one finding, got ' + JSON.stringify(r.findings));
    ids[name] = r.findings[0];
  }
  const list = await getA('/v1/findings?limit=500');
  check('fixtures loaded through the ingest API: ' + list.findings.length + ' findings', list.findings.length === FIXTURES.length + 4,
    JSON.stringify(list.findings.map((f) => f.id)));
}

async function caseAuth(context) {
  const page = await newPage(context);
  await page.goto(A + '/ui/');
  await page.waitForSelector('#auth', { state: 'visible' });
  const why = await page.textContent('#auth-why');
  check('no token: the page asks for the read token and says why', /needs a read token/.test(why), why);
  check('no token: no data shown', (await dataShown(page)) === 0);

  await page.fill('#token', 'wrong-token-0123456789abcdef');
  await page.click('#auth-form button[type=submit]');
  await page.waitForFunction(() => /refused/.test(document.getElementById('auth-why').textContent));
  check('wrong token: the page says it was refused', /refused \(HTTP 401\)/.test(await page.textContent('#auth-why')));
  check('wrong token: no data shown, every table empty', (await dataShown(page)) === 0 && (await page.$$('tr')).length === 0);
  check('wrong token: not kept in sessionStorage', (await page.evaluate(() => sessionStorage.length)) === 0);

  await page.fill('#token', INGEST);
  await page.click('#auth-form button[type=submit]');
  await page.waitForFunction(() => /not a read token/.test(document.getElementById('auth-why').textContent));
  check('an ingest token: the page says it is not a read token, shows nothing', (await dataShown(page)) === 0);

  await page.fill('#token', READ);
  await page.press('#token', 'Enter');
  await page.waitForSelector('table.queue tbody tr');
  check('the read token: the queue shows', (await queueIds(page)).length > 0);
  const stored = await page.evaluate(() => ({ s: Object.keys(sessionStorage), l: localStorage.length, url: location.href }));
  check('the read token is in sessionStorage only, never localStorage or the URL',
    stored.s.length === 1 && stored.l === 0 && !stored.url.includes(READ), JSON.stringify({ s: stored.s, l: stored.l }));

  // the token goes wrong while data is shown (rotated): everything shown is dropped
  await openFinding(page, ids.hostile);
  await page.evaluate(() => { sessionStorage.setItem(Object.keys(sessionStorage)[0], 'rotated-token-0123456789abc'); });
  await page.evaluate(() => { location.hash = '#/'; });
  await page.waitForSelector('#auth', { state: 'visible' });
  check('a token refused mid-session: the page says so', /refused/.test(await page.textContent('#auth-why')));
  check('a token refused mid-session: no data left on the page', (await dataShown(page)) === 0 &&
    (await page.evaluate(() => document.getElementById('view').childNodes.length)) === 0);
  await page.close();

  // an instance with no read token configured: no question asked
  const open = await newPage(context);
  await open.goto(B + '/ui/');
  await open.waitForSelector('table.queue tbody tr');
  check('no read token configured: the page works without asking', await open.isHidden('#auth'));
  await open.close();
}

async function caseQueue(context) {
  const page = await newPage(context);
  await login(page, A);
  const api = await getA('/v1/findings?limit=25');
  const want = api.findings.map((f) => f.id);
  const got = await waitQueue(page, want);
  check('queue: exactly the findings GET /v1/findings returns, in its order (' + want.length + ')', same(got, want), JSON.stringify({ got, want }));
  const rows = await queueRows(page);
  const cells = api.findings.map((f) => [f.severity, f.status, workloadText(f), f.account_id, f.region || '\u2014', f.outside_sources[0] && f.outside_sources[0].ip]);
  const shown = rows.map((r) => [r[0], r[1].replace(/ \(explained\)$/, ''), r[2], r[3], r[4], r[6].replace(/ \+\d+ more$/, '')]);
  check('queue: severity as text, status, workload (a Lambda function by its name, "ECS task <id>" ...), account, region, outside address per row',
    same(shown, cells), JSON.stringify(shown.map((x, i) => [x, cells[i]]).filter(([a, b]) => !same(a, b)).slice(0, 2)));
  check('queue: the ECS and EC2 findings show their kind and id', rows.some((r) => r[2] === 'ECS task ' + ECS_TASK) &&
    rows.some((r) => r[2] === 'EC2 instance ' + EC2_INSTANCE), JSON.stringify(rows.map((r) => r[2])));
  const nets = rows.map((r) => r[7]);
  check('queue: the network class of the outside address', same(nets, api.findings.map((f) => f.outside_sources[0].network)));
  await page.screenshot({ path: path.join(SHOTS, 'queue.png') });

  // filters
  await page.selectOption('#f-severity', 'critical');
  await page.click('#f-apply');
  const crit = (await getA('/v1/findings?severity=critical&limit=25')).findings.map((f) => f.id);
  check('filter severity=critical: the API\'s ' + crit.length + ' findings', crit.length > 0 && same(await waitQueue(page, crit), crit));
  await page.selectOption('#f-severity', '');
  // the workload filter, through GET /v1/findings?workload=
  for (const [kind, more] of [['ecs', ''], ['lambda', ''], ['ec2', '&severity=critical']]) {
    await page.selectOption('#f-workload', kind);
    if (more) await page.selectOption('#f-severity', 'critical');
    await page.click('#f-apply');
    const wl = (await getA('/v1/findings?workload=' + kind + more + '&limit=25')).findings;
    const wids = wl.map((f) => f.id);
    const shownIds = await waitQueue(page, wids);
    const asked = seen.requests.filter((u) => u.includes('/v1/findings?')).pop() || '';
    check('filter workload=' + kind + more.replace('&', ' ') + ': the API\'s ' + wids.length + ' findings, all ' + kind + ', asked as ?workload=' + kind,
      wids.length > 0 && wids.length < want.length && wl.every((f) => f.workload.kind === kind) && same(shownIds, wids) &&
      asked.includes('workload=' + kind), JSON.stringify({ shownIds, wids, asked }));
  }
  await page.click('#f-clear');
  check('clear: the workload filter back to any', (await page.inputValue('#f-workload')) === '' && same(await waitQueue(page, want), want));
  await page.fill('#f-function', 'billing-fn');
  await page.fill('#f-account', '444455556666');
  await page.click('#f-apply');
  const fa = (await getA('/v1/findings?function=billing-fn&account=444455556666&limit=25')).findings.map((f) => f.id);
  const faShown = await waitQueue(page, fa);
  check('filter function and account: the API\'s ' + fa.length + ' findings', fa.length > 0 && same(faShown, fa),
    JSON.stringify({ faShown, fa, asked: seen.requests.filter((u) => u.includes('/v1/findings?')).pop() }));
  await page.click('#f-clear');
  await waitQueue(page, want);
  await page.fill('#f-until', '2020-01-01T00:00');
  await page.click('#f-apply');
  const old = (await getA('/v1/findings?until=2020-01-01T00:00:00Z&limit=25')).findings;
  await page.waitForFunction(() => /No findings match/.test((document.getElementById('queue-count') || {}).textContent || ''), null, { timeout: WAIT }).catch(() => {});
  check('filter created until 2020 (UTC): none, as the API says', old.length === 0 && (await queueIds(page)).length === 0 &&
    /No findings match/.test(await page.textContent('#queue-count')));
  await page.fill('#f-until', '');
  await page.fill('#f-since', '2020-01-01T00:00');
  await page.click('#f-apply');
  check('filter created since 2020 (UTC): all of them', same(await waitQueue(page, want), want));
  await page.click('#f-clear');
  await waitQueue(page, want);

  // paging with the cursor
  await page.selectOption('#f-limit', '10');
  await page.click('#f-apply');
  const p1 = await getA('/v1/findings?limit=10');
  check('page 1 of 10: the API\'s first page', same(await waitQueue(page, p1.findings.map((f) => f.id)), p1.findings.map((f) => f.id)));
  check('page 1: a next cursor, "Older" enabled, "Newer" disabled', typeof p1.next_cursor === 'string' &&
    await page.isEnabled('#page-next') && await page.isDisabled('#page-prev'));
  await page.click('#page-next');
  const p2 = await getA('/v1/findings?limit=10&cursor=' + encodeURIComponent(p1.next_cursor));
  const p2ids = p2.findings.map((f) => f.id);
  check('page 2: the API\'s page at next_cursor (' + p2ids.length + ')', p2ids.length > 0 && same(await waitQueue(page, p2ids), p2ids));
  check('page 2 is the last: "Older" disabled', p2.next_cursor === null && await page.isDisabled('#page-next'));
  await page.click('#page-prev');
  check('back to page 1', same(await waitQueue(page, p1.findings.map((f) => f.id)), p1.findings.map((f) => f.id)));
  await page.close();
}

async function caseRefresh(context) {
  // B needs no token; ?refresh=1 polls every second
  const page = await newPage(context);
  await page.goto(B + '/ui/?refresh=1');
  await page.waitForSelector('table.queue tbody tr');
  const before = await queueIds(page);
  const r = await ingest(newRecords(ROOT));
  const fresh = r.findings[0];
  await page.waitForFunction((id) => document.querySelector('table.queue tbody tr[data-id="' + id + '"]'), fresh, { timeout: WAIT }).catch(() => {});
  const after = await queueIds(page);
  check('auto refresh: a new finding appears at the top by itself', after[0] === fresh && after.length === before.length + 1, JSON.stringify(after.slice(0, 2)));
  check('auto refresh: "updated HH:MM:SS UTC" shown', /^updated \d\d:\d\d:\d\d UTC/.test(await page.textContent('#updated')));

  // paused while the triage form is being edited
  await openFinding(page, fresh);
  await page.fill('#note', 'half-typed');
  const patched = await http(B, 'PATCH', '/v1/findings/' + encodeURIComponent(fresh), { body: { status: 'suppressed' } });
  check('another analyst suppresses it through instance B', patched.status === 200 && patched.data.status === 'suppressed', String(patched.status));
  await sleep(2500);
  check('auto refresh pauses while a note is being typed', (await page.textContent('#triage .status')) === 'open' &&
    /paused/.test(await page.textContent('#updated')) && (await page.inputValue('#note')) === 'half-typed');
  await page.fill('#note', '');
  await page.focus('#view h1');
  await page.waitForFunction(() => document.querySelector('#triage .status').textContent === 'suppressed', null, { timeout: WAIT }).catch(() => {});
  check('auto refresh resumes after the edit: the other analyst\'s change shows', (await page.textContent('#triage .status')) === 'suppressed',
    JSON.stringify(await page.evaluate(() => ({ hidden: document.hidden, upd: document.getElementById('updated').textContent, act: document.activeElement.tagName, note: document.getElementById('note').value, st: document.querySelector('#triage .status').textContent }))));
  await page.close();
}

async function caseFinding(context) {
  const page = await newPage(context);
  await login(page, A);
  const id = ids.flood;
  await openFinding(page, id);
  const f = await getA('/v1/findings/' + encodeURIComponent(id));
  const k = await getA('/v1/keys/' + encodeURIComponent(f.access_key_id));
  const s = (await page.textContent('#summary')).trim();
  const src = f.outside_sources[0];
  const hh = f.first_outside_at.slice(11, 16);
  const succeeded = f.outside_sources.reduce((n, x) => n + x.succeeded, 0);
  const want = ['function ' + f.function_name, 'account ' + f.account_id, src.ip + ' (' + src.network + ')',
    f.outside_count + ' calls', succeeded + ' succeeded', 'first ' + hh + ' UTC'];
  check('finding: one-sentence summary from the document (' + s + ')', want.every((w) => s.includes(w)) && s.split('. ').length === 1,
    JSON.stringify(want.filter((w) => !s.includes(w))));
  const cli = await (async () => { await openFinding(page, ids.theft); return (await page.textContent('#summary')).trim(); })();
  check('finding: the summary names the client from the user agent (' + cli + ')', /aws-cli on macOS/.test(cli));
  // the platform token of CLI v1 and boto3 (the README's sample: "aws-cli/2.15.0 Python/3.11 Darwin/23.0")
  const forms = await page.evaluate(async () => {
    const m = await import('/ui/finding.js');
    return [m.clientOf('aws-cli/2.15.0 Python/3.11 Darwin/23.0'), m.clientOf('Boto3/1.34.0 Python/3.12 Linux/6.1'),
      m.clientOf('aws-cli/1.29.0 Python/3.11 Windows/10 botocore/1.31.0'), m.clientOf('curl/8.4.0'),
      m.clientOf('[aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 botocore/1.17.59]')];
  });
  check('finding: the client\'s platform from the Darwin/, Linux/, Windows/ token too, in brackets too (' + forms.join(' | ') + ')',
    forms[0] === 'aws-cli on macOS' && forms[1] === 'Boto3 on Linux' && forms[2] === 'aws-cli on Windows' && forms[3] === 'curl' &&
    forms[4] === 'aws-cli on macOS');
  await openFinding(page, id);

  const tl = await page.evaluate(() => {
    const svg = document.querySelector('svg.timeline');
    if (!svg) return null;
    return {
      ns: svg.namespaceURI, issued: svg.querySelectorAll('[data-kind=issued] line').length, expires: svg.querySelectorAll('[data-kind=expires]').length,
      outside: svg.querySelectorAll('[data-kind=outside]').length, inside: svg.querySelectorAll('[data-kind=inside]').length,
      lanes: svg.querySelectorAll('[data-lane=outside]').length,
      labels: [...svg.querySelectorAll('[data-lane=outside] .tl-label')].map((t) => t.textContent),
    };
  });
  check('finding: an SVG timeline (svg namespace)', tl && tl.ns === 'http://www.w3.org/2000/svg', JSON.stringify(tl));
  check('timeline: issuance and expiry marked', tl && tl.issued === 1 && tl.expires === 1, JSON.stringify(tl));
  check('timeline: one lane per outside address (' + f.outside_sources.length + '), a mark per use',
    tl && tl.lanes === f.outside_sources.length && tl.outside >= f.outside_sources.length &&
    same(tl.labels, f.outside_sources.map((x) => cut30(x.ip + ' (' + x.network + ')'))), JSON.stringify(tl));
  check('timeline: the inside uses of the key (' + k.inside.count + ')', k.inside.count > 0 && tl && tl.inside >= 1, JSON.stringify(tl));

  const reasons = await page.$$eval('ul.reasons li', (li) => li.map((l) => l.textContent));
  check('finding: every reason with its text', same(reasons, f.reasons.map((r) => r.code + ' ' + r.text)), JSON.stringify(reasons));
  const addr = await page.$$eval('table.outside-sources tbody tr', (rows) => rows.map((r) => [r.cells[0].textContent, r.cells[1].textContent, r.cells[3].textContent]));
  check('finding: outside addresses with network class and calls', same(addr, f.outside_sources.map((x) => [x.ip, x.network, String(x.count)])), JSON.stringify(addr[0]));
  const body = await page.textContent('article.finding');
  check('finding: user agent, action, outcome, inside addresses, ATT&CK, actions',
    body.includes(f.last_outside_use.user_agent) && body.includes(f.last_outside_use.action) && body.includes(f.last_outside_use.outcome) &&
    f.inside_source_ips.every((ip) => body.includes(ip)) && f.attack.every((t) => body.includes(t.id) && body.includes(t.name)) &&
    f.outside_actions.every((a) => body.includes(a)));
  await page.screenshot({ path: path.join(SHOTS, 'finding.png') });
  await page.close();
}

// the facts list of the page (dt -> dd text)
const facts = (page, sel) => page.$$eval(sel + ' dl.facts dt', (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));

async function caseWorkloads(context) {
  const page = await newPage(context);
  await login(page, A);
  // an ECS task's finding: its kind and id where a Lambda finding names its function, the rules used
  await openFinding(page, ids.ecs);
  const s = (await page.textContent('#summary')).trim();
  check('workload: the summary names the ECS task (' + s + ')', s.startsWith('Key of ECS task ' + ECS_TASK + ' in account 111122223333 used from 198.51.100.7'), s);
  let fx = await facts(page, 'article.finding');
  check('workload: the key facts show "ECS task <id>", no function, full rules', fx.Workload === 'ECS task ' + ECS_TASK &&
    !('Function' in fx) && /^full every rule/.test(fx['Verdict rules'] || ''), JSON.stringify(fx));
  check('workload: inside calls are the task\'s', /from inside the task/.test(await page.textContent('article.finding')));
  // an EC2 key known only from ec2RoleDelivery: outside-AWS rules
  await openFinding(page, ids.ec2);
  fx = await facts(page, 'article.finding');
  check('workload: an EC2 key without issuance shows outside_aws rules', fx.Workload === 'EC2 instance ' + EC2_INSTANCE &&
    /^outside_aws outside-AWS rules only/.test(fx['Verdict rules'] || ''), JSON.stringify(fx));
  // a Lambda finding reads as before: "Function", no workload or rules row
  await openFinding(page, ids.theft);
  fx = await facts(page, 'article.finding');
  check('workload: a Lambda finding still shows its function, no workload row', fx.Function === 'billing-fn' || fx.Function === 'orders-fn' || fx.Function === 'etl-fn'
    ? !('Workload' in fx) && !('Verdict rules' in fx) : false, JSON.stringify(fx));
  // key lookup: workload, rules, the not-judged tally
  const k = await getA('/v1/keys/ASIAQEXAMPLEEC2BR001');
  await page.evaluate(() => { location.hash = '#/key/ASIAQEXAMPLEEC2BR001'; });
  await page.waitForSelector('.key[data-id="ASIAQEXAMPLEEC2BR001"] tr[data-tally=not_judged]');
  fx = await facts(page, '.key');
  const nj = await page.$$eval('tr[data-tally=not_judged] td', (td) => td.map((c) => c.textContent));
  const out = await page.$$eval('tr[data-tally=outside] td', (td) => td.map((c) => c.textContent));
  check('key lookup: the workload and outside_aws rules of an EC2 key', fx.Workload === 'EC2 instance ' + EC2_INSTANCE &&
    /^outside_aws /.test(fx['Verdict rules'] || '') && k.verdict_rules === 'outside_aws', JSON.stringify(fx));
  check('key lookup: not judged (outside-AWS rules) counts the private address, as the API (' + nj.join(' | ') + ')',
    k.not_judged.count === 1 && nj[0] === '1' && nj[3] === '10.1.2.3' && out[3] === '198.51.100.8', JSON.stringify({ nj, out, api: k.not_judged }));
  const lk = (await getA('/v1/findings/' + encodeURIComponent(ids.theft))).access_key_id;
  await page.evaluate((a) => { location.hash = '#/key/' + a; }, lk);
  await page.waitForSelector('.key[data-id="' + lk + '"]');
  fx = await facts(page, '.key');
  check('key lookup: a Lambda key: its function, full rules', /^Lambda function \S+-fn \(issuance seen\)/.test(fx.Workload || '') &&
    /^full /.test(fx['Verdict rules'] || ''), JSON.stringify(fx));
  // a hostile task id (a forged issuance's session name) is text in the queue and the finding
  await openFinding(page, ids.hostile_ecs);
  const txt = await page.evaluate(() => document.body.innerText);
  const imgs = await page.evaluate(() => document.querySelectorAll('img, script:not([src])').length);
  check('hostile task id: shown literally in the finding, no element made of it', txt.includes('ECS task ' + IMG) && imgs === 0);
  await page.evaluate(() => { location.hash = '#/'; });
  await page.waitForSelector('table.queue tbody tr[data-id="' + ids.hostile_ecs + '"]');
  check('hostile task id: shown literally in the queue', (await page.textContent('table.queue tbody tr[data-id="' + ids.hostile_ecs + '"] td:nth-child(3)')) === 'ECS task ' + IMG);
  await page.screenshot({ path: path.join(SHOTS, 'workloads.png') });
  await page.close();
}

async function caseTriage(context) {
  const page = await newPage(context);
  await login(page, A);
  const id = ids.theft;
  await openFinding(page, id);
  const note = 'paging the owner of orders; rotated the role';
  await page.fill('#note', note);
  await page.click('#t-acknowledged');
  await page.waitForFunction(() => document.querySelector('#triage .status').textContent === 'acknowledged');
  check('triage: the page shows the change at once (re-read)', (await page.textContent('#current-note')).includes(note) &&
    /Status set to acknowledged/.test(await page.textContent('#msg')));
  const onB = await http(B, 'GET', '/v1/findings/' + encodeURIComponent(id));
  check('triage: acknowledged with the note, as GET /v1/findings/{id} on the second instance sees it',
    onB.status === 200 && onB.data.status === 'acknowledged' && onB.data.note === note, JSON.stringify({ s: onB.data.status, n: onB.data.note }));
  check('triage: the queue shows the new status', await (async () => {
    await page.evaluate(() => { location.hash = '#/'; });
    await page.waitForSelector('table.queue tbody tr');
    return (await page.textContent('table.queue tbody tr[data-id="' + id + '"] td:nth-child(2)')).startsWith('acknowledged');
  })());
  await openFinding(page, id);
  await page.click('#t-open');
  await page.waitForFunction(() => document.querySelector('#triage .status').textContent === 'open');
  check('triage: reopen', (await http(B, 'GET', '/v1/findings/' + encodeURIComponent(id))).data.status === 'open');
  await page.close();
}

async function caseHostile(context) {
  const page = await newPage(context);
  await login(page, A);
  const id = ids.hostile;
  await openFinding(page, id);
  const note = 'note ' + IMG + ' ' + SCRIPT_END + ' ' + JS_URL;
  await page.fill('#note', note);
  await page.click('#t-note');
  await page.waitForFunction((n) => document.getElementById('current-note').textContent.includes(n), note);
  const f = await getA('/v1/findings/' + encodeURIComponent(id));
  check('hostile: the finding carries the strings (function, account, address, user agent, note)',
    f.function_name === HOSTILE.session && f.account_id === HOSTILE.account && f.outside_source_ips.includes(HOSTILE.ip) &&
    f.last_outside_use.user_agent === HOSTILE.ua && f.note === note, JSON.stringify(f).slice(0, 400));
  const txt = await page.evaluate(() => document.body.innerText);
  for (const [what, s] of [['the function name', HOSTILE.session], ['the account', HOSTILE.account], ['the address', HOSTILE.ip], ['the user agent', HOSTILE.ua], ['the note', note]]) {
    check('hostile: ' + what + ' shown literally as text', txt.includes(s));
  }
  const summary = await page.textContent('#summary');
  check('hostile: the summary shows them as text', summary.includes(IMG) && summary.includes(SCRIPT_END) && summary.includes(JS_URL), summary);
  const dom = await page.evaluate(() => ({
    img: document.querySelectorAll('img, iframe, object, embed, base').length,
    scripts: [...document.scripts].map((s) => s.getAttribute('src')),
    hrefs: [...document.querySelectorAll('[href]')].map((a) => a.getAttribute('href')).filter((h) => !/^#\/[a-z]*(\/[A-Za-z0-9%._~-]*)?$/.test(h) && h !== 'app.css' && h !== 'favicon.svg'),
    handlers: [...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => /^on/i.test(a.name) || a.name === 'style')).length,
  }));
  check('hostile: no element made from the data (no img, no script but app.js, only hash links, no handlers)',
    dom.img === 0 && same(dom.scripts, ['app.js']) && dom.hrefs.length === 0 && dom.handlers === 0, JSON.stringify(dom));
  await page.evaluate(() => { location.hash = '#/'; });
  await page.waitForSelector('table.queue tbody tr');
  const row = await page.textContent('table.queue tbody tr[data-id="' + id + '"]');
  check('hostile: the queue row shows the function name and account as text', row.includes(HOSTILE.session) && row.includes(HOSTILE.account) && row.includes(HOSTILE.ip));
  await page.evaluate((a) => { location.hash = '#/key/' + a; }, f.access_key_id);
  await page.waitForSelector('#key-finding');
  check('hostile: the key lookup shows them as text', (await page.evaluate(() => document.body.innerText)).includes(HOSTILE.session));
  await sleep(300);
  await page.close();
}

async function caseKeyboard(context) {
  const page = await newPage(context);
  await login(page, A);
  const first = (await queueIds(page))[0];
  await page.evaluate(() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); });
  const path_ = [];
  let reachedRow = null;
  for (let i = 0; i < 40 && !reachedRow; i += 1) {
    await page.keyboard.press('Tab');
    const a = await page.evaluate(() => {
      const e = document.activeElement;
      const tr = e && e.closest && e.closest('table.queue tbody tr');
      return { id: e.id || e.tagName, row: tr && e.tagName === 'A' ? tr.getAttribute('data-id') : null, outline: getComputedStyle(e).outlineStyle };
    });
    path_.push(a.id);
    if (a.row) reachedRow = a;
  }
  const filters = ['f-status', 'f-severity', 'f-workload', 'f-account', 'f-function', 'f-apply'];
  check('keyboard: Tab reaches every filter control', filters.every((f) => path_.includes(f)), path_.join(' '));
  check('keyboard: Tab reaches a finding row, with a visible focus outline', reachedRow && reachedRow.row === first && reachedRow.outline !== 'none', JSON.stringify(reachedRow));
  await page.keyboard.press('Enter');
  await page.waitForFunction((i) => document.querySelector('article.finding[data-id="' + i + '"] #summary'), first).catch(() => {});
  check('keyboard: Enter opens the finding', decodeURIComponent(await page.evaluate(() => location.hash)) === '#/finding/' + first &&
    await page.isVisible('#summary'));
  // and the triage buttons are real buttons reachable by Tab
  const kinds = await page.$$eval('#triage button', (b) => b.map((x) => x.tagName + ':' + x.type));
  check('keyboard: triage actions are buttons', kinds.length === 5 && kinds.every((k) => k === 'BUTTON:button'), kinds.join(' '));
  await page.close();
}

async function caseNarrow(context) {
  const page = await newPage(context, { width: 390, height: 844 });
  await login(page, A);
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check('390 px: the queue does not widen the page', (await overflow()) <= 0, String(await overflow()));
  const wrap = await page.$eval('.table-wrap', (w) => ({ ox: getComputedStyle(w).overflowX, sw: w.scrollWidth, cw: w.clientWidth, right: w.getBoundingClientRect().right }));
  check('390 px: the table scrolls inside its container', wrap.ox === 'auto' && wrap.right <= 390, JSON.stringify(wrap));
  const boxes = await page.$$eval('#filters select, #filters input, #filters button', (els) => els.map((e) => { const r = e.getBoundingClientRect(); return [r.left, r.right]; }));
  check('390 px: every filter control within the screen', boxes.every(([l, r]) => l >= 0 && r <= 390), JSON.stringify(boxes));
  const id = (await queueIds(page))[0];
  await page.click('table.queue tbody tr[data-id="' + id + '"] a');
  await page.waitForSelector('#summary');
  check('390 px: a finding opens from the queue by tapping its row link', decodeURIComponent(await page.evaluate(() => location.hash)) === '#/finding/' + id);
  check('390 px: the finding does not widen the page', (await overflow()) <= 0, String(await overflow()));
  const tb = await page.$$eval('#triage button, #note, .tl-scroll', (els) => els.map((e) => e.getBoundingClientRect().right));
  const tls = await page.$eval('.tl-scroll', (e) => getComputedStyle(e).overflowX);
  check('390 px: triage controls fit the screen, the timeline scrolls inside its box', tb.length === 7 && tb.every((r) => r <= 390) && tls === 'auto',
    JSON.stringify({ tb, tls }));
  await page.screenshot({ path: path.join(SHOTS, 'finding-390.png'), fullPage: true });
  await page.close();
}

async function caseKeyLookup(context) {
  const page = await newPage(context);
  await login(page, A);
  await page.evaluate(() => { location.hash = '#/key'; });
  await page.waitForSelector('#akid');
  const k = await getA('/v1/findings/' + encodeURIComponent(ids.theft));
  await page.fill('#akid', k.access_key_id);
  await page.press('#akid', 'Enter');
  await page.waitForSelector('#key-finding a');
  check('key lookup: the key\'s context and its finding', (await page.textContent('#key-finding a')) === ids.theft &&
    decodeURIComponent(await page.evaluate(() => location.hash)) === '#/key/' + k.access_key_id &&
    (await page.$$('svg.timeline [data-kind=outside]')).length > 0);
  await page.screenshot({ path: path.join(SHOTS, 'key.png') });
  await page.fill('#akid', 'ASIAQEXAMPLEKEY99999');
  await page.press('#akid', 'Enter');
  await page.waitForFunction(() => /knows nothing/.test((document.getElementById('key-finding') || {}).textContent || ''));
  check('key lookup: an unknown key says so', true);
  await page.close();
}

// A's sink "hook" posts to B's /v1/refused, a 404: every event is refused for good, a dead letter.
async function caseSinks(context) {
  const page = await newPage(context);
  await login(page, A);
  const deadOnPage = () => page.$$eval('section.sink[data-sink="hook"] table.dead-letters tbody tr', (rs) => rs.map((r) => r.getAttribute('data-entry')));
  const deadInApi = async () => (await getA('/v1/sinks/hook/dead-letters?limit=50')).dead_letters.map((d) => d.entry);
  for (let i = 0; i < 50 && (await deadInApi()).length < 3; i += 1) await sleep(200);
  let shown = [];
  let api = [];
  for (let i = 0; i < 3; i += 1) { // events may still be arriving: compare a settled pair
    await page.evaluate(() => { location.hash = '#/findings'; });
    await page.evaluate(() => { location.hash = '#/sinks'; });
    await page.waitForSelector('section.sink[data-sink="hook"] table.dead-letters tbody tr');
    shown = await deadOnPage();
    api = await deadInApi();
    if (same(shown, api)) break;
    await sleep(500);
  }
  check('sinks: the sink and its dead letters, as GET /v1/sinks/hook/dead-letters lists them (' + api.length + ')', api.length >= 3 && same(shown, api), JSON.stringify({ shown: shown.length, api: api.length }));
  const reason = await page.textContent('section.sink[data-sink="hook"] table.dead-letters tbody tr td:nth-child(6)');
  check('sinks: a dead letter shows the reason and links its finding', /404/.test(reason) &&
    (await page.$$('section.sink[data-sink="hook"] table.dead-letters tbody tr a[href^="#/finding/cwf-"]')).length === shown.length, reason);
  await page.screenshot({ path: path.join(SHOTS, 'sinks.png') });
  const entry = shown[0];
  await page.click('section.sink[data-sink="hook"] tr[data-entry="' + entry + '"] button');
  await page.waitForFunction(() => /Sent 1 dead letter\(s\) of hook again/.test(document.getElementById('msg').textContent));
  await page.waitForFunction((e) => !document.querySelector('section.sink[data-sink="hook"] tr[data-entry="' + e + '"]'), entry).catch(() => {});
  check('sinks: retry one: sent again, gone from the list on the page and in the API',
    !(await deadOnPage()).includes(entry) && !(await deadInApi()).includes(entry));
  const before = (await getA('/v1/sinks')).sinks[0].queue.dead;
  await page.evaluate(() => { document.getElementById('msg').textContent = ''; });
  await page.click('section.sink[data-sink="hook"] button:has-text("Retry all dead letters")');
  await page.waitForFunction(() => /Sent \d+ dead letter\(s\) of hook again/.test(document.getElementById('msg').textContent));
  const n = Number(/Sent (\d+)/.exec(await page.textContent('#msg'))[1]);
  check('sinks: retry all sends every dead letter again (' + n + ' of ' + before + ')', n >= before && n > 0, String(n));
  await page.close();
}

async function caseHeaders() {
  // every page response the browser got carried the CSP, and so does every file fetched directly
  const bad = seen.uiResponses.filter((r) => r.status !== 302 && !(r.csp.includes("default-src 'none'") && r.csp.includes("script-src 'self'") && !r.csp.includes('unsafe')));
  const files = new Set(seen.uiResponses.map((r) => new URL(r.url).pathname));
  check('CSP on every page response the browser received (' + [...files].join(' ') + ')',
    bad.length === 0 && ['/ui/', '/ui/app.css', '/ui/app.js', '/ui/finding.js'].every((p) => files.has(p)), JSON.stringify(bad.slice(0, 3)));
  for (const p of ['/ui/', '/ui/index.html', '/ui/app.css', '/ui/app.js']) {
    const r = await fetch(A + p, { signal: AbortSignal.timeout(WAIT) });
    const csp = r.headers.get('content-security-policy') || '';
    check('CSP header on GET ' + p, r.status === 200 && csp.includes("default-src 'none'") && csp.includes("script-src 'self'") && csp.includes("frame-ancestors 'none'"), csp);
  }
}

async function timed(name, fn) {
  const t0 = Date.now();
  let timer;
  try {
    await Promise.race([fn(), new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('over ' + CASE_LIMIT / 1000 + ' s')), CASE_LIMIT); })]);
  } catch (e) {
    nok(name + ' ran to the end', e && e.message);
  } finally {
    clearTimeout(timer);
    console.log('# ' + name + ': ' + ((Date.now() - t0) / 1000).toFixed(1) + ' s');
  }
}

// ---- CORS, in the browser: a dashboard on another origin calls instance A's read API ----
// Two other origins, each a python3 http.server on loopback started by it_browser.sh with an empty
// page: DASH is in A's CREDWATCH_CORS_ORIGINS, EVIL is not. Real servers on loopback, because Chromium
// refuses a request to a loopback address from a page it cannot place there (Private / Local Network
// Access) before CORS is even asked. Their pages have no CSP of their own, so only CORS decides. Every
// other request goes to loopback (A) or is aborted. Its own browser context: the main context's
// "nothing leaves the two instances" check stays exact.
const DASH = need('CW_DASH');
const EVIL = need('CW_EVIL');
async function corsFetch(page, url, init) {
  return page.evaluate(async ([u, i]) => {
    try {
      const r = await fetch(u, i);
      return { status: r.status, body: await r.text() };
    } catch (e) {
      return { error: String(e) };
    }
  }, [url, init]);
}

async function caseCors(browser) {
  // No context.route here: with request interception on, Playwright answers CORS preflights itself,
  // and the server's own answer would never be tested (a first version of this case let an ingest
  // POST through that way). Requests are only watched; the Chromium flags keep it off the network.
  const context = await browser.newContext({ serviceWorkers: 'block' });
  context.setDefaultTimeout(WAIT);
  const stray = [];
  context.on('request', (req) => {
    const u = req.url();
    if (!(u.startsWith(DASH + '/') || u.startsWith(EVIL + '/') || u.startsWith(A + '/'))) stray.push(u);
  });
  try {
    const page = await context.newPage();
    const consoleLines = [];
    page.on('console', (m) => consoleLines.push(m.text()));
    const list = (await getA('/v1/findings?limit=100')).findings.map((f) => f.id);
    const read = { headers: { Authorization: 'Bearer ' + READ, 'X-Requested-With': 'XMLHttpRequest' } };
    await page.goto(DASH + '/');
    const got = await corsFetch(page, A + '/v1/findings?limit=100', read);
    let ids = [];
    try { ids = JSON.parse(got.body).findings.map((f) => f.id); } catch (e) { ids = null; }
    check('cors: the listed origin reads GET /v1/findings (a preflight, then the answer): ' + (ids ? ids.length : 0) + ' findings',
      got.status === 200 && same(ids, list), JSON.stringify(got).slice(0, 300) + ' console: ' + consoleLines.join(' | ').slice(0, 600));
    const patch = await corsFetch(page, A + '/v1/findings/' + encodeURIComponent(list[0]), {
      method: 'PATCH', headers: { ...read.headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ note: 'from the dashboard' }),
    });
    check('cors: the listed origin may PATCH a finding', patch.status === 200 && /from the dashboard/.test(patch.body || ''),
      JSON.stringify(patch).slice(0, 300));
    const beforeIds = (await getA('/v1/findings?limit=100')).findings.map((f) => f.id);
    const before = beforeIds.length;
    const recs = corsRecords(ROOT);
    const post = await corsFetch(page, A + '/v1/ingest/cloudtrail', {
      method: 'POST', headers: { Authorization: 'Bearer ' + INGEST, 'Content-Type': 'application/json' },
      body: JSON.stringify({ Records: recs }),
    });
    await sleep(300);  /* had the POST gone through, its finding would be listed by now */
    const afterList = (await getA('/v1/findings?limit=100')).findings;
    const after = afterList.length;
    const added = afterList.filter((f) => !beforeIds.includes(f.id)).map((f) => f.id + ' ' + f.function_name + ' ' + f.created_at);
    check('cors: an ingest route is refused to the listed origin too (the browser blocks it; nothing stored)',
      Boolean(post.error) && after === before, JSON.stringify(post).slice(0, 300) + ' findings before ' + before + ', after ' + after + ' ' + added.join(','));
    await page.goto(EVIL + '/');
    const evil = await corsFetch(page, A + '/v1/findings?limit=1', read);
    check('cors: another origin cannot read the API (the browser blocks the answer)', Boolean(evil.error), JSON.stringify(evil).slice(0, 300));
    const simple = await corsFetch(page, A + '/v1/findings?limit=1', {});
    check('cors: another origin cannot read even a request without credentials', Boolean(simple.error), JSON.stringify(simple).slice(0, 300));
    check('cors: no request left for a third origin', stray.length === 0, stray.join(' '));
  } finally {
    await context.close();
  }
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  await timed('fixtures', loadFixtures);
  let chrome;
  try {
    chrome = await launch();
  } catch (e) {
    nok('chromium starts (' + CHROMIUM + ')', e.message);
    return;
  }
  ok('chromium starts: ' + chrome.browser.version());
  try {
    const context = await chrome.browser.newContext({ viewport: { width: 1280, height: 800 }, serviceWorkers: 'block' });
    await watch(context);
    await timed('wrong or missing token', () => caseAuth(context));
    await timed('queue, filters, paging', () => caseQueue(context));
    await timed('finding', () => caseFinding(context));
    await timed('workloads', () => caseWorkloads(context));
    await timed('triage', () => caseTriage(context));
    await timed('hostile strings', () => caseHostile(context));
    await timed('keyboard', () => caseKeyboard(context));
    await timed('narrow screen', () => caseNarrow(context));
    await timed('key lookup', () => caseKeyLookup(context));
    await timed('sinks and dead letters', () => caseSinks(context));
    await timed('auto refresh', () => caseRefresh(context));
    await timed('headers', caseHeaders);
    await timed('cors', () => caseCors(chrome.browser));
    check('no dialog opened', seen.dialogs.length === 0, seen.dialogs.join(' | '));
    check('the page\'s 401s challenge Bearer only (no browser login dialog): ' + [...new Set(seen.challenges)].join(', '),
      seen.challenges.length > 0 && seen.challenges.every((c) => /^Bearer /.test(c)), seen.challenges.join(' | '));
    check('no request left for another origin (' + seen.requests.length + ' requests, all to ' + ORIGINS.join(' or ') + ')',
      seen.offOrigin.length === 0 && seen.requests.every((u) => ORIGINS.some((o) => u.startsWith(o))), seen.offOrigin.concat(seen.requests.filter((u) => !ORIGINS.some((o) => u.startsWith(o)))).join(' '));
    check('no request URL carries the read token', seen.requests.every((u) => !u.includes(READ)));
    check('no script error on the page', seen.pageErrors.length === 0, seen.pageErrors.join(' | '));
    check('no Content-Security-Policy violation', seen.cspViolations.length === 0, seen.cspViolations.join(' | '));
    await context.close();
  } finally {
    await chrome.browser.close().catch(() => {});
    stop(chrome.child);
  }
  if (DOCS_PNG) {
    fs.copyFileSync(path.join(SHOTS, 'finding.png'), DOCS_PNG);
    console.log('# wrote ' + DOCS_PNG);
  }
}

main().then(() => {
  console.log('# screenshots in ' + SHOTS);
  process.exit(failures ? 1 : 0);
}, (e) => {
  nok('the browser test ran', e && e.stack);
  process.exit(1);
});
