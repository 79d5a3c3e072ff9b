// finding.js: one finding. A one-sentence summary made only of fields the document has, the timeline, the
// evidence (reasons, outside addresses with their network class, first and last outside use with user agent,
// action and outcome, actions, inside addresses, ATT&CK), and triage through PATCH /v1/findings/{id}.
import { api, ApiError, AuthError } from './api.js';
import { dash, day, dl, el, hhmm, link, ms, say, sevBadge, statusBadge, table, text, warn, when, workloadOf, workloadWords } from './dom.js';
import { lanesOf, timeline } from './timeline.js';

const NOTE_MAX_BYTES = 1024;
const ACTIONS = [['acknowledged', 'Acknowledge'], ['resolved', 'Resolve'], ['suppressed', 'Suppress'], ['open', 'Reopen']];
let loadedNote = null;

// The triage form is being edited: its note differs from the stored one, or has the focus.
export function isEditing() {
  const n = document.getElementById('note');
  return Boolean(n) && (document.activeElement === n || n.value !== loadedNote);
}

const OS = { macos: 'macOS', windows: 'Windows', linux: 'Linux', android: 'Android', ios: 'iOS' };

// "aws-cli on macOS" from "aws-cli/2.15.0 ... os/macos#23.2.0 ..." (AWS CLI v2, the SDKs' os/ field) or from
// "aws-cli/1.29.0 Python/3.11 Darwin/23.0 ..." (the platform token of CLI v1 and boto3); the first product
// token otherwise. "[aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 ...]" (some CloudTrail records) reads the same.
const PLATFORM = { darwin: 'macos', linux: 'linux', windows: 'windows', windows_nt: 'windows' };
export function clientOf(ua) {
  if (!ua) return null;
  const s = String(ua).replace(/^\[(.*)\]$/, '$1'); // CloudTrail writes some agents in brackets
  const m = /^([A-Za-z][\w.-]{0,39})\/[^\s/]/.exec(s);
  if (!m) return 'user agent \u201c' + (s.length > 48 ? s.slice(0, 47) + '\u2026' : s) + '\u201d';
  const os = /\bos\/(macos|windows|linux|android|ios)\b/i.exec(s);
  const plat = os ? null : /(?:^|\s)(Darwin|Linux|Windows|Windows_NT)\/[\w.-]/.exec(s);
  const name = os ? os[1].toLowerCase() : plat ? PLATFORM[plat[1].toLowerCase()] : '';
  return m[1] + (name ? ' on ' + OS[name] : '') + (/exec-env\/AWS_Lambda_/.test(s) ? ' with the Lambda runtime marker' : '');
}

const plural = (n, one, many) => n + ' ' + (n === 1 ? one : many);

export function summary(f) {
  const srcs = Array.isArray(f.outside_sources) ? f.outside_sources : [];
  const w = workloadOf(f);
  const who = 'Key ' + (w.kind === 'lambda' ? (w.id ? 'of function ' + w.id : 'of an unnamed function')
    : w.id ? 'of ' + w.what + ' ' + w.id : 'of an unnamed ' + w.what) + (f.account_id ? ' in account ' + f.account_id : '');
  const parts = [];
  const top = srcs[0];
  if (top) {
    const others = srcs.length - 1;
    parts.push(who + ' used from ' + top.ip + ' (' + top.network + ')' +
      (others > 0 ? ' and ' + plural(others, 'other address', 'other addresses') : ''));
  } else {
    parts.push(who + ' used from outside its ' + w.noun);
  }
  const uses = [f.last_outside_use, f.first_outside_use].filter((u) => u && typeof u === 'object');
  const use = uses.find((u) => top && u.source_ip === top.ip) || uses[0];
  const client = use ? clientOf(use.user_agent) : null;
  if (client) parts.push(client);
  if (typeof f.outside_count === 'number') {
    let calls = plural(f.outside_count, 'call', 'calls');
    if (srcs.length) calls += ', ' + srcs.reduce((n, s) => n + (Number(s.succeeded) || 0), 0) + ' succeeded';
    parts.push(calls);
  }
  const first = ms(f.first_outside_at);
  if (first !== null) parts.push('first ' + hhmm(first) + ' UTC on ' + day(first));
  return parts.join(', ') + '.';
}

function utf8Bytes(s) {
  return new TextEncoder().encode(s).length;
}

