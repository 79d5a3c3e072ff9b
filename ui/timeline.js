// timeline.js: the key's life as an SVG picture, drawn with createElementNS (dom.js svg()): one lane for the
// uses from inside (times from GET /v1/keys/{id}), one lane per outside address (first to last use), the
// issuance and the expiry as vertical marks. When issuance or expiry lies far outside the span of the uses,
// it is drawn past a break at the edge ("off scale") so the uses keep their detail.
import { day, el, hhmm, hhmmss, ms, svg, workloadOf } from './dom.js';

const W = 760;
const LABEL_W = 210;
const LANE_H = 24;
const TOP = 30;
const AXIS_H = 34;
const BREAK_W = 34;
const MAX_LABEL = 30;

const cut = (s, n) => (s.length > n ? s.slice(0, n - 1) + '\u2026' : s);

// lanes from a finding and/or a key context (either may be null)
export function lanesOf(f, k) {
  const lanes = [];
  const inside = k && k.inside;
  const noun = workloadOf(f || k).noun;
  if (inside && inside.count > 0) {
    lanes.push({ kind: 'inside', label: 'inside (' + (inside.source_ips || []).join(', ') + ')', count: inside.count, first: ms(inside.first_at), last: ms(inside.last_at), detail: 'the ' + noun + '\'s own network' });
  } else if (f && f.inside_count > 0) {
    lanes.push({ kind: 'inside', label: 'inside (' + (f.inside_source_ips || []).join(', ') + ')', count: f.inside_count, first: null, last: null, detail: 'times not known: the key\'s state has expired' });
  }
  const sources = f ? f.outside_sources : k && k.outside && k.outside.sources;
  for (const s of Array.isArray(sources) ? sources : []) {
    lanes.push({ kind: 'outside', label: s.ip + ' (' + s.network + ')', count: s.count, succeeded: s.succeeded, first: ms(s.first_at), last: ms(s.last_at), detail: s.network + ', ' + s.why });
  }
  const un = k && k.unattributed && Array.isArray(k.unattributed.sources) ? k.unattributed.sources : [];
  for (const s of un) {
    lanes.push({ kind: 'unattributed', label: s.ip + ' (' + s.network + ')', count: s.count, succeeded: s.succeeded, first: ms(s.first_at), last: ms(s.last_at), detail: 'not judged: no workload evidence yet' });
  }
  return lanes;
}

function span(lanes, issued, expires) {
  const times = [];
  for (const l of lanes) for (const t of [l.first, l.last]) if (t !== null) times.push(t);
  let a;
  let b;
  if (times.length) { a = Math.min(...times); b = Math.max(...times); } else {
    a = issued !== null ? issued : expires;
    b = expires !== null ? expires : issued;
  }
  if (a === null || a === undefined) return null;
  const width = Math.max(b - a, 60000);
  const pad = width * 0.04;
  const r = { lo: a - pad, hi: b + pad, issuedOff: false, expiresOff: false };
  if (issued !== null) {
    if (a - issued <= width * 1.5) r.lo = Math.min(r.lo, issued - pad); else r.issuedOff = true;
  }
  if (expires !== null) {
    if (expires - b <= width * 1.5) r.hi = Math.max(r.hi, expires + pad); else r.expiresOff = true;
  }
  return r;
}

function mark(kind, x, y) {
  if (kind === 'inside') return svg('circle', { class: 'tl-in', 'data-kind': 'inside', cx: x, cy: y, r: 5 });
  if (kind === 'outside') return svg('rect', { class: 'tl-out', 'data-kind': 'outside', x: x - 5, y: y - 5, width: 10, height: 10 });
  return svg('polygon', { class: 'tl-un', 'data-kind': 'unattributed', points: [x, y - 6, x + 6, y, x, y + 6, x - 6, y].join(' ') });
}

function fmtRange(l) {
  if (l.first === null) return 'times not known';
  const a = day(l.first) + ' ' + hhmmss(l.first);
  return l.last !== null && l.last !== l.first ? a + ' to ' + hhmmss(l.last) + ' UTC' : a + ' UTC';
}

