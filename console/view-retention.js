// Retention: the policies in force and a prune dry run that shows exactly which recovery points a
// prune would drop and how much space that frees. The console never prunes for real.
import { api } from './api.js';
import { enc } from './data.js';
import { badge, h, time } from './dom.js';
import { bytes, count, policyRules, reason, shortDigest, utc } from './format.js';

export async function retentionView(ctx) {
  const policies = await api('/retention/policies');
  const result = h('div', { id: 'dry-run-result', 'aria-live': 'polite' });
  const run = h(
    'button',
    {
      type: 'button',
      class: 'primary',
      id: 'dry-run',
      onclick: async (event) => {
        const button = event.currentTarget;
        button.disabled = true;
        result.replaceChildren(h('p', { class: 'loading' }, 'Planning the prune…'));
        try {
          result.replaceChildren(dryRunResult(await api('/prune', { method: 'POST', body: { dryRun: true } })));
        } catch (err) {
          if (err.name === 'Unauthorized') return ctx.rerender();
          result.replaceChildren(h('p', { class: 'notice bad', role: 'alert' }, err.message));
        } finally {
          button.disabled = false;
        }
      },
    },
    'Run a prune dry run',
  );
  return h(
    'div',
    { class: 'retention' },
    h('h1', { tabindex: '-1' }, 'Retention'),
    h(
      'p',
      {},
      'Policies decide which recovery points a prune keeps. The first policy whose pattern matches a system applies to it; a system no policy matches keeps everything. ',
      'Pinned points, locked points and the point each tag points at are always kept.',
    ),
    policiesTable(policies),
    h('h2', {}, 'What would a prune do now?'),
    h('p', {}, 'A dry run plans the prune and changes nothing. Pruned points stay restorable for the retention grace; their space comes back when garbage collection runs after that.'),
    run,
    result,
  );
}

function policiesTable({ source, policies }) {
  const from = source === 'api' ? 'set through the admin API (stored in the registry)' : 'from the configuration file';
  if (!policies?.length) return h('p', { class: 'notice' }, `No retention policy (${from}): every recovery point is kept.`);
  return h(
    'table',
    { class: 'data' },
    h('caption', {}, `${count(policies.length, 'policy', 'policies')}, ${from}, in the order they are tried.`),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Systems matching'), h('th', { scope: 'col' }, 'Keep'))),
    h(
      'tbody',
      {},
      policies.map((p) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row', 'data-label': 'Systems matching' }, h('code', {}, p.repositories)),
          h('td', { 'data-label': 'Keep' }, policyRules(p).join(' · ') || '—'),
        ),
      ),
    ),
  );
}

function dryRunResult(r) {
  const affected = r.repositories.filter((repo) => repo.points.some((p) => !p.keep));
  return h(
    'section',
    { class: 'dry-run', 'aria-labelledby': 'dry-run-title' },
    h('h3', { id: 'dry-run-title' }, 'Dry run result'),
    h(
      'p',
      { class: ['notice', r.droppedPoints ? 'warn' : 'good'] },
      r.droppedPoints
        ? `A prune now would drop ${count(r.droppedPoints, 'recovery point')} in ${count(affected.length, 'system')} and keep ${r.keptPoints}. ` +
            `${bytes(r.freedBytes)} would be freed once the retention grace passes and garbage collection runs. Nothing has been changed.`
        : `A prune now would drop nothing: all ${count(r.keptPoints, 'recovery point')} are kept. Nothing has been changed.`,
    ),
    r.repositories.map((repo) => repoDecisions(repo)),
  );
}

function repoDecisions(repo) {
  const dropped = repo.points.filter((p) => !p.keep);
  const kept = repo.points.filter((p) => p.keep);
  return h(
    'div',
    { class: 'repo-decisions' },
    h(
      'h4',
      {},
      h('a', { href: `#/system/${enc(repo.name)}` }, repo.name),
      ' ',
      repo.policy ? h('span', { class: 'sub' }, `policy ${repo.policy}`) : h('span', { class: 'sub' }, 'no policy: all kept'),
    ),
    dropped.length
      ? h(
          'table',
          { class: 'data compact' },
          h('caption', {}, `Would go: ${count(dropped.length, 'point')}`),
          h('thead', {}, h('tr', {}, ['Pushed', 'Tag', 'Digest', 'Decision'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, dropped.map((p) => decisionRow(p))),
        )
      : h('p', { class: 'sub' }, `Nothing would go; ${count(kept.length, 'point')} kept.`),
    dropped.length && kept.length
      ? h(
          'details',
          {},
          h('summary', {}, `Kept: ${count(kept.length, 'point')}, and why`),
          h(
            'table',
            { class: 'data compact' },
            h('thead', {}, h('tr', {}, ['Pushed', 'Tag', 'Digest', 'Decision'].map((t) => h('th', { scope: 'col' }, t)))),
            h('tbody', {}, kept.map((p) => decisionRow(p))),
          ),
        )
      : null,
  );
}

function decisionRow(p) {
  return h(
    'tr',
    { class: p.keep ? undefined : 'row-drop', dataset: { digest: p.digest } },
    h('td', { 'data-label': 'Pushed' }, time(p.pushedAt, utc(p.pushedAt))),
    h('td', { 'data-label': 'Tag' }, h('code', {}, p.tag)),
    h('td', { 'data-label': 'Digest' }, h('code', { title: p.digest }, shortDigest(p.digest))),
    h('td', { 'data-label': 'Decision' }, p.keep ? badge(`Kept: ${p.reasons.map(reason).join(', ') || 'no policy'}`, 'good') : badge('Would be pruned', 'bad')),
  );
}