function triage(f, ctx) {
  const note = el('textarea', { id: 'note', name: 'note', rows: 3, maxlength: NOTE_MAX_BYTES, spellcheck: 'true' });
  note.value = f.note || '';
  loadedNote = note.value;
  const buttons = ACTIONS.map(([status, label]) =>
    el('button', { type: 'button', id: 't-' + status, 'data-status': status, disabled: f.status === status }, label));
  const saveNote = el('button', { type: 'button', id: 't-note', class: 'quiet' }, 'Save note only');
  const form = el('form', { id: 'triage', class: 'triage', 'aria-label': 'Triage' },
    el('p', null, 'Status: ', statusBadge(f.status), ' \u00b7 last change ', when(f.updated_at)),
    el('p', { id: 'current-note' }, 'Note: ', f.note ? el('q', { class: 'note-text' }, f.note) : 'none'),
    el('label', { for: 'note' }, 'Note (sent with the next change; at most 1024 bytes)'),
    note,
    el('div', { class: 'buttons' }, buttons, saveNote),
    el('p', { class: 'hint' }, 'The API keeps the current status and note, not their history. Every instance sees a change at once.'));
  const send = async (body, button) => {
    if (utf8Bytes(note.value) > NOTE_MAX_BYTES) { warn('The note is longer than 1024 bytes.'); return; }
    for (const b of form.querySelectorAll('button')) b.disabled = true;
    try {
      const { data } = await api('PATCH', '/v1/findings/' + encodeURIComponent(f.id), body);
      loadedNote = note.value;
      say(body.status ? 'Status set to ' + (data && data.status ? data.status : body.status) + '.' : 'Note saved.');
      await ctx.reload();
    } catch (e) {
      if (e instanceof AuthError) return;
      warn('The change was not saved: ' + e.message);
      for (const b of form.querySelectorAll('button')) b.disabled = b.getAttribute('data-status') === f.status;
      button.focus();
    }
  };
  for (const b of buttons) b.addEventListener('click', () => send({ status: b.getAttribute('data-status'), note: note.value }, b));
  saveNote.addEventListener('click', () => send({ note: note.value }, saveNote));
  form.addEventListener('submit', (ev) => ev.preventDefault());
  return form;
}

export function sourcesTable(sources, id) {
  return table(id, ['Address', 'Network', 'Why outside', 'Calls', 'Succeeded', 'First', 'Last', 'VPC endpoint account'],
    sources.map((s) => el('tr', null,
      el('td', { class: 'mono wrap' }, text(s.ip)), el('td', { class: 'mono wrap' }, text(s.network)),
      el('td', null, text(s.why)), el('td', { class: 'num' }, text(s.count)), el('td', { class: 'num' }, text(s.succeeded)),
      el('td', null, when(s.first_at)), el('td', null, when(s.last_at)), el('td', { class: 'mono' }, text(s.vpc_endpoint_account)))));
}

function usesTable(f) {
  const rows = [];
  const seen = new Set();
  for (const [word, u] of [['first', f.first_outside_use], ['last', f.last_outside_use]]) {
    if (!u || typeof u !== 'object' || seen.has(u.event_id)) continue;
    seen.add(u.event_id);
    rows.push(el('tr', null, el('th', { scope: 'row' }, word), el('td', null, when(u.at)), el('td', { class: 'mono wrap' }, text(u.source_ip)),
      el('td', { class: 'mono wrap' }, text(u.action)), el('td', null, text(u.outcome)), el('td', { class: 'mono wrap ua' }, text(u.user_agent)),
      el('td', { class: 'mono wrap' }, text(u.event_id))));
  }
  return rows.length ? table('uses', ['Use', 'Time', 'Address', 'Action', 'Outcome', 'User agent', 'CloudTrail event id'], rows) : el('p', null, dash);
}

const section = (title, ...kids) => el('section', { class: 'block' }, el('h2', null, title), ...kids);
const list = (items, cls) => (items.length ? el('ul', { class: cls || 'plain' }, items.map((i) => el('li', null, i))) : el('p', null, 'none'));

function insideBlock(f, k) {
  const ips = Array.isArray(f.inside_source_ips) ? f.inside_source_ips : [];
  const times = k && k.inside && k.inside.count > 0 ? ' between ' + when(k.inside.first_at) + ' and ' + when(k.inside.last_at) : '';
  return [el('p', null, plural(f.inside_count || 0, 'call', 'calls') + ' from inside the ' + workloadOf(f).noun + times + '.'),
    list(ips.map((ip) => el('span', { class: 'mono' }, ip)))];
}

