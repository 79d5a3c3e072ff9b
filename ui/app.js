// app.js: the shell. Hash routes (#/, #/finding/<id>, #/key/<id>, #/sinks) so that ids only ever travel in
// the API calls themselves; the read-token prompt; messages; the "updated" clock and the auto refresh
// (every 15 s, or ?refresh=N seconds; skipped while a triage form is being edited or the tab is hidden).
import { clear, el, hhmmss, say, warn } from './dom.js';
import { AuthError, forgetToken, onAuthFailure, setToken, token, tokenValid } from './api.js';
import * as queue from './queue.js';
import * as finding from './finding.js';
import * as key from './key.js';
import * as sinks from './sinks.js';

const $ = (id) => document.getElementById(id);
const view = $('view');
const views = { findings: queue.show, finding: finding.show, key: key.show, sinks: sinks.show };
const REFRESH_S = (() => {
  const m = /[?&]refresh=(\d{1,4})(&|$)/.exec(location.search);
  const v = m ? Number(m[1]) : 15;
  return v >= 1 && v <= 3600 ? v : 15;
})();

let gen = 0;          // bumped by every navigation and auth failure: older answers are dropped
let lastKey = null;   // what the current view last rendered (its API answer), to skip unchanged refreshes
let authPending = false;
let refreshing = false;
let updatedAt = null;

function showUpdated() {
  const u = $('updated');
  if (!updatedAt) { u.textContent = ''; return; }
  u.textContent = 'updated ' + hhmmss(updatedAt) + ' UTC' + (finding.isEditing() ? ' \u00b7 refresh paused while you edit' : '');
}

function parse() {
  const h = location.hash.replace(/^#\/?/, '');
  const parts = h.split('/');
  let id = null;
  if (parts.length > 1 && parts[1] !== '') {
    try { id = decodeURIComponent(parts.slice(1).join('/')); } catch (e) { id = null; }
  }
  return { name: parts[0] || 'findings', id };
}

function makeCtx(g, quiet, r) {
  return {
    quiet,
    id: r.id,
    current: () => g === gen,
    // changed(text): false when a quiet refresh brought the same answer as last time
    changed(text) {
      if (g !== gen) return false;
      if (quiet && text === lastKey) return false;
      lastKey = text;
      return true;
    },
    // render(node): the view's content; focus moves to its heading on navigation, stays put on refresh
    render(node) {
      if (g !== gen) return false;
      const focused = document.activeElement && document.activeElement.id;
      clear(view);
      view.appendChild(node);
      if (!quiet) {
        const h = view.querySelector('h1');
        if (h) { h.setAttribute('tabindex', '-1'); h.focus({ preventScroll: true }); }
      } else if (focused && $(focused)) {
        $(focused).focus({ preventScroll: true });
      }
      return true;
    },
    loaded() {
      if (g !== gen) return;
      updatedAt = Date.now();
      showUpdated();
      warn('');
    },
    // reload(): read the view again at once (after a change made here), keeping focus and messages
    reload() {
      if (g !== gen) return Promise.resolve();
      lastKey = null;
      return route(true);
    },
  };
}

// route(quiet, keepMessages): show the view the hash names; quiet = an auto refresh of the same view.
export async function route(quiet, keepMessages) {
  if (authPending) return;
  const r = parse();
  if (!quiet) {
    gen += 1;
    lastKey = null;
    if (!keepMessages) { say(''); warn(''); }
    for (const a of document.querySelectorAll('header nav a')) {
      if (a.getAttribute('data-view') === (r.name === 'finding' ? 'findings' : r.name)) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }
  const g = gen;
  const ctx = makeCtx(g, quiet, r);
  const show = Object.prototype.hasOwnProperty.call(views, r.name) ? views[r.name] : null;
  if (!show) {
    ctx.render(el('section', null, el('h1', null, 'Not found'), el('p', null, 'This page has no such view.')));
    return;
  }
  refreshing = true;
  try {
    await show(ctx);
  } catch (e) {
    if (e instanceof AuthError || g !== gen) return;
    if (quiet) {
      warn('Refresh failed: ' + e.message + ' (what is shown is from ' + (updatedAt ? hhmmss(updatedAt) + ' UTC' : 'earlier') + ')');
    } else {
      warn(e.message);
      ctx.render(el('section', null, el('h1', null, 'Could not load this view'), el('p', null, e.message)));
    }
  } finally {
    if (g === gen) refreshing = false;
  }
}

// A refused or missing token: drop everything shown, say why, ask for the read token.
function askToken(why) {
  gen += 1;
  authPending = true;
  refreshing = false;
  lastKey = null;
  clear(view);
  say('');
  warn('');
  updatedAt = null;
  showUpdated();
  $('forget').hidden = true;
  $('auth-why').textContent = why;
  $('auth').hidden = false;
  $('token').focus();
}

onAuthFailure((status, hadToken) => {
  forgetToken();
  if (status === 403) {
    askToken('That token is not a read token (HTTP 403): it may not read findings. Nothing is shown. Enter a read token.');
  } else if (hadToken) {
    askToken('The read token was refused (HTTP 401): it is wrong or no longer configured. Nothing is shown. Enter the read token again.');
  } else {
    askToken('This credwatch needs a read token (HTTP 401). Enter it to see findings; it is kept in this tab only.');
  }
});

$('auth-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = $('token');
  const t = input.value.trim();
  input.value = '';
  if (!tokenValid(t)) {
    $('auth-why').textContent = 'A read token is 16 to 255 printable characters, without spaces.';
    input.focus();
    return;
  }
  setToken(t);
  authPending = false;
  $('auth').hidden = true;
  $('forget').hidden = false;
  route(false);
});

$('forget').addEventListener('click', () => {
  askToken('The token is forgotten. Nothing is shown until a read token is entered.');
});

window.addEventListener('hashchange', () => route(false));
document.addEventListener('focusin', showUpdated);
document.addEventListener('input', showUpdated);

setInterval(() => {
  if (document.hidden || authPending || refreshing || finding.isEditing()) { showUpdated(); return; }
  route(true);
}, REFRESH_S * 1000);

$('forget').hidden = !token();
route(false);
