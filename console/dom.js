// DOM helpers. Every text from the registry (names, tags, annotations) goes in as text nodes,
// never as HTML, so a hostile tag or annotation cannot run script in the console.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A coloured state label; the words carry the meaning, colour only helps. */
export function badge(text, tone = 'neutral', title) {
  return h('span', { class: ['badge', tone], title }, text);
}

/** <time> with the UTC date and, on hover, how long ago. */
export function time(iso, text) {
  return h('time', { datetime: iso ?? undefined }, text);
}

let copyCounter = 0;

/** A command in a read-only field with a Copy button (works without clipboard permission). */
export function copyBox(label, command) {
  const id = `copy-${++copyCounter}`;
  const input = h('input', { id, class: 'command', readonly: true, value: command, spellcheck: 'false' });
  input.value = command;
  const button = h(
    'button',
    {
      type: 'button',
      class: 'quiet',
      onclick: async () => {
        input.focus();
        input.select();
        let ok = false;
        try {
          await navigator.clipboard.writeText(command);
          ok = true;
        } catch {
          ok = document.execCommand?.('copy') ?? false;
        }
        announce(ok ? 'Copied to the clipboard.' : 'Selected: press Ctrl+C to copy.');
      },
    },
    'Copy',
  );
  return h('div', { class: 'copybox' }, h('label', { for: id }, label), h('div', { class: 'copyrow' }, input, button));
}

/** Announces a short message to screen readers and shows it briefly. */
export function announce(message, tone = 'good') {
  const el = document.getElementById('status');
  el.className = `toast ${tone} show`;
  el.textContent = message;
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => el.classList.remove('show'), 6000);
}

/**
 * Asks for confirmation in a modal dialog. `body` is a node (or a function building it from a
 * setter that can change the confirm button's label and enable it); `action` runs on confirm and
 * may throw: the error is shown in the dialog and it stays open. Resolves with action's result,
 * or undefined when cancelled.
 */
export function confirmDialog({ title, body, confirm, tone = 'primary', action }) {
  const dialog = document.getElementById('confirm');
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  const error = document.getElementById('confirm-error');
  const form = document.getElementById('confirm-form');
  const opener = document.activeElement;
  document.getElementById('confirm-title').textContent = title;
  error.hidden = true;
  ok.className = tone;
  ok.textContent = confirm ?? '';
  ok.disabled = false;
  ok.hidden = !confirm; // no confirm: an explanation with only a Close button
  cancel.textContent = confirm ? 'Cancel' : 'Close';
  const controls = {
    setConfirm(label, enabled = true) {
      ok.textContent = label;
      ok.disabled = !enabled;
    },
  };
  replace(document.getElementById('confirm-body'), typeof body === 'function' ? body(controls) : body);

  return new Promise((resolve) => {
    let busy = false;
    const finish = (value) => {
      form.removeEventListener('submit', onSubmit);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onEscape);
      dialog.close();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      resolve(value);
    };
    const onSubmit = async (event) => {
      event.preventDefault();
      if (busy || ok.disabled) return;
      busy = true;
      ok.disabled = true;
      ok.setAttribute('aria-busy', 'true');
      try {
        finish(await action());
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
        ok.disabled = false;
        if (err.name === 'Unauthorized') finish(Promise.reject(err));
      } finally {
        busy = false;
        ok.removeAttribute('aria-busy');
      }
    };
    const onCancel = () => !busy && finish(undefined);
    const onEscape = (event) => {
      event.preventDefault();
      onCancel();
    };
    form.addEventListener('submit', onSubmit);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onEscape);
    dialog.showModal();
    // Cancel first: a stray Enter must not restore or unpin anything.
    cancel.focus();
  });
}

/** The width a chart has in the view (charts are drawn for it, and again on resize). */
export function chartWidth() {
  return Math.max(300, Math.min(1100, document.getElementById('view').clientWidth - 2));
}
