// `dr-registry audit list|verify`: the audit trail from a shell, read from the store itself.
import { parseArgs } from 'node:util';
import { listAudit, verifyAudit, type AuditFilter } from '../audit/log.js';
import type { Command } from './command.js';

const USAGE = 'usage: dr-registry audit list [--since TIME] [--until TIME] [--action A] [--actor NAME] [--repository R] [--limit N] [--json] | verify [--json]  [--config FILE]\n';

export async function auditCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      since: { type: 'string' },
      until: { type: 'string' },
      action: { type: 'string' },
      actor: { type: 'string' },
      repository: { type: 'string' },
      limit: { type: 'string' },
    },
  });
  if (sub !== 'list' && sub !== 'verify') {
    process.stderr.write(USAGE);
    return 2;
  }
  const [{ loadConfig }, { createStore }] = await Promise.all([import('../config/index.js'), import('../storage/index.js')]);
  const config = loadConfig({ file: values.config });
  const store = await createStore(config);
  await store.check();
  try {
    if (sub === 'verify') {
      const result = await verifyAudit(store, { retentionMs: config.audit.retention });
      if (values.json) console.log(JSON.stringify(result, null, 2));
      else {
        for (const p of result.problems) {
          console.log(`${p.key}${p.seq !== undefined ? ` record ${p.seq}` : ''}${p.action ? ` (${p.action} at ${p.at})` : ''}: ${p.problem}`);
        }
        console.log(`${result.chains} chain(s), ${result.segments} segment(s), ${result.records} record(s): ${result.ok ? 'intact' : `${result.problems.length} problem(s)`}`);
      }
      return result.ok ? 0 : 1;
    }
    const filter: AuditFilter = {};
    for (const name of ['since', 'until'] as const) {
      const v = values[name];
      if (v === undefined) continue;
      const d = new Date(v);
      if (Number.isNaN(d.getTime())) {
        process.stderr.write(`dr-registry: --${name} must be a time like 2026-11-30T00:00:00Z\n`);
        return 2;
      }
      filter[name] = d;
    }
    if (values.action) filter.action = values.action;
    if (values.actor) filter.actor = values.actor;
    if (values.repository) filter.repository = values.repository;
    if (values.limit) filter.limit = Number(values.limit);
    const records = await listAudit(store, filter);
    if (values.json) console.log(JSON.stringify(records, null, 2));
    else {
      for (const r of records) {
        const who = r.actor.user ?? r.actor.kind;
        const what = [r.repository, r.tag && `:${r.tag}`, r.digest && `@${r.digest}`].filter(Boolean).join('');
        console.log(`${r.at} ${r.outcome.padEnd(6)} ${r.action.padEnd(16)} ${who}${r.actor.address ? ` from ${r.actor.address}` : ''} ${what}${r.detail ? ` ${JSON.stringify(r.detail)}` : ''}`);
      }
    }
    return 0;
  } finally {
    await store.close?.();
  }
}

export const auditCommandSpec: Command = {
  name: 'audit',
  summary: 'the audit trail, and whether any record was edited or removed (docs/audit.md)',
  usage: `${USAGE}
Reads the audit trail from the store of the configuration (safe while registries serve it).

subcommands:
  list      the records, newest last; filters: --since/--until (ISO time), --action, --actor,
            --repository, --limit N; --json prints them as JSON
  verify    checks every chain's hashes and names any record edited or removed

options:
  -c, --config FILE   YAML configuration file
`,
  run: auditCommand,
};