// The rules a key was judged by (KeyContext.verdict_rules), in words.
export const RULES = {
  full: 'every rule: the key\'s issuance or the Lambda runtime marker was seen, so its own network and region are known',
  outside_aws: 'outside-AWS rules only: its issuance was not seen, so only external addresses and foreign VPC endpoints are judged; AWS and private addresses are counted as not judged',
  none: 'none: no workload evidence yet, its calls are not judged',
};
export const rulesOf = (k) => [el('code', null, text(k.verdict_rules)), ' ', RULES[k.verdict_rules] || ''];

// A second issuance record: a Lambda one names its function; another workload its kind and id.
const issuer = (ci) => (ci.kind && ci.kind !== 'lambda' ? workloadWords(ci.kind) + ' ' + text(ci.workload_id) : 'function ' + text(ci.function_name));

function keyFacts(f, k, kerr) {
  const ci = f.conflicting_issuance;
  const w = workloadOf(f);
  return dl([
    ['Access key', link('key', f.access_key_id, f.access_key_id)],
    w.kind === 'lambda' ? ['Function', text(f.function_name)] : ['Workload', w.what + ' ' + text(w.id)],
    w.kind !== 'lambda' && k ? ['Verdict rules', rulesOf(k)] : null,
    ['Account', text(f.account_id)], ['Region', text(f.region)],
    ['Role', text(f.role_arn)], ['Runtime', text(f.runtime)],
    ['Issued', when(f.issued_at)], ['Issuance event', text(f.issued_by_event_id)], ['Expires', when(f.expires_at)],
    ['Finding created', when(f.created_at)], ['Finding updated', when(f.updated_at)],
    ['Calls not kept (evidence truncated)', text(f.evicted_count)],
    ['Second issuance record', ci ? 'event ' + text(ci.event_id) + ' at ' + when(ci.issued_at) + ': ' + issuer(ci) +
      ', account ' + text(ci.account_id) + ', region ' + text(ci.region) + ' (' + ci.records + ' records)' : 'none'],
    ['Key context', k ? 'loaded' : 'not available: ' + kerr],
  ]);
}

function render(f, k, kerr, ctx) {
  const reasons = Array.isArray(f.reasons) ? f.reasons : [];
  const attack = Array.isArray(f.attack) ? f.attack : [];
  const actions = Array.isArray(f.outside_actions) ? f.outside_actions : [];
  const srcs = Array.isArray(f.outside_sources) ? f.outside_sources : [];
  return el('article', { class: 'finding', 'data-id': f.id },
    el('p', { class: 'crumbs' }, link('findings', null, '\u2190 All findings')),
    el('h1', null, 'Finding ', el('span', { class: 'mono' }, f.id)),
    el('p', { class: 'badges' }, sevBadge(f.severity), ' ', statusBadge(f.status), f.explained ? el('span', { class: 'explained' }, ' explained: later evidence explains every outside use') : null),
    el('p', { id: 'summary', class: 'summary' }, summary(f)),
    el('div', { class: 'cols' },
      el('aside', { class: 'side' }, section('Triage', triage(f, ctx)), section('The key', keyFacts(f, k, kerr))),
      el('div', { class: 'main' },
        section('Timeline', timeline(f, lanesOf(f, k))),
        section('Why it is a finding', reasons.length ? el('ul', { class: 'reasons' }, reasons.map((r) =>
          el('li', null, el('code', null, text(r.code)), ' ', text(r.text)))) : el('p', null, 'none')),
        section('Outside addresses', srcs.length ? sourcesTable(srcs, 'outside-sources') : el('p', null, 'none kept')),
        section('First and last outside use', usesTable(f)),
        section('Actions from outside', list(actions.map((a) => el('span', { class: 'mono' }, a)))),
        section('Inside', insideBlock(f, k)),
        section('ATT&CK techniques', list(attack.map((t) => [el('span', { class: 'mono' }, text(t.id)), ' ', text(t.name)]))))));
}

export async function show(ctx) {
  if (!ctx.id) throw new ApiError(400, 'invalid_parameter', 'No finding id in the address.');
  const { data: f, text: raw } = await api('GET', '/v1/findings/' + encodeURIComponent(ctx.id));
  if (!f || typeof f !== 'object') throw new ApiError(500, '', 'The finding could not be read.');
  let k = null;
  let kerr = '';
  if (f.access_key_id) {
    try {
      k = (await api('GET', '/v1/keys/' + encodeURIComponent(f.access_key_id))).data;
    } catch (e) {
      if (e instanceof AuthError) throw e;
      kerr = e.status === 404 ? 'the key\'s state has expired from the store' : e.message;
    }
  }
  if (ctx.changed(raw + '\u0000' + JSON.stringify(k))) ctx.render(render(f, k, kerr, ctx));
  ctx.loaded();
}
