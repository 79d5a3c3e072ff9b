// sinks.js: where findings go out (GET /v1/sinks) and what each sink gave up on (dead letters), with retry of
// one or all (POST /v1/sinks/{name}/dead-letters/retry).
import { api, AuthError } from './api.js';
import { dl, el, link, say, table, text, warn, when } from './dom.js';

const PAGE = 50;

function deadRows(name, letters, ctx) {
  return letters.map((d) => {
    const b = el('button', { type: 'button', class: 'small', 'data-entry': d.entry, 'aria-label': 'Retry dead letter ' + d.entry }, 'Retry');
    b.addEventListener('click', () => retry(name, { entry: d.entry }, ctx, b));
    return el('tr', { 'data-entry': d.entry },
      el('td', { class: 'mono' }, text(d.entry)), el('td', { class: 'mono wrap' }, d.finding_id ? link('finding', d.finding_id, d.finding_id) : '\u2014'),
      el('td', { class: 'num' }, text(d.revision)), el('td', null, text(d.kind)), el('td', null, when(d.queued_at)),
      el('td', { class: 'wrap' }, text(d.reason)), el('td', null, b));
  });
}

async function retry(name, body, ctx, button) {
  button.disabled = true;
  try {
    const { data } = await api('POST', '/v1/sinks/' + encodeURIComponent(name) + '/dead-letters/retry', body);
    say('Sent ' + (data && typeof data.retried === 'number' ? data.retried : '?') + ' dead letter(s) of ' + name + ' again.');
    await ctx.reload();
  } catch (e) {
    if (e instanceof AuthError) return;
    button.disabled = false;
    warn('Retry failed: ' + e.message);
  }
}

function sinkBlock(s, dead, ctx) {
  const qd = s.queue || {};
  const letters = Array.isArray(dead.dead_letters) ? dead.dead_letters : [];
  const all = el('button', { type: 'button', class: 'quiet', disabled: letters.length === 0 }, 'Retry all dead letters');
  all.addEventListener('click', () => retry(s.name, {}, ctx, all));
  const body = el('tbody', null, deadRows(s.name, letters, ctx));
  let cursor = typeof dead.next_cursor === 'string' ? dead.next_cursor : null;
  const more = el('button', { type: 'button', class: 'quiet', hidden: !cursor }, 'More dead letters');
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const { data } = await api('GET', '/v1/sinks/' + encodeURIComponent(s.name) + '/dead-letters?limit=' + PAGE + '&cursor=' + encodeURIComponent(cursor));
      for (const r of deadRows(s.name, Array.isArray(data.dead_letters) ? data.dead_letters : [], ctx)) body.appendChild(r);
      cursor = typeof data.next_cursor === 'string' ? data.next_cursor : null;
      more.hidden = !cursor;
    } catch (e) {
      if (!(e instanceof AuthError)) warn(e.message);
    } finally {
      more.disabled = false;
    }
  });
  const wrap = table('dead-letters', ['Entry', 'Finding', 'Revision', 'Kind', 'Queued', 'Reason', ''], []);
  wrap.querySelector('tbody').replaceWith(body);
  return el('section', { class: 'block sink', 'data-sink': s.name },
    el('h2', null, text(s.name), ' ', el('span', { class: 'muted' }, '(' + text(s.type) + (s.format ? ', ' + s.format : '') + ', from ' + text(s.min_severity) + ')')),
    dl([
      ['Queue', 'waiting ' + text(qd.depth) + ', held ' + text(qd.held) + ', oldest ' + text(qd.oldest_age_seconds) + ' s'],
      ['Dead letters', text(qd.dead) + ' kept, ' + text(qd.dead_dropped) + ' dropped at the bound'],
      ['This instance', 'delivered ' + text(s.delivered) + ', failed attempts ' + text(s.failed_attempts) + ', given up ' +
        text(s.dead_lettered) + ' (outbox full ' + text(s.dead_lettered_full) + '), below minimum ' + text(s.filtered) +
        ', last status ' + (s.last_status === null ? 'none yet' : s.last_status === 0 ? 'no answer' : text(s.last_status))],
    ]),
    el('h3', null, 'Dead letters'),
    letters.length ? wrap : el('p', null, 'None.'),
    el('div', { class: 'buttons' }, all, more));
}

export async function show(ctx) {
  const { data, text: raw } = await api('GET', '/v1/sinks');
  const list = data && Array.isArray(data.sinks) ? data.sinks : [];
  const dead = await Promise.all(list.map((s) =>
    api('GET', '/v1/sinks/' + encodeURIComponent(s.name) + '/dead-letters?limit=' + PAGE)));
  const key = raw + dead.map((d) => d.text).join('\u0000');
  if (ctx.changed(key)) {
    ctx.render(el('section', null, el('h1', null, 'Sinks and dead letters'),
      list.length ? list.map((s, i) => sinkBlock(s, dead[i].data || {}, ctx))
        : el('p', null, 'No sink is configured (CREDWATCH_SINKS): findings are only read through the API.')));
  }
  ctx.loaded();
}
