// One system: its recovery points on a time line and in a table (kept, pinned, locked, pruned but
// still restorable), each with its size, the bytes only it holds, its layers and volume
// snapshots; pin, unpin and restore, each after a dialog that says exactly what will happen.
import { api } from './api.js';
import { enc, isLocked, isVolume, lockedUntil, optional, pushAge, volumesOf } from './data.js';
import { announce, badge, chartWidth, confirmDialog, copyBox, h, time } from './dom.js';
import { ago, bytes, count, duration, shortDigest, utc } from './format.js';
import { legendMarker, timelineChart } from './plot.js';
import { refreshLine, rpoBadge } from './view-systems.js';

const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export async function systemView(name, ctx) {
  if (!name) throw new Error('No system named in the address.');
  const [rp, details, reported] = await Promise.all([
    api(`/recovery-points?repository=${enc(name)}`),
    optional(api(`/recovery-points/details?repository=${enc(name)}`, { allow404: true })),
    optional(api('/systems', { allow404: true })),
  ]);
  const detailOf = new Map((details?.points ?? []).map((d) => [d.digest, d]));
  const now = Date.now();
  const entries = [
    ...(rp.points ?? []).map((p, i) => ({ ...p, key: `p${i}`, pruned: false, locked: isLocked(p, now) })),
    ...(rp.pruned ?? []).map((p, i) => ({ ...p, key: `x${i}`, pruned: true, current: false, pinned: false, locked: false })),
  ].sort((a, b) => Date.parse(b.pushedAt) - Date.parse(a.pushedAt) || Number(b.current) - Number(a.current));
  const system = reported?.systems?.find((s) => s.repository === name) ?? derive(name, rp);
  const host = location.host;

  const view = { name, ctx, entries, detailOf, host };
  const flash = ctx.takeFlash();
  const kept = entries.filter((e) => !e.pruned);
  const pinned = new Set(kept.filter((e) => e.pinned).map((e) => e.digest)).size;
  const locked = kept.filter((e) => e.locked).length;
  const pruned = entries.filter((e) => e.pruned).length;

  return h(
    'div',
    { class: 'system' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/systems' }, 'Systems'), ' › ', name),
    h('div', { class: 'title-row' }, h('h1', { tabindex: '-1' }, name), refreshLine(ctx)),
    h(
      'p',
      { class: 'facts' },
      rpoBadge(system),
      ' Last push ',
      system.lastPushAt ? [time(system.lastPushAt, ago(system.lastPushAt)), ` (${utc(system.lastPushAt)})`] : 'never',
      typeof system.rpoSeconds === 'number' ? `; RPO ${duration(system.rpoSeconds)}` : '; no RPO set',
      pushAge(system) !== null && typeof system.rpoSeconds === 'number' && system.withinRpo !== false
        ? `, next push due ${duration(Math.max(0, system.rpoSeconds - pushAge(system)))} from now`
        : '',
      '.',
    ),
    h(
      'p',
      { class: 'facts' },
      `${count(kept.length, 'recovery point')} kept`,
      pinned ? ` · ${count(pinned, 'pinned digest')}` : '',
      locked ? ` · ${locked} locked` : '',
      ` · ${count(pruned, 'pruned point')} still restorable`,
      details ? '' : ' · sizes unavailable',
    ),
    flash ? flashPanel(flash) : null,
    entries.length ? timelineFigure(view) : h('p', { class: 'notice' }, 'This system has no recovery points.'),
    entries.length ? pointsTable(view) : null,
  );
}

function derive(name, rp) {
  const times = (rp.points ?? []).map((p) => Date.parse(p.pushedAt));
  const last = times.length ? new Date(Math.max(...times)).toISOString() : null;
  return { repository: name, lastPushAt: last, lastPushAgeSeconds: null, rpoSeconds: null, withinRpo: null };
}

function flashPanel(flash) {
  return h(
    'div',
    { class: 'notice good flash', role: 'status' },
    h('p', {}, h('strong', {}, flash.title), ' ', flash.text),
    flash.command ? copyBox('Pull it with', flash.command) : null,
  );
}

function timelineFigure(view) {
  const select = (key) => {
    const row = document.getElementById(`row-${key}`);
    if (!row) return;
    row.scrollIntoView({ block: 'center' });
    row.focus();
  };
  return h(
    'figure',
    { class: 'chart-figure' },
    h('figcaption', {}, h('h2', {}, 'Timeline')),
    h(
      'div',
      { class: 'chart-scroll' },
      timelineChart({
        entries: view.entries.map((e) => ({ ...e, at: Date.parse(e.pushedAt), label: markerLabel(e, view.detailOf.get(e.digest)) })),
        width: chartWidth(),
        onSelect: select,
      }),
    ),
    h(
      'ul',
      { class: 'legend' },
      h('li', {}, legendMarker({}), 'Kept'),
      h('li', {}, legendMarker({ current: true }), 'Current (the tag points here)'),
      h('li', {}, legendMarker({ pinned: true }), 'Pinned'),
      h('li', {}, legendMarker({ locked: true }), 'Locked'),
      h('li', {}, legendMarker({ pruned: true }), 'Pruned, still restorable'),
    ),
  );
}

function markerLabel(e, d) {
  const states = stateWords(e).join(', ');
  return `${e.tag} · ${shortDigest(e.digest)} · ${utc(e.pushedAt)} · ${states}${d?.size !== undefined ? ` · ${bytes(d.size)}` : ''}`;
}

function stateWords(e) {
  const words = [];
  if (e.pruned) words.push(`pruned, restorable until ${utc(e.restorableUntil)}`);
  else words.push('kept');
  if (e.current) words.push('current');
  if (e.pinned) words.push('pinned');
  if (e.locked) words.push(lockedUntil(e) ? `locked until ${utc(lockedUntil(e))}` : 'locked');
  return words;
}

function stateBadges(e) {
  const out = [];
  if (e.current) out.push(badge('Current', 'info', `${e.tag} points at this digest now`));
  if (e.pruned) out.push(badge('Pruned', 'warn'), h('span', { class: 'sub' }, `restorable until ${utc(e.restorableUntil)}`));
  else out.push(badge('Kept', 'good'));
  if (e.pinned) out.push(badge('Pinned', 'pin', 'Retention never prunes this digest'));
  if (e.locked) {
    out.push(badge('Locked', 'lock', 'Nobody can prune, unpin or delete it until the lock ends'));
    if (lockedUntil(e)) out.push(h('span', { class: 'sub' }, `until ${utc(lockedUntil(e))}`));
  }
  return out;
}

function contentSummary(d, e) {
  if (!d) return '—';
  if (d.missing) return 'data collected';
  const parts = [];
  if (isVolume(d)) parts.push(`volume snapshot · ${count(d.layers?.length || d.manifests?.length || 0, 'part')}`);
  else if (d.manifests?.length) parts.push(`index of ${count(d.manifests.length, 'image')}`);
  else parts.push(count(d.layers?.length ?? 0, 'layer'));
  const volumes = volumesOf(e, d);
  if (volumes.length) parts.push(count(volumes.length, 'volume snapshot'));
  const others = (d.referrers?.length ?? 0) - (d.referrers ?? []).filter((r) => volumes.includes(r)).length;
  if (others > 0) parts.push(count(others, 'referrer'));
  return parts.join(' · ');
}

function pointsTable(view) {
  return h(
    'table',
    { class: 'data points-table' },
    h('caption', {}, 'Recovery points, newest first. Sizes count every blob a point reaches; “only this point” is what dropping it would free.'),
    h(
      'thead',
      {},
      h('tr', {}, ['Pushed', 'Tag', 'Digest', 'State', 'Size', 'Only this point', 'Content', 'Actions'].map((t) => h('th', { scope: 'col' }, t))),
    ),
    view.entries.map((e) => pointRows(view, e)),
  );
}

function pointRows(view, e) {
  const d = view.detailOf.get(e.digest);
  const detailId = `detail-${e.key}`;
  const toggle = h(
    'button',
    {
      type: 'button',
      class: 'quiet',
      'aria-expanded': 'false',
      'aria-controls': detailId,
      onclick: (event) => {
        const row = document.getElementById(detailId);
        const open = row.hidden;
        row.hidden = !open;
        event.currentTarget.setAttribute('aria-expanded', String(open));
        event.currentTarget.textContent = open ? 'Hide details' : 'Details';
      },
    },
    'Details',
  );
  const actions = [];
  if (!e.pruned) {
    actions.push(
      e.pinned
        ? h('button', { type: 'button', onclick: () => unpin(view, e) }, 'Unpin')
        : h('button', { type: 'button', onclick: () => pin(view, e) }, 'Pin'),
    );
  }
  actions.push(h('button', { type: 'button', class: 'restore', onclick: () => restore(view, e) }, 'Restore…'));
  actions.push(toggle);
  return h(
    'tbody',
    { class: ['point', e.pruned ? 'is-pruned' : null, e.current ? 'is-current' : null] },
    h(
      'tr',
      { id: `row-${e.key}`, tabindex: '-1', dataset: { digest: e.digest, tag: e.tag } },
      h('td', { 'data-label': 'Pushed' }, time(e.pushedAt, utc(e.pushedAt)), h('span', { class: 'sub' }, ago(e.pushedAt))),
      h('td', { 'data-label': 'Tag' }, h('code', {}, e.tag)),
      h('td', { 'data-label': 'Digest' }, h('code', { title: e.digest }, shortDigest(e.digest))),
      h('td', { 'data-label': 'State', class: 'states' }, stateBadges(e)),
      h('td', { 'data-label': 'Size', class: 'num' }, d?.size !== undefined ? bytes(d.size) : '—'),
      h('td', { 'data-label': 'Only this point', class: 'num' }, d?.uniqueBytes !== undefined ? bytes(d.uniqueBytes) : '—'),
      h('td', { 'data-label': 'Content' }, contentSummary(d, e)),
      h('td', { 'data-label': 'Actions', class: 'actions' }, actions),
    ),
    h('tr', { id: detailId, class: 'detail', hidden: true }, h('td', { colspan: '8' }, pointDetail(view, e, d))),
  );
}

function pointDetail(view, e, d) {
  const ref = `${view.host}/${view.name}@${e.digest}`;
  const volumes = volumesOf(e, d);
  return h(
    'div',
    { class: 'detail-body' },
    h(
      'dl',
      { class: 'pairs' },
      h('dt', {}, 'Digest'),
      h('dd', {}, h('code', { class: 'wrap' }, e.digest)),
      h('dt', {}, 'State'),
      h('dd', {}, stateWords(e).join(', ')),
      e.lastPulledAt ? [h('dt', {}, 'Last pulled'), h('dd', {}, `${utc(e.lastPulledAt)} (${ago(e.lastPulledAt)})`)] : null,
      d?.mediaType ? [h('dt', {}, 'Media type'), h('dd', {}, h('code', {}, d.mediaType))] : null,
      d?.artifactType && d.artifactType !== d.config?.mediaType ? [h('dt', {}, 'Artifact type'), h('dd', {}, h('code', {}, d.artifactType))] : null,
      d?.config ? [h('dt', {}, 'Config'), h('dd', {}, h('code', { title: d.config.digest }, shortDigest(d.config.digest)), ` · ${bytes(d.config.size)}`)] : null,
    ),
    copyBox('Pull this point by digest', `docker pull ${ref}`),
    d?.layers?.length ? descriptorList(isVolume(d) ? 'Volume snapshot parts' : 'Layers', d.layers) : null,
    d?.manifests?.length ? descriptorList(isVolume(d) ? 'Volume snapshot parts' : 'Images in this index', d.manifests) : null,
    volumes.length ? descriptorList('Volume snapshots', volumes) : null,
    d?.referrers?.length ? descriptorList('Referrers (signatures, SBOMs, attachments)', d.referrers) : null,
    d?.annotations && Object.keys(d.annotations).length
      ? [h('h3', {}, 'Annotations'), h('dl', { class: 'pairs' }, Object.entries(d.annotations).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))]
      : null,
    d?.missing ? h('p', { class: 'notice warn' }, 'The garbage collector has removed this point’s data: it can no longer be restored.') : null,
  );
}

