// dom.js: the only way the page makes elements. Every value the API returns is attacker-controlled (user
// agents, session names, notes, even addresses), so it becomes text (a text node) or the value of an attribute
// that is neither a URL nor an event handler: el() refuses any other attribute. The only links are hash
// routes built by link() from encodeURIComponent'd ids, so no data-derived URL is ever made.
const SAFE_ATTR = /^(class|id|type|for|name|value|role|title|scope|colspan|tabindex|min|max|step|minlength|maxlength|pattern|placeholder|autocomplete|spellcheck|rows|inputmode|hidden|disabled|required|(aria|data)-[a-z-]+)$/;
const SVG_NS = 'http://www.w3.org/2000/svg';
const SVG_ATTR = /^(class|x|y|x1|x2|y1|y2|width|height|r|cx|cy|viewBox|points|text-anchor|dominant-baseline|role|focusable|preserveAspectRatio|(aria|data)-[a-z-]+)$/;

function put(node, kids) {
  for (const k of kids) {
    if (k === null || k === undefined || k === false) continue;
    if (Array.isArray(k)) put(node, k);
    else if (typeof k === 'string' || typeof k === 'number') node.appendChild(document.createTextNode(String(k)));
    else node.appendChild(k);
  }
}

function attrs(node, a, allowed) {
  if (!a) return;
  for (const [k, v] of Object.entries(a)) {
    if (v === null || v === undefined || v === false) continue;
    if (!allowed.test(k)) throw new Error('attribute not allowed: ' + k);
    node.setAttribute(k, v === true ? '' : String(v));
  }
}

export function el(tag, a, ...kids) {
  const node = document.createElement(tag);
  attrs(node, a, SAFE_ATTR);
  put(node, kids);
  return node;
}

export function svg(tag, a, ...kids) {
  const node = document.createElementNS(SVG_NS, tag);
  attrs(node, a, SVG_ATTR);
  put(node, kids);
  return node;
}

// A hash route: "#/" + route [+ "/" + the id, percent-encoded]. The hash never reaches the server.
export function route(name, id) {
  return '#/' + name + (id === null || id === undefined ? '' : '/' + encodeURIComponent(String(id)));
}

export function link(name, id, ...kids) {
  const a = el('a', null, ...kids);
  a.setAttribute('href', route(name, id)); // hash-route: the one href the page builds
  return a;
}

export function go(name, id) {
  location.hash = route(name, id);
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

export const dash = '\u2014';

export function text(v) {
  return v === null || v === undefined || v === '' ? dash : String(v);
}

// Times: the API speaks RFC 3339 UTC; the page shows UTC too, so every time on it is comparable.
export function ms(t) {
  if (!t) return null;
  const v = Date.parse(t);
  return Number.isFinite(v) ? v : null;
}

const pad = (n) => String(n).padStart(2, '0');

export function hhmm(v) {
  const d = new Date(v);
  return pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes());
}

export function hhmmss(v) {
  const d = new Date(v);
  return hhmm(v) + ':' + pad(d.getUTCSeconds());
}

export function day(v) {
  const d = new Date(v);
  return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate());
}

export function when(t) {
  const v = ms(t);
  return v === null ? (t ? String(t) : dash) : day(v) + ' ' + hhmmss(v) + ' UTC';
}

// The workloads a key can belong to (Finding.workload.kind; the list's ?workload= filter), in the page's words.
export const WORKLOADS = [['lambda', 'Lambda function'], ['ecs', 'ECS task'], ['ec2', 'EC2 instance'], ['eks', 'EKS pod'], ['codebuild', 'CodeBuild build']];
const NOUNS = { lambda: 'function', ecs: 'task', ec2: 'instance', eks: 'pod', codebuild: 'build' };
export const workloadWords = (kind) => (WORKLOADS.find((w) => w[0] === kind) || [kind, String(kind)])[1];

// workloadOf(finding or key context): { kind, what: 'ECS task', noun: 'task', id }. A document without a
// workload (a finding stored before workloads) is a Lambda function's; a Lambda id is the function's name;
// kind null (a key no workload claims yet): what and noun say "workload".
export function workloadOf(d) {
  const w = d && d.workload && typeof d.workload === 'object' ? d.workload : null;
  const kind = !w ? 'lambda' : Object.prototype.hasOwnProperty.call(NOUNS, w.kind) ? w.kind : null;
  const id = !d ? null : kind === 'lambda' ? d.function_name : w && w.id;
  return { kind, what: kind ? workloadWords(kind) : 'workload', noun: kind ? NOUNS[kind] : 'workload', id: typeof id === 'string' && id ? id : null };
}

export function sevBadge(sev) {
  const s = String(sev || 'unknown');
  return el('span', { class: 'sev sev-' + (/^(low|medium|high|critical)$/.test(s) ? s : 'unknown') }, s);
}

export function statusBadge(st) {
  return el('span', { class: 'status' }, String(st || 'unknown'));
}

export function table(cls, heads, rows) {
  return el('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': cls.replace(/-/g, ' ') },
    el('table', { class: cls },
      el('thead', null, el('tr', null, heads.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', null, rows)));
}

export function dl(pairs) {
  return el('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [el('dt', null, k), el('dd', null, v)]));
}

// say: a short confirmation (role=status); warn: an error (role=alert). '' hides them.
export function say(msg) {
  const m = document.getElementById('msg');
  m.textContent = msg;
  m.hidden = !msg;
}

export function warn(msg) {
  const m = document.getElementById('err');
  m.textContent = msg;
  m.hidden = !msg;
}
