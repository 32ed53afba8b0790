// Keys: whether the store is encrypted at rest, the keyring's key ids (never key material), which
// one is active, what each still wraps, and whether a rotation is unfinished or a key is missing.
import { api } from './api.js';
import { badge, h } from './dom.js';
import { count } from './format.js';

export async function keysView() {
  const keys = await api('/keys', { allow404: true });
  const title = h('h1', { tabindex: '-1' }, 'Encryption keys');
  if (!keys) return h('div', {}, title, h('p', { class: 'notice' }, 'This registry does not report key status.'));
  if (!keys.encrypted) {
    return h(
      'div',
      { class: 'keys' },
      title,
      h('p', { class: 'notice warn' }, badge('Not encrypted', 'warn'), ' The store is not encrypted at rest: encryption.keyring is not set. Anyone who can read the bucket or disk can read the images.'),
    );
  }
  return h(
    'div',
    { class: 'keys' },
    title,
    h('p', { class: 'notice good' }, badge('Encrypted', 'good'), ` Every object is encrypted at rest. New data keys are wrapped with `, h('code', {}, keys.activeKey), '.'),
    keys.missingKeys?.length
      ? h(
          'p',
          { class: 'notice bad', role: 'alert' },
          `Data keys are wrapped by ${count(keys.missingKeys.length, 'key')} this registry's keyring does not hold (${keys.missingKeys.join(', ')}): objects under them cannot be read. Restore the keyring file from its backup.`,
        )
      : null,
    keys.rotationPending
      ? h('p', { class: 'notice warn' }, 'Some data keys are still wrapped by an older key: run ', h('code', {}, 'dr-registry keys rotate'), ' to finish the rotation, then retire the old key.')
      : null,
    h(
      'table',
      { class: 'data' },
      h('caption', {}, 'Key-encryption keys in the keyring (ids only; the keys never leave the keyring file).'),
      h('thead', {}, h('tr', {}, ['Key id', 'State', 'Data keys it wraps'].map((t) => h('th', { scope: 'col' }, t)))),
      h(
        'tbody',
        {},
        (keys.keys ?? []).map((k) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row', 'data-label': 'Key id' }, h('code', {}, k.id)),
            h('td', { 'data-label': 'State' }, k.active ? badge('Active', 'good') : k.dataKeys > 0 ? badge('Still in use', 'warn') : badge('Can be retired', 'neutral')),
            h('td', { 'data-label': 'Data keys it wraps', class: 'num' }, k.dataKeys),
          ),
        ),
      ),
    ),
    h('p', { class: 'hint' }, 'Rotate with ', h('code', {}, 'dr-registry keys rotate'), ' (no object is rewritten); retire an unused key with ', h('code', {}, 'dr-registry keys retire ID'), '. See docs/encryption.md.'),
  );
}