function descriptorList(title, items) {
  return [
    h('h3', {}, title),
    h(
      'ol',
      { class: 'descriptors' },
      items.map((x) =>
        h(
          'li',
          {},
          h('code', { title: x.digest ?? '' }, shortDigest(x.digest ?? x.name ?? '')),
          x.name ? ` ${x.name}` : '',
          typeof x.size === 'number' ? ` · ${bytes(x.size)}` : '',
          x.platform ? ` · ${[x.platform.os, x.platform.architecture, x.platform.variant].filter(Boolean).join('/')}` : '',
          x.artifactType || x.mediaType ? h('span', { class: 'sub' }, x.artifactType ?? x.mediaType) : null,
        ),
      ),
    ),
  ];
}

async function pin(view, e) {
  const done = await confirmDialog({
    title: 'Pin this recovery point?',
    body: h(
      'div',
      {},
      h('p', {}, 'Pin ', h('code', {}, shortDigest(e.digest)), ` in ${view.name} (tag ${e.tag}, pushed ${utc(e.pushedAt)}).`),
      h('p', {}, 'Retention will keep every recovery point of this digest in this system, whatever the policies say, until you unpin it. No tag moves and nothing is pulled or deleted.'),
    ),
    confirm: `Pin ${shortDigest(e.digest)}`,
    action: () => api('/recovery-points/pin', { method: 'POST', body: { repository: view.name, digest: e.digest } }).then(() => true),
  }).catch(onAuthFailure(view));
  if (!done) return;
  announce(`Pinned ${shortDigest(e.digest)} in ${view.name}.`);
  view.ctx.rerender();
}

