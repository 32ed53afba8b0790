// `dr-registry points list|pin|unpin|restore` and `dr-registry status`: the recovery site's view
// of a running registry, through its admin API.
import { parseArgs } from 'node:util';
import { EXIT, usageError, type Command } from './command.js';
import { AdminClient, REMOTE_HELP, REMOTE_OPTIONS, humanSeconds, table } from './remote.js';

interface PointsAnswer {
  repository: string;
  points: Array<{ tag: string; digest: string; pushedAt: string; lastPulledAt?: string; pinned: boolean; current: boolean }>;
  pruned: Array<{ tag: string; digest: string; pushedAt: string; prunedAt: string; restorableUntil: string }>;
}

interface SystemsAnswer {
  systems: Array<{
    repository: string;
    lastPushAt: string | null;
    lastPushAgeSeconds: number | null;
    rpoSeconds: number | null;
    withinRpo: boolean | null;
    points: number;
  }>;
  outOfRpo: number;
}

const SUBCOMMANDS = {
  list: `usage: dr-registry points list REPOSITORY [connection options]

Every recovery point of REPOSITORY (oldest first per tag): tag, digest, push time, and whether it
is current or pinned; then the pruned points still restorable, with the time their data may go.

${REMOTE_HELP}
`,
  pin: `usage: dr-registry points pin REPOSITORY DIGEST [connection options]

Pins a recovery point: no retention policy ever drops it.

${REMOTE_HELP}
`,
  unpin: `usage: dr-registry points unpin REPOSITORY DIGEST [connection options]

Removes a pin; the retention policies apply to the point again.

${REMOTE_HELP}
`,
  restore: `usage: dr-registry points restore REPOSITORY DIGEST --tag TAG [connection options]

Points TAG of REPOSITORY at the recovery point DIGEST (also a pruned one still within its grace),
so \`docker pull REGISTRY/REPOSITORY:TAG\` gets it. Recorded as a new recovery point; nothing is
lost: the point TAG had stays in the history.

${REMOTE_HELP}
`,
};

export const pointsCommand: Command = {
  name: 'points',
  summary: 'list, pin, unpin and restore recovery points of a running registry',
  usage: `usage: dr-registry points list REPOSITORY | pin REPOSITORY DIGEST | unpin REPOSITORY DIGEST
                         | restore REPOSITORY DIGEST --tag TAG   [connection options]

subcommands:
  list      every recovery point of a repository, and the pruned ones still restorable
  pin       keep a point whatever the retention policies say
  unpin     let the retention policies apply to it again
  restore   point a tag at a recovery point (then docker pull it)

${REMOTE_HELP}
`,
  subcommands: SUBCOMMANDS,
  async run(args) {
    const [sub, ...rest] = args;
    if (!sub || !(sub in SUBCOMMANDS)) throw usageError(`expected list, pin, unpin or restore${sub ? `, not ${sub}` : ''} (see dr-registry points --help)`);
    const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { ...REMOTE_OPTIONS, tag: { type: 'string', short: 't' } } });
    const wanted = sub === 'list' ? 1 : 2;
    if (positionals.length !== wanted) {
      throw usageError(`points ${sub} takes ${wanted === 1 ? 'REPOSITORY' : 'REPOSITORY DIGEST'} (see dr-registry points ${sub} --help)`);
    }
    const [repository, digest] = positionals as [string, string | undefined];
    if (sub === 'restore' && !values.tag) throw usageError('points restore needs --tag TAG');
    const client = await AdminClient.connect(values);
    const json = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
    switch (sub) {
      case 'list': {
        const answer = await client.call<PointsAnswer>('GET', `/recovery-points?repository=${encodeURIComponent(repository)}`);
        if (values.json) json(answer);
        else process.stdout.write(pointsTable(answer));
        return 0;
      }
      case 'pin':
      case 'unpin': {
        await client.call('POST', `/recovery-points/${sub}`, { repository, digest });
        if (values.json) json({ repository, digest, pinned: sub === 'pin' });
        else process.stdout.write(`${sub === 'pin' ? 'pinned' : 'unpinned'} ${repository}@${digest}\n`);
        return 0;
      }
      default: {
        const answer = await client.call<{ repository: string; tag: string; digest: string }>('POST', '/recovery-points/restore', { repository, digest, tag: values.tag });
        if (values.json) json(answer);
        else process.stdout.write(`restored ${answer.repository}:${answer.tag} to ${answer.digest}; pull ${new URL(client.baseUrl).host}/${answer.repository}:${answer.tag}\n`);
        return 0;
      }
    }
  },
};

function pointsTable(answer: PointsAnswer): string {
  const rows = answer.points.map((p) => [
    p.tag,
    p.digest,
    p.pushedAt,
    [p.current ? 'current' : '', p.pinned ? 'pinned' : ''].filter(Boolean).join(', ') || 'kept',
  ]);
  for (const p of answer.pruned) rows.push([p.tag, p.digest, p.pushedAt, `pruned, restorable until ${p.restorableUntil}`]);
  if (rows.length === 0) return `${answer.repository}: no recovery points\n`;
  return table(['TAG', 'DIGEST', 'PUSHED', 'STATE'], rows) + `${answer.points.length} point(s), ${answer.pruned.length} pruned and still restorable\n`;
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'every system (repository) of a running registry: last push and RPO',
  usage: `usage: dr-registry status [connection options]

Every repository of the registry with the age of its newest recovery point against its recovery
point objective (rpo.maxAge, rpo.rules): OUT OF RPO when a system stopped pushing. Exits 8
when any watched system is out of RPO, so a cron job or a monitoring check can alert on it.

${REMOTE_HELP}, 8 a watched system out of RPO
`,
  async run(args) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: REMOTE_OPTIONS });
    if (positionals.length > 0) throw usageError(`status takes no arguments, not ${positionals.join(' ')}`);
    const client = await AdminClient.connect(values);
    const answer = await client.call<SystemsAnswer>('GET', '/systems');
    const code = answer.outOfRpo > 0 ? EXIT.outOfRpo : EXIT.ok;
    if (values.json) {
      process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
      return code;
    }
    const rows = answer.systems.map((s) => [
      s.repository,
      s.lastPushAt ?? 'never',
      s.lastPushAgeSeconds === null ? '-' : humanSeconds(s.lastPushAgeSeconds),
      s.rpoSeconds === null ? '-' : humanSeconds(s.rpoSeconds),
      String(s.points),
      s.withinRpo === null ? 'not watched' : s.withinRpo ? 'ok' : 'OUT OF RPO',
    ]);
    process.stdout.write(
      table(['SYSTEM', 'LAST PUSH', 'AGE', 'RPO', 'POINTS', 'STATE'], rows) +
        `${answer.outOfRpo} of ${answer.systems.filter((s) => s.withinRpo !== null).length} watched system(s) out of RPO\n`,
    );
    return code;
  },
};