// timeline({issued_at, expires_at}, lanes) -> <figure> holding the <svg>, or a note when nothing has a time
export function timeline(bounds, lanes) {
  const issued = ms(bounds.issued_at);
  const expires = ms(bounds.expires_at);
  const r = span(lanes, issued, expires);
  if (!r || !lanes.length && issued === null) return el('p', null, 'No times are known for this key: no timeline.');
  const rows = Math.max(lanes.length, 1);
  const H = TOP + rows * LANE_H + AXIS_H;
  const left = LABEL_W + 10 + (r.issuedOff ? BREAK_W : 0);
  const right = W - 14 - (r.expiresOff ? BREAK_W : 0);
  const x = (t) => left + ((t - r.lo) / (r.hi - r.lo)) * (right - left);
  const bottom = TOP + rows * LANE_H;
  const title = 'Timeline of the key: ' + lanes.length + ' lane' + (lanes.length === 1 ? '' : 's') +
    (issued !== null ? ', issued ' + day(issued) + ' ' + hhmm(issued) + ' UTC' : ', issuance not seen') +
    (expires !== null ? ', expires ' + day(expires) + ' ' + hhmm(expires) + ' UTC' : '');
  const pic = svg('svg', { class: 'timeline', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': title, preserveAspectRatio: 'xMinYMin meet' },
    svg('title', null, title),
    svg('rect', { class: 'tl-plot', x: LABEL_W + 4, y: TOP - 6, width: W - LABEL_W - 12, height: rows * LANE_H + 6 }));

  // lanes
  lanes.forEach((l, i) => {
    const y = TOP + i * LANE_H + LANE_H / 2;
    const g = svg('g', { class: 'tl-lane tl-lane-' + l.kind, 'data-lane': l.kind },
      svg('title', null, l.label + ': ' + l.count + ' call' + (l.count === 1 ? '' : 's') +
        (l.succeeded !== undefined ? ', ' + l.succeeded + ' succeeded' : '') + ', ' + fmtRange(l) + ' (' + l.detail + ')'),
      svg('text', { class: 'tl-label', x: LABEL_W, y: y + 4, 'text-anchor': 'end' }, cut(l.label, MAX_LABEL)));
    if (l.first !== null) {
      const x1 = x(l.first);
      const x2 = x(l.last !== null ? l.last : l.first);
      g.appendChild(svg('rect', { class: 'tl-bar tl-bar-' + l.kind, x: x1, y: y - 2, width: Math.max(x2 - x1, 1), height: 4 }));
      g.appendChild(mark(l.kind, x1, y));
      if (x2 - x1 >= 3) g.appendChild(mark(l.kind, x2, y));
      const tx = Math.min(x2 + 9, W - 4);
      g.appendChild(svg('text', { class: 'tl-count', x: tx, y: y + 4, 'text-anchor': tx > W - 40 ? 'end' : 'start' }, '\u00d7' + l.count));
    } else {
      g.appendChild(svg('text', { class: 'tl-count', x: left, y: y + 4 }, l.count + ' calls, times not known'));
    }
    pic.appendChild(g);
  });

  // issuance and expiry
  const edge = (t, off, atLeft, kind, word) => {
    if (t === null) return;
    const px = off ? (atLeft ? LABEL_W + 10 + BREAK_W / 2 : W - 14 - BREAK_W / 2) : x(t);
    const g = svg('g', { class: 'tl-edge tl-' + kind, 'data-kind': kind },
      svg('title', null, word + ' ' + day(t) + ' ' + hhmmss(t) + ' UTC' + (off ? ' (off scale)' : '')),
      svg('line', { x1: px, x2: px, y1: TOP - 12, y2: bottom }),
      svg('text', { class: 'tl-edge-label', x: px, y: TOP - 16, 'text-anchor': atLeft ? 'start' : 'end' }, word + ' ' + hhmm(t) + (off ? ' \u2026' : '')));
    if (off) {
      const bx = atLeft ? LABEL_W + 10 + BREAK_W - 4 : W - 14 - BREAK_W + 4;
      g.appendChild(svg('text', { class: 'tl-break', x: bx, y: bottom + 4, 'text-anchor': 'middle' }, '\u2248'));
    }
    pic.appendChild(g);
  };
  edge(issued, r.issuedOff, true, 'issued', 'issued');
  edge(expires, r.expiresOff, false, 'expires', 'expires');

  // axis: five ticks over the scale, UTC
  const axisY = bottom + 8;
  pic.appendChild(svg('line', { class: 'tl-axis', x1: left, x2: right, y1: axisY, y2: axisY }));
  const fine = r.hi - r.lo < 15 * 60000;
  for (let i = 0; i <= 4; i += 1) {
    const t = r.lo + ((r.hi - r.lo) * i) / 4;
    const px = x(t);
    pic.appendChild(svg('line', { class: 'tl-axis', x1: px, x2: px, y1: axisY, y2: axisY + 4 }));
    pic.appendChild(svg('text', { class: 'tl-tick', x: px, y: axisY + 16, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, fine ? hhmmss(t) : hhmm(t)));
  }
  pic.appendChild(svg('text', { class: 'tl-tick', x: LABEL_W, y: axisY + 16, 'text-anchor': 'end' }, 'UTC ' + day(r.lo)));

  return el('figure', { class: 'timeline-box' }, el('div', { class: 'tl-scroll', tabindex: 0, role: 'region', 'aria-label': 'timeline' }, pic),
    el('figcaption', { class: 'legend' },
      el('span', { class: 'lg lg-in' }, 'inside use'), ' ',
      el('span', { class: 'lg lg-out' }, 'outside use'), ' ',
      lanes.some((l) => l.kind === 'unattributed') ? [el('span', { class: 'lg lg-un' }, 'not judged'), ' '] : null,
      el('span', { class: 'lg lg-edge' }, 'issuance and expiry'),
      ' \u00b7 bars run from the first to the last use; \u00d7N is the number of calls.'));
}
