// queue.js: the findings queue, newest first, with the API's filters (the workload's kind among them) and
// cursor paging. An auto refresh re-reads the page shown and redraws the table only when the answer changed;
// the filter form is kept.
import { api, AuthError, q } from './api.js';
import { dash, el, go, link, sevBadge, statusBadge, table, text, warn, when, WORKLOADS, workloadOf } from './dom.js';

const STATUSES = ['open', 'acknowledged', 'resolved', 'suppressed', 'retracted'];
const SEVERITIES = ['critical', 'high', 'medium', 'low'];
const LIMITS = [10, 25, 50, 100];

const filters = { status: '', severity: '', workload: '', account: '', function: '', since: '', until: '', limit: 25 };
let cursors = [];   // the cursor of each page after the first that led here; [] = page 1
let nextCursor = null;
let seq = 0;        // the latest load: older answers are dropped

function fail(e) {
  if (!(e instanceof AuthError)) warn(e.message);
}

function field(label, input) {
  return el('div', { class: 'field' }, el('label', { for: input.id }, label), input);
}

// values: [value, ...] or [[value, label], ...]
function select(id, values, current, anyLabel) {
  const s = el('select', { id, name: id },
    anyLabel ? el('option', { value: '' }, anyLabel) : null,
    values.map((v) => (Array.isArray(v) ? el('option', { value: v[0] }, v[1]) : el('option', { value: v }, String(v)))));
  s.value = String(current);
  return s;
}

// datetime-local (no zone) <-> RFC 3339 UTC
const toApiTime = (v) => (v ? (v.length === 16 ? v + ':00' : v) + 'Z' : '');
const fromApiTime = (v) => (v ? v.replace(/Z$/, '') : '');

function filterForm(ctx) {
  const inputs = {
    status: select('f-status', STATUSES, filters.status, 'any'),
    severity: select('f-severity', SEVERITIES, filters.severity, 'any'),
    workload: select('f-workload', WORKLOADS, filters.workload, 'any'),
    account: el('input', { id: 'f-account', name: 'account', inputmode: 'numeric', pattern: '[0-9]{12}', maxlength: 12, placeholder: '12 digits', autocomplete: 'off', value: filters.account }),
    function: el('input', { id: 'f-function', name: 'function', maxlength: 71, autocomplete: 'off', spellcheck: 'false', value: filters.function }),
    since: el('input', { id: 'f-since', name: 'since', type: 'datetime-local', step: 1, value: fromApiTime(filters.since) }),
    until: el('input', { id: 'f-until', name: 'until', type: 'datetime-local', step: 1, value: fromApiTime(filters.until) }),
    limit: select('f-limit', LIMITS, filters.limit, null),
  };
  const form = el('form', { id: 'filters', class: 'filters', role: 'search', 'aria-label': 'Filter findings' },
    field('Status', inputs.status), field('Severity', inputs.severity), field('Workload', inputs.workload), field('Account', inputs.account),
    field('Function', inputs.function), field('Created from (UTC)', inputs.since),
    field('Created until (UTC)', inputs.until), field('Per page', inputs.limit),
    el('div', { class: 'field actions' },
      el('button', { type: 'submit', id: 'f-apply' }, 'Apply'),
      el('button', { type: 'button', id: 'f-clear', class: 'quiet' }, 'Clear')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    filters.status = inputs.status.value;
    filters.severity = inputs.severity.value;
    filters.workload = inputs.workload.value;
    filters.account = inputs.account.value.trim();
    filters.function = inputs.function.value.trim();
    filters.since = toApiTime(inputs.since.value);
    filters.until = toApiTime(inputs.until.value);
    filters.limit = Number(inputs.limit.value) || 25;
    cursors = [];
    load(ctx, true).catch(fail);
  });
  form.querySelector('#f-clear').addEventListener('click', () => {
    Object.assign(filters, { status: '', severity: '', workload: '', account: '', function: '', since: '', until: '' });
    for (const k of ['status', 'severity', 'workload', 'account', 'function', 'since', 'until']) inputs[k].value = '';
    cursors = [];
    load(ctx, true).catch(fail);
  });
  return form;
}

