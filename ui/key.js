// key.js: key lookup. Paste an access key id, see what credwatch knows about it (GET /v1/keys/{id}), with
// or without a finding: its workload, the rules its verdict used, and its calls (inside, outside, not
// judged under the outside-AWS rules, not attributed to any workload yet).
import { api } from './api.js';
import { dl, el, go, link, table, text, warn, when, workloadOf } from './dom.js';
import { rulesOf, sourcesTable } from './finding.js';
import { lanesOf, timeline } from './timeline.js';

const AKID = /^[A-Z0-9]{16,31}$/;

function form(id) {
  const input = el('input', { id: 'akid', name: 'akid', autocomplete: 'off', spellcheck: 'false', maxlength: 31, placeholder: 'ASIA\u2026', value: id || '' });
  const f = el('form', { id: 'key-form', class: 'filters', role: 'search', 'aria-label': 'Look up a key' },
    el('div', { class: 'field wide' }, el('label', { for: 'akid' }, 'Access key id'), input),
    el('div', { class: 'field actions' }, el('button', { type: 'submit', id: 'key-go' }, 'Look up')));
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = input.value.trim().toUpperCase();
    if (!AKID.test(v)) { warn('An access key id is 16 to 31 letters A-Z and digits (ASIA\u2026 for temporary keys).'); input.focus(); return; }
    warn('');
    go('key', v);
  });
  return f;
}

function tally(name, t, id) {
  return el('tr', { 'data-tally': id }, el('th', { scope: 'row' }, name), el('td', { class: 'num' }, text(t && t.count)),
    el('td', null, when(t && t.first_at)), el('td', null, when(t && t.last_at)),
    el('td', { class: 'mono wrap' }, t && Array.isArray(t.source_ips) && t.source_ips.length ? t.source_ips.join(', ') : '\u2014'));
}

function render(k) {
  const w = workloadOf(k);
  const ci = k.conflicting_issuance;
  const outside = k.outside && Array.isArray(k.outside.sources) ? k.outside.sources : [];
  const un = k.unattributed && Array.isArray(k.unattributed.sources) ? k.unattributed.sources : [];
  const allowed = Array.isArray(k.allowlisted_sources) ? k.allowlisted_sources : [];
  return el('div', { class: 'key', 'data-id': k.access_key_id },
    el('h2', null, 'Key ', el('span', { class: 'mono' }, text(k.access_key_id))),
    el('p', { id: 'key-finding', class: 'summary' }, k.finding_id
      ? ['This key has a finding: ', link('finding', k.finding_id, k.finding_id), '.']
      : w.kind ? 'This ' + (w.kind === 'lambda' ? 'Lambda' : w.what) + ' key has no finding: no outside use.'
        : 'No workload evidence for this key yet: its calls are shown, not judged.'),
    dl([
      ['Workload', (w.kind ? w.what + ' ' + text(w.id) : 'none yet') + (k.issued ? ' (issuance seen)' : '') + (k.runtime_marker ? ' (runtime marker seen)' : '')],
      ['Verdict rules', rulesOf(k)],
      ['Function', text(k.function_name)], ['Account', text(k.account_id)], ['Region', text(k.region)], ['Role', text(k.role_arn)],
      ['Issuance event', text(k.issued_by_event_id)], ['Expires', when(k.expires_at)],
      ['On-behalf calls', text(k.on_behalf_count)], ['Allow-listed calls', text(k.allowlisted_count)],
      ['Calls not kept', text(k.evicted_count)],
      ['Second issuance record', ci ? 'event ' + text(ci.event_id) + ' at ' + when(ci.issued_at) + ' (' + ci.records + ' records)' : 'none'],
    ]),
    el('h3', null, 'Timeline'),
    timeline({ issued_at: null, expires_at: k.expires_at }, lanesOf(null, k)),
    el('h3', null, 'Calls'),
    table('tallies', ['', 'Calls', 'First', 'Last', 'Addresses'], [tally('inside', k.inside, 'inside'), tally('outside', k.outside, 'outside'),
      tally('not judged (outside-AWS rules: AWS or private address)', k.not_judged, 'not_judged'),
      tally('not attributed (no workload yet)', k.unattributed, 'unattributed')]),
    outside.length ? [el('h3', null, 'Outside addresses'), sourcesTable(outside, 'key-outside')] : null,
    un.length ? [el('h3', null, 'Addresses not attributed yet'), sourcesTable(un, 'key-unattributed')] : null,
    allowed.length ? [el('h3', null, 'Allow-listed addresses'), table('allowed', ['Address', 'Network', 'Calls'],
      allowed.map((a) => el('tr', null, el('td', { class: 'mono' }, text(a.ip)), el('td', { class: 'mono' }, text(a.network)), el('td', { class: 'num' }, text(a.count)))))] : null);
}

export async function show(ctx) {
  if (!ctx.quiet || !document.getElementById('key-result')) {
    ctx.render(el('section', null, el('h1', null, 'Key lookup'), form(ctx.id), el('div', { id: 'key-result', 'aria-live': 'polite' })));
  }
  const box = document.getElementById('key-result');
  if (!ctx.id) { ctx.loaded(); return; }
  if (!AKID.test(ctx.id)) { box.replaceChildren(el('p', null, 'That is not an access key id.')); return; }
  let node;
  let raw;
  try {
    const r = await api('GET', '/v1/keys/' + encodeURIComponent(ctx.id));
    raw = r.text;
    node = render(r.data || {});
  } catch (e) {
    if (e.status !== 404) throw e;
    raw = '404';
    node = el('p', { id: 'key-finding' }, 'credwatch knows nothing about this key: never seen, or its state has expired (it lives as long as the credentials plus 2 h). A finding, if there was one, stays 90 days.');
  }
  if (ctx.changed(raw) && ctx.current()) box.replaceChildren(node);
  ctx.loaded();
}
