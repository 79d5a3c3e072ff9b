// api.js: every request the page makes. Same origin only (relative paths), no cookies, no redirects, a
// time limit. The read token lives in sessionStorage (this tab, until it closes): never stored for longer,
// never in a URL, never logged. An ingest token is never asked for: the page only reads and triages.
const TOKEN_KEY = 'credwatch.readToken';
const TIMEOUT_MS = 20000;
const TOKEN_RE = /^[\x21-\x7e]{16,255}$/; // the service's rule: 16-255 printable bytes

export class AuthError extends Error {}
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code || '';
  }
}

let authHandler = () => {};
let busy = 0;

export function onAuthFailure(fn) { authHandler = fn; }

export function token() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
}

export function tokenValid(t) { return TOKEN_RE.test(t); }

export function setToken(t) {
  try { sessionStorage.setItem(TOKEN_KEY, t); } catch (e) { /* storage refused: the token lasts this page */ }
}

export function forgetToken() {
  try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing stored */ }
}

function setBusy(d) {
  busy += d;
  document.documentElement.setAttribute('data-busy', busy > 0 ? '1' : '0');
}

// api('GET', '/v1/findings?...') -> { data, text }; throws AuthError (401/403, after the handler cleared
// the page) or ApiError (anything else that is not 2xx, with the service's own message).
export async function api(method, path, body) {
  // X-Requested-With: the service then challenges Bearer only, so no browser login dialog opens over the page
  const headers = { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' };
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  let res;
  let raw = '';
  setBusy(1);
  try {
    res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit', redirect: 'error', signal: ctl.signal,
    });
    raw = await res.text();
  } catch (e) {
    throw new ApiError(0, 'network', e && e.name === 'AbortError'
      ? 'credwatch did not answer within ' + TIMEOUT_MS / 1000 + ' s'
      : 'credwatch could not be reached');
  } finally {
    clearTimeout(timer);
    setBusy(-1);
  }
  let data = null;
  try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
  if (res.status === 401 || res.status === 403) {
    authHandler(res.status, Boolean(t));
    throw new AuthError('HTTP ' + res.status);
  }
  if (!res.ok) {
    const err = data && typeof data === 'object' && data.error ? data.error : {};
    throw new ApiError(res.status, err.code, typeof err.message === 'string' ? err.message : 'HTTP ' + res.status);
  }
  return { data, text: raw };
}

export function q(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== '') parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(String(v)));
  }
  return parts.length ? '?' + parts.join('&') : '';
}