async function unpin(view, e) {
  if (e.locked) {
    await confirmDialog({
      title: 'This point is locked',
      body: h(
        'p',
        {},
        h('code', {}, shortDigest(e.digest)),
        ` is locked${lockedUntil(e) ? ` until ${utc(lockedUntil(e))}` : ''}: the registry refuses to unpin it before then, whoever asks. Nothing was changed.`,
      ),
      confirm: null,
      action: async () => undefined,
    });
    return;
  }
  const done = await confirmDialog({
    title: 'Unpin this recovery point?',
    body: h(
      'div',
      {},
      h('p', {}, 'Unpin ', h('code', {}, shortDigest(e.digest)), ` in ${view.name} (tag ${e.tag}, pushed ${utc(e.pushedAt)}).`),
      h(
        'p',
        {},
        'Retention policies apply to it again: the next prune drops it if no rule keeps it. A pruned point stays restorable for the retention grace, then garbage collection removes its data. No tag moves now.',
      ),
    ),
    confirm: `Unpin ${shortDigest(e.digest)}`,
    tone: 'danger',
    action: () => api('/recovery-points/unpin', { method: 'POST', body: { repository: view.name, digest: e.digest } }).then(() => true),
  }).catch(onAuthFailure(view));
  if (!done) return;
  announce(`Unpinned ${shortDigest(e.digest)} in ${view.name}.`);
  view.ctx.rerender();
}

