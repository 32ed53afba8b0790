// Systems: every repository with its last push and whether it is within its RPO, out of RPO
// first; the storage figures; storage and recovery points over time.
import { api } from './api.js';
import { enc, loadSystems, optional, pushAge } from './data.js';
import { badge, chartWidth, h, time } from './dom.js';
import { ago, bytes, count, duration, utc } from './format.js';
import { sizeBar, storageChart } from './plot.js';

const REFRESH_MS = 30_000;

export async function systemsView(ctx) {
  const [{ systems, outOfRpo, derived }, storage, history] = await Promise.all([
    loadSystems(),
    optional(api('/storage')),
    optional(api('/storage/history', { allow404: true })),
  ]);
  ctx.refreshIn(REFRESH_MS);
  const late = systems.filter((s) => s.withinRpo === false);
  const totalPoints = systems.reduce((n, s) => n + (s.points ?? 0), 0);
  return h(
    'div',
    { class: 'systems' },
    h(
      'div',
      { class: 'title-row' },
      h('h1', { tabindex: '-1' }, 'Systems'),
      refreshLine(ctx),
    ),
    rpoBanner(late, outOfRpo, derived, systems.length),
    h(
      'ul',
      { class: 'cards', 'aria-label': 'At a glance' },
      card('Systems', String(systems.length)),
      card('Out of RPO', String(outOfRpo), outOfRpo > 0 ? 'bad' : systems.length ? 'good' : undefined),
      card('Recovery points', String(totalPoints)),
      storage && card('Stored', bytes(storage.uniqueBytes), undefined, 'each blob once'),
      storage && card('Saved by dedup', bytes(Math.max(0, storage.logicalBytes - storage.uniqueBytes)), undefined, `${(storage.dedupRatio ?? 1).toFixed(2)}× less than separate copies`),
    ),
    systemsTable(systems),
    history && history.samples ? storageFigure(history.samples) : null,
  );
}

export function refreshLine(ctx) {
  const now = new Date().toISOString();
  return h(
    'p',
    { class: 'refresh' },
    'Updated ',
    time(now, utc(now).slice(11)),
    ' ',
    h('button', { type: 'button', class: 'quiet', onclick: () => ctx.rerender() }, 'Refresh'),
  );
}

function rpoBanner(late, outOfRpo, derived, total) {
  if (total === 0) {
    return h('p', { class: 'notice' }, 'No system has pushed to this registry yet. Push an image (docker push HOST/NAME:TAG) and it appears here.');
  }
  if (outOfRpo > 0) {
    return h(
      'div',
      { class: 'notice bad banner' },
      h('strong', {}, `${count(outOfRpo, 'system')} out of RPO: `),
      late.map((s, i) => [i ? ', ' : '', h('a', { href: `#/system/${enc(s.repository)}` }, s.repository)]),
      '. ',
      'They have not pushed within their expected interval: check their backup jobs before you rely on their latest point.',
    );
  }
  if (derived) {
    return h('p', { class: 'notice' }, 'This registry does not report RPOs: last pushes are read from the recovery points, and no system has an expected push interval.');
  }
  return h('p', { class: 'notice good' }, 'Every system with an RPO has pushed within it.');
}

function card(label, value, tone, note) {
  return h('li', { class: ['card', tone] }, h('span', { class: 'card-label' }, label), h('span', { class: 'card-value' }, value), note ? h('span', { class: 'card-note' }, note) : null);
}

export function rpoBadge(system) {
  if (system.withinRpo === false) {
    const over = typeof system.rpoSeconds === 'number' && pushAge(system) !== null ? pushAge(system) - system.rpoSeconds : null;
    return badge(over !== null && over > 0 ? `Out of RPO by ${duration(over)}` : 'Out of RPO', 'bad');
  }
  if (!system.lastPushAt && system.lastPushAgeSeconds == null) return badge('Never pushed', 'warn');
  if (system.withinRpo === true) return badge('Within RPO', 'good');
  return badge('No RPO set', 'neutral');
}

function systemsTable(systems) {
  if (systems.length === 0) return null;
  const max = Math.max(0, ...systems.map((s) => s.usage?.logicalBytes ?? 0));
  return h(
    'table',
    { class: 'data systems-table' },
    h('caption', {}, 'Every system (repository), those out of RPO first. Select a name for its recovery points.'),
    h(
      'thead',
      {},
      h('tr', {}, ['System', 'State', 'Last push', 'RPO', 'Points', 'Size', 'Only here'].map((t) => h('th', { scope: 'col' }, t))),
    ),
    h(
      'tbody',
      {},
      systems.map((s) =>
        h(
          'tr',
          { class: s.withinRpo === false ? 'row-bad' : undefined },
          h('th', { scope: 'row', 'data-label': 'System' }, h('a', { href: `#/system/${enc(s.repository)}` }, s.repository)),
          h('td', { 'data-label': 'State' }, rpoBadge(s)),
          h('td', { 'data-label': 'Last push' }, s.lastPushAt ? [time(s.lastPushAt, ago(s.lastPushAt)), h('span', { class: 'sub' }, utc(s.lastPushAt))] : 'never'),
          h('td', { 'data-label': 'RPO' }, typeof s.rpoSeconds === 'number' ? duration(s.rpoSeconds) : '—'),
          h('td', { 'data-label': 'Points', class: 'num' }, s.points ?? '—'),
          h('td', { 'data-label': 'Size', class: 'num' }, bytes(s.usage?.logicalBytes), ' ', sizeBar(s.usage?.logicalBytes ?? 0, s.usage?.exclusiveBytes ?? 0, max)),
          h('td', { 'data-label': 'Only here', class: 'num' }, bytes(s.usage?.exclusiveBytes)),
        ),
      ),
    ),
  );
}

export function storageFigure(samples) {
  return h(
    'figure',
    { class: 'chart-figure' },
    h('figcaption', {}, h('h2', {}, 'Storage and recovery points over time')),
    storageChart({ samples, width: chartWidth() }),
    h(
      'ul',
      { class: 'legend' },
      h('li', {}, h('span', { class: 'swatch unique', 'aria-hidden': 'true' }), 'Stored (each blob once)'),
      h('li', {}, h('span', { class: 'swatch logical', 'aria-hidden': 'true' }), 'Without dedup (each system its own copy)'),
      h('li', {}, h('span', { class: 'swatch points', 'aria-hidden': 'true' }), 'Recovery points (right axis)'),
    ),
    h(
      'p',
      { class: 'hint' },
      'Drawn from the recovery points held now, as they arrived; points already collected no longer count.',
    ),
    samplesTable(samples),
  );
}

function samplesTable(samples) {
  if (samples.length === 0) return null;
  const rows = samples.slice(-12).reverse();
  return h(
    'details',
    { class: 'as-table' },
    h('summary', {}, 'The same as a table (latest 12 changes)'),
    h(
      'table',
      { class: 'data compact' },
      h('thead', {}, h('tr', {}, ['When', 'Points', 'Stored', 'Without dedup'].map((t) => h('th', { scope: 'col' }, t)))),
      h(
        'tbody',
        {},
        rows.map((r) =>
          h(
            'tr',
            {},
            h('td', { 'data-label': 'When' }, utc(r.at)),
            h('td', { 'data-label': 'Points', class: 'num' }, r.points),
            h('td', { 'data-label': 'Stored', class: 'num' }, bytes(r.uniqueBytes)),
            h('td', { 'data-label': 'Without dedup', class: 'num' }, bytes(r.logicalBytes)),
          ),
        ),
      ),
    ),
  );
}
