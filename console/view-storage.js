// Storage and GC: what the recovery points take, what dedup saves, per system; the garbage
// collector's progress and its last report.
import { api } from './api.js';
import { enc, optional } from './data.js';
import { badge, h, time } from './dom.js';
import { ago, bytes, duration, utc } from './format.js';
import { sizeBar } from './plot.js';
import { refreshLine, storageFigure } from './view-systems.js';

const PHASES = {
  lease: 'waiting for the lease (another replica may be collecting)',
  mark: 'marking what recovery points reach',
  tombstone: 'marking candidates',
  wait: 'waiting for in-flight pushes',
  remark: 'checking again',
  sweep: 'removing unreachable blobs',
  uploads: 'removing abandoned uploads',
  done: 'finishing',
};

export async function storageView(ctx) {
  const [storage, repos, gc, history] = await Promise.all([
    api('/storage'),
    api('/repositories'),
    api('/gc'),
    optional(api('/storage/history', { allow404: true })),
  ]);
  if (gc.running) ctx.refreshIn(2000);
  const saved = Math.max(0, storage.logicalBytes - storage.uniqueBytes);
  return h(
    'div',
    { class: 'storage' },
    h('div', { class: 'title-row' }, h('h1', { tabindex: '-1' }, 'Storage and garbage collection'), refreshLine(ctx)),
    h(
      'dl',
      { class: 'cards figures' },
      figure('Stored for recovery points', bytes(storage.uniqueBytes), 'every blob once'),
      figure('Without dedup', bytes(storage.logicalBytes), 'what separate copies per system would take'),
      figure('Saved by dedup', bytes(saved), `${(storage.dedupRatio ?? 1).toFixed(2)}× less`),
      figure('Everything in the store', bytes(storage.storedBytes), 'with indexes, tags and uploads in progress'),
    ),
    history?.samples ? storageFigure(history.samples) : null,
    reposTable(repos.repositories ?? []),
    gcSection(gc),
  );
}

function figure(label, value, note) {
  return h('div', { class: 'card' }, h('dt', { class: 'card-label' }, label), h('dd', { class: 'card-value' }, value), h('dd', { class: 'card-note' }, note));
}

function reposTable(repos) {
  if (!repos.length) return null;
  const max = Math.max(0, ...repos.map((r) => r.logicalBytes));
  return h(
    'table',
    { class: 'data' },
    h('caption', {}, h('h2', {}, 'Per system'), 'Size counts every blob a system links; “only here” is what no other system shares (what removing it would free).'),
    h('thead', {}, h('tr', {}, ['System', 'Size', 'Only here', 'Blobs', 'Manifests'].map((t) => h('th', { scope: 'col' }, t)))),
    h(
      'tbody',
      {},
      repos.map((r) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row', 'data-label': 'System' }, h('a', { href: `#/system/${enc(r.name)}` }, r.name)),
          h('td', { 'data-label': 'Size', class: 'num' }, bytes(r.logicalBytes), ' ', sizeBar(r.logicalBytes, r.exclusiveBytes, max)),
          h('td', { 'data-label': 'Only here', class: 'num' }, bytes(r.exclusiveBytes)),
          h('td', { 'data-label': 'Blobs', class: 'num' }, r.blobs),
          h('td', { 'data-label': 'Manifests', class: 'num' }, r.manifests),
        ),
      ),
    ),
  );
}

function gcSection(gc) {
  const report = gc.lastReport;
  return h(
    'section',
    { class: 'gc', 'aria-labelledby': 'gc-title' },
    h('h2', { id: 'gc-title' }, 'Garbage collection'),
    gc.running
      ? h(
          'div',
          { class: 'notice info' },
          h('p', {}, badge('Running', 'info'), ` ${gc.dryRun ? 'Dry run, ' : ''}${PHASES[gc.phase] ?? gc.phase ?? 'starting'}`, gc.startedAt ? [', started ', time(gc.startedAt, ago(gc.startedAt))] : ''),
          typeof gc.total === 'number' && gc.total > 0
            ? [h('label', { for: 'gc-progress' }, `${gc.done ?? 0} of ${gc.total}`), h('progress', { id: 'gc-progress', max: gc.total, value: gc.done ?? 0 })]
            : null,
        )
      : h('p', {}, badge('Idle', 'neutral'), ' No collection is running in this process.'),
    gc.lastError ? h('p', { class: 'notice bad' }, `The last collection here failed: ${gc.lastError}`) : null,
    report
      ? h(
          'dl',
          { class: 'pairs' },
          h('dt', {}, 'Last collection'),
          h('dd', {}, `${report.dryRun ? 'dry run, ' : ''}finished ${utc(report.finishedAt)} (${ago(report.finishedAt)}), took ${duration((Date.parse(report.finishedAt) - Date.parse(report.startedAt)) / 1000)}`),
          h('dt', {}, 'Space freed'),
          h('dd', {}, `${bytes(report.bytesFreed)} in ${report.blobsSwept} blobs, and ${bytes(report.uploadBytesFreed)} of abandoned uploads`),
          h('dt', {}, 'Blobs'),
          h('dd', {}, `${report.blobsScanned} scanned, ${report.blobsLive} live, ${report.blobsRescued} spared because a push used them during the run`),
          h('dt', {}, 'Recovery points'),
          h('dd', {}, `${report.prunedPointsExpired} pruned points passed their grace and are no longer restorable; ${report.manifestsRemoved} manifests removed`),
        )
      : h('p', { class: 'sub' }, 'No collection has finished yet.'),
    h('p', { class: 'hint' }, 'Collections run on the retention schedule (', h('code', {}, 'retention.interval'), ') or with ', h('code', {}, 'dr-registry gc'), '; pushes and pulls go on while they run.'),
  );
}
