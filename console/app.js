// The console's shell: sign-in, navigation between views (the URL's #/ part), refresh, sign-out
// on a 401. Views are functions that load data and return the nodes to show.
import { ApiError, Unauthorized, api, clearCredentials, credentials, saveCredentials } from './api.js';
import { h, replace } from './dom.js';
import { keysView } from './view-keys.js';
import { retentionView } from './view-retention.js';
import { storageView } from './view-storage.js';
import { systemView } from './view-system.js';
import { systemsView } from './view-systems.js';

const VIEWS = {
  systems: (param, ctx) => systemsView(ctx),
  system: (param, ctx) => systemView(param, ctx),
  retention: (param, ctx) => retentionView(ctx),
  storage: (param, ctx) => storageView(ctx),
  keys: (param, ctx) => keysView(ctx),
};
const NAV = { systems: 'systems', system: 'systems', retention: 'retention', storage: 'storage', keys: 'keys' };

const $ = (id) => document.getElementById(id);
let generation = 0;
let refreshTimer;
/** Survives one re-render: a message from the action that caused it. */
let flash = null;

function parseHash() {
  const [name = '', ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  const route = VIEWS[name] ? name : 'systems';
  let param = '';
  try {
    param = decodeURIComponent(rest.join('/'));
  } catch {
    param = '';
  }
  return { route, param };
}

/**
 * A navigation moves the focus to the new view's heading once it is shown. A quiet render that
 * starts meanwhile (a refresh, a resize) supersedes the navigation's render, so it must do that
 * for it: on a slow machine the focus was otherwise left on the page's body.
 */
let focusOwed = false;

/** Renders the current view. `quiet`: a refresh, so focus and scroll stay where they are. */
async function render({ quiet = false } = {}) {
  clearTimeout(refreshTimer);
  if (!quiet) focusOwed = true;
  if (!credentials()) return showLogin();
  showApp();
  const { route, param } = parseHash();
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.route === NAV[route]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const gen = ++generation;
  const view = $('view');
  if (!quiet) {
    replace(view, h('p', { class: 'loading', role: 'status' }, 'Loading…'));
    $('status').classList.remove('show'); // a message about the last screen, not this one
  }
  view.setAttribute('aria-busy', 'true');
  const ctx = {
    rerender: (options) => render({ quiet: true, ...options }),
    setFlash: (value) => (flash = value),
    takeFlash: () => {
      const value = flash;
      flash = null;
      return value;
    },
    /** Re-render after `ms` unless the operator is working in the view or a dialog is open. */
    refreshIn: (ms) => {
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(() => {
        const busy = $('confirm').open || view.contains(document.activeElement) || document.hidden;
        if (busy) ctx.refreshIn(ms);
        else render({ quiet: true });
      }, ms);
    },
  };
  try {
    const node = await VIEWS[route](param, ctx);
    if (gen !== generation) return;
    const scroll = window.scrollY;
    replace(view, node);
    takeFocus(view, scroll);
  } catch (err) {
    if (gen !== generation) return;
    if (err instanceof Unauthorized) {
      signOut('The registry refused your credentials (401): they may have changed, or the session is no longer valid. Sign in again.');
      return;
    }
    replace(
      view,
      h('h1', { tabindex: '-1' }, 'Something went wrong'),
      h('p', { class: 'notice bad', role: 'alert' }, err instanceof ApiError ? `${err.message} (${err.code})` : String(err.message ?? err)),
      h('button', { type: 'button', onclick: () => render() }, 'Try again'),
    );
    takeFocus(view, window.scrollY);
  } finally {
    if (gen === generation) view.removeAttribute('aria-busy');
  }
}

/** After a view is shown: its heading takes the focus if a navigation asked for it, else the scroll stays. */
function takeFocus(view, scroll) {
  if (!focusOwed) return window.scrollTo(0, scroll);
  focusOwed = false;
  view.querySelector('h1')?.focus();
}

function showApp() {
  $('login').hidden = true;
  $('view').hidden = false;
  $('nav').hidden = false;
  $('session').hidden = false;
  const c = credentials();
  $('who').textContent = c?.kind === 'basic' ? `Signed in as ${c.user}` : 'Signed in with the admin token';
}

function showLogin(message) {
  clearTimeout(refreshTimer);
  $('view').hidden = true;
  $('nav').hidden = true;
  $('session').hidden = true;
  $('login').hidden = false;
  const note = $('login-message');
  note.hidden = !message;
  note.textContent = message ?? '';
  syncKind();
  const first = kind() === 'basic' ? $('login-user') : $('login-token');
  (first.value ? (kind() === 'basic' ? $('login-password') : first) : first).focus();
}

function signOut(message) {
  clearCredentials();
  generation++;
  $('login-password').value = '';
  $('login-token').value = '';
  replace($('view'));
  showLogin(message);
}

const kind = () => document.querySelector('input[name="kind"]:checked')?.value ?? 'basic';

function syncKind() {
  const basic = kind() === 'basic';
  $('basic-fields').hidden = !basic;
  $('bearer-fields').hidden = basic;
}

async function login(event) {
  event.preventDefault();
  const note = $('login-message');
  const creds =
    kind() === 'basic'
      ? { kind: 'basic', user: $('login-user').value.trim(), password: $('login-password').value }
      : { kind: 'bearer', token: $('login-token').value.trim() };
  if ((creds.kind === 'basic' && (!creds.user || !creds.password)) || (creds.kind === 'bearer' && !creds.token)) {
    note.textContent = creds.kind === 'basic' ? 'Enter the admin user and the password.' : 'Enter the admin token.';
    note.hidden = false;
    return;
  }
  const submit = $('login-submit');
  submit.disabled = true;
  try {
    await api('/gc', { creds });
    saveCredentials(creds);
    $('login-password').value = '';
    $('login-token').value = '';
    if (!location.hash || location.hash === '#') history.replaceState(null, '', '#/systems');
    await render();
  } catch (err) {
    note.textContent =
      err instanceof Unauthorized
        ? creds.kind === 'basic'
          ? 'Sign-in refused: the user is not an admin of this registry, or the password is wrong.'
          : 'Sign-in refused: that is not this registry\u2019s admin token.'
        : err.message;
    note.hidden = false;
    (creds.kind === 'basic' ? $('login-password') : $('login-token')).select();
  } finally {
    submit.disabled = false;
  }
}

let resizeTimer;
function start() {
  $('login-form').addEventListener('submit', login);
  for (const radio of document.querySelectorAll('input[name="kind"]')) radio.addEventListener('change', syncKind);
  $('signout').addEventListener('click', () => signOut('Signed out.'));
  window.addEventListener('hashchange', () => render());
  // Charts are drawn for the width they have.
  let lastWidth = window.innerWidth;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (window.innerWidth !== lastWidth && credentials() && !$('confirm').open) {
        lastWidth = window.innerWidth;
        render({ quiet: true });
      }
    }, 250);
  });
  render();
}

start();