async function restore(view, e) {
  const inputId = 'restore-tag';
  const result = await confirmDialog({
    title: `Restore a recovery point of ${view.name}`,
    body: (controls) => {
      const input = h('input', { id: inputId, value: e.tag, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'restore-what' });
      input.value = e.tag;
      const what = h('div', { id: 'restore-what', class: 'what', 'aria-live': 'polite' });
      const pull = h('div');
      const update = () => {
        const tag = input.value.trim();
        what.replaceChildren();
        pull.replaceChildren();
        if (!TAG_RE.test(tag)) {
          what.append(h('p', { class: 'notice bad' }, 'A tag is 1 to 128 letters, digits, “_”, “.” or “-”, not starting with “.” or “-”.'));
          controls.setConfirm('Restore', false);
          return;
        }
        what.append(...restoreWhat(view, e, tag));
        pull.append(copyBox('Then pull it with', `docker pull ${view.host}/${view.name}:${tag}`));
        controls.setConfirm(`Restore ${view.name}:${tag}`, true);
      };
      input.addEventListener('input', update);
      const node = h(
        'div',
        {},
        h('p', {}, 'Recovery point ', h('code', { title: e.digest }, shortDigest(e.digest)), `, pushed ${utc(e.pushedAt)} (${ago(e.pushedAt)}) as ${e.tag}.`),
        h('label', { for: inputId }, 'Tag to point at it'),
        input,
        what,
        pull,
      );
      update();
      return node;
    },
    confirm: 'Restore',
    action: async () => {
      const tag = document.getElementById(inputId).value.trim();
      const answer = await api('/recovery-points/restore', { method: 'POST', body: { repository: view.name, tag, digest: e.digest } });
      return { tag: answer?.tag ?? tag, digest: answer?.digest ?? e.digest };
    },
  }).catch(onAuthFailure(view));
  if (!result) return;
  const command = `docker pull ${view.host}/${view.name}:${result.tag}`;
  announce(`Restored: ${view.name}:${result.tag} now points at ${shortDigest(result.digest)}.`);
  view.ctx.setFlash({ title: 'Restored.', text: `${view.name}:${result.tag} now points at ${result.digest}.`, command });
  view.ctx.rerender();
}

/** Exactly what a restore of `e` to `tag` will do, from what the tag points at now. */
function restoreWhat(view, e, tag) {
  const current = view.entries.find((x) => !x.pruned && x.current && x.tag === tag);
  const out = [];
  if (!current) {
    out.push(h('p', {}, `${view.name}:${tag} does not exist now: it will be created, pointing at this recovery point.`));
  } else if (current.digest === e.digest) {
    out.push(h('p', {}, `${view.name}:${tag} already points at this digest: the restore only records a new recovery point.`));
  } else {
    out.push(
      h(
        'p',
        {},
        `${view.name}:${tag} will point at `,
        h('code', {}, shortDigest(e.digest)),
        ' instead of ',
        h('code', {}, shortDigest(current.digest)),
        ` (pushed ${utc(current.pushedAt)}). Clients that pull ${tag} get the restored point from then on.`,
      ),
    );
  }
  out.push(
    h(
      'p',
      {},
      `Nothing is deleted: the restore is recorded as a new recovery point of ${tag}, and the point it replaces stays in the history, so you can restore it back.`,
      e.pruned ? ' This point was pruned: restoring it brings it back before garbage collection removes its data.' : '',
    ),
  );
  return out;
}

function onAuthFailure(view) {
  return (err) => {
    if (err?.name === 'Unauthorized') view.ctx.rerender();
    else announce(err?.message ?? String(err), 'bad');
    return undefined;
  };
}