// A Lambda finding shows its function as before; another workload its kind and id ("ECS task d190...").
function workloadCell(f) {
  const w = workloadOf(f);
  if (w.kind === 'lambda') return link('finding', f.id, w.id ? w.id : '(function unknown)');
  return link('finding', f.id, el('span', { class: 'kind' }, w.what), ' ', w.id ? w.id : '(id unknown)');
}

function row(f) {
  const srcs = Array.isArray(f.outside_sources) ? f.outside_sources : [];
  const ips = Array.isArray(f.outside_source_ips) ? f.outside_source_ips : [];
  const first = srcs[0];
  const more = Math.max(srcs.length, ips.length) - 1;
  const tr = el('tr', { 'data-id': f.id },
    el('td', null, sevBadge(f.severity)),
    el('td', null, statusBadge(f.status), f.explained ? el('span', { class: 'note-inline' }, ' (explained)') : null),
    el('td', { class: 'wrap' }, workloadCell(f)),
    el('td', { class: 'mono nowrap' }, text(f.account_id)),
    el('td', { class: 'nowrap' }, text(f.region)),
    el('td', { class: 'nowrap' }, when(f.first_outside_at)),
    el('td', { class: 'mono wrap' }, first ? first.ip : text(ips[0]), more > 0 ? el('span', { class: 'more' }, ' +' + more + ' more') : null),
    el('td', { class: 'mono wrap' }, first ? first.network : dash));
  tr.addEventListener('click', (ev) => {
    if (!ev.target.closest('a')) go('finding', f.id);
  });
  return tr;
}

function results(data) {
  const list = Array.isArray(data.findings) ? data.findings : [];
  nextCursor = typeof data.next_cursor === 'string' ? data.next_cursor : null;
  const page = cursors.length + 1;
  const prev = el('button', { type: 'button', id: 'page-prev', disabled: page === 1 }, '\u2190 Newer');
  const next = el('button', { type: 'button', id: 'page-next', disabled: !nextCursor }, 'Older \u2192');
  return el('div', null,
    el('p', { class: 'count', id: 'queue-count' }, list.length === 0
      ? (page === 1 ? 'No findings match these filters.' : 'No more findings.')
      : 'Page ' + page + ': ' + list.length + ' finding' + (list.length === 1 ? '' : 's') + ', newest first.'),
    list.length ? table('queue', ['Severity', 'Status', 'Workload', 'Account', 'Region', 'First outside use', 'Outside address', 'Network'], list.map(row)) : null,
    el('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, el('span', { class: 'page-no' }, 'page ' + page), next));
}

async function load(ctx, userAction) {
  const mine = ++seq;
  const query = q({
    status: filters.status, severity: filters.severity, workload: filters.workload, account: filters.account, function: filters.function,
    since: filters.since, until: filters.until, limit: filters.limit, cursor: cursors.length ? cursors[cursors.length - 1] : '',
  });
  const { data, text: raw } = await api('GET', '/v1/findings' + query);
  if (mine !== seq || !ctx.current()) return;
  const box = document.getElementById('results');
  if (!box) return;
  const fresh = ctx.changed(raw);
  if (!userAction && !fresh) { ctx.loaded(); return; }
  const focused = document.activeElement && document.activeElement.id;
  const node = results(data || {});
  box.replaceChildren(node);
  node.querySelector('#page-prev').addEventListener('click', () => { cursors.pop(); load(ctx, true).catch(fail); });
  node.querySelector('#page-next').addEventListener('click', () => {
    if (nextCursor) { cursors.push(nextCursor); load(ctx, true).catch(fail); }
  });
  const again = focused && document.getElementById(focused);
  if (again && box.contains(again) && !again.disabled) again.focus({ preventScroll: true });
  ctx.loaded();
}

export async function show(ctx) {
  if (!ctx.quiet || !document.getElementById('results')) {
    const section = el('section', { class: 'queue-view' },
      el('h1', null, 'Findings'),
      filterForm(ctx),
      el('div', { id: 'results', 'aria-live': 'polite' }));
    ctx.render(section);
  }
  await load(ctx, false);
}
