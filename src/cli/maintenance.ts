// `dr-registry prune` and `dr-registry gc`: the same work as the admin API, from a shell, with
// progress on stderr for long runs. Safe while registries serve the same store.
import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { AuditLog } from '../audit/log.js';
import { actingAs } from '../audit/recorder.js';
import type { GcProgress, GcReport } from '../retention/gc.js';
import type { Command } from './command.js';

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

async function open(configFile: string | undefined) {
  const [{ loadConfig }, { createLogger }, { Registry }, { Maintenance }, { registryOptions }, { createStore }] = await Promise.all([
    import('../config/index.js'),
    import('../logger.js'),
    import('../registry/registry.js'),
    import('../retention/maintenance.js'),
    import('../server.js'),
    import('../storage/index.js'),
  ]);
  const config = loadConfig({ file: configFile });
  const store = await createStore(config);
  await store.check();
  const registry = new Registry(store, registryOptions(config));
  // The CLI writes its own chain of the audit trail, and applies retention.lock as a server does.
  const audit = new AuditLog(store, { flushIntervalMs: config.audit.flushInterval, retentionMs: config.audit.retention, replica: `cli-${randomUUID()}` });
  registry.setAudit(audit);
  await registry.protection.applyConfigured(config.retention.lock);
  return {
    maintenance: new Maintenance(registry, config, createLogger('warn')),
    close: async () => {
      await audit.close();
      await store.close?.();
    },
  };
}

const options = {
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
} as const;

export async function pruneCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options });
  const { maintenance, close } = await open(values.config);
  try {
    const dryRun = values['dry-run'] ?? false;
    const result = await actingAs(cliActor(), () => maintenance.prune({ dryRun }));
    if (values.json) {
      console.log(JSON.stringify(result, null, 2));
      return 0;
    }
    for (const repo of result.repositories) {
      for (const d of repo.decisions.filter((x) => !x.keep)) {
        console.log(`${dryRun ? 'drop' : 'pruned'} ${repo.name}:${d.point.tag} ${d.point.digest} pushed ${d.point.pushedAt.toISOString()}`);
      }
    }
    console.log(
      `${result.droppedPoints} point(s) ${dryRun ? 'dropped' : 'pruned'}, ${result.keptPoints} kept, ${mib(result.freedBytes)} freed` +
        (dryRun ? '' : ' once the retention grace has passed and gc runs'),
    );
    return 0;
  } finally {
    await close();
  }
}

export async function gcCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options });
  const { maintenance, close } = await open(values.config);
  try {
    const report = await actingAs(cliActor(), () => maintenance.runGc({ dryRun: values['dry-run'] ?? false, onProgress: progressPrinter() }));
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else console.log(summary(report));
    return 0;
  } finally {
    await close();
  }
}

function cliActor() {
  return { kind: 'cli' as const, user: userInfo().username };
}

/** One stderr line per phase, and at most one a second within a phase. */
function progressPrinter() {
  let phase = '';
  let last = 0;
  return (p: GcProgress) => {
    const now = Date.now();
    if (p.phase === phase && now - last < 1000) return;
    phase = p.phase;
    last = now;
    process.stderr.write(`gc: ${p.phase}${p.total > 0 ? ` ${p.done}/${p.total}` : ''}\n`);
  };
}

function summary(r: GcReport): string {
  const verb = r.dryRun ? 'would free' : 'freed';
  return [
    `${r.repositories} repositories: ${r.manifestsRemoved} manifest(s) and ${r.layerLinksRemoved} layer link(s) removed, ${r.prunedPointsExpired} pruned point(s) expired`,
    `${r.blobsScanned} blobs scanned, ${r.blobsLive} live, ${r.blobsSwept} swept, ${r.blobsRescued} spared by concurrent pushes`,
    `${verb} ${mib(r.bytesFreed + r.uploadBytesFreed)} (${mib(r.bytesFreed)} of blobs, ${r.uploadPartsSwept} stale upload part(s) ${mib(r.uploadBytesFreed)})`,
  ].join('\n');
}

export const pruneCommandSpec: Command = {
  name: 'prune',
  summary: 'apply the retention policies (or show what they drop), and the bytes freed',
  usage: `usage: dr-registry prune [--dry-run] [--config FILE] [--json]

Applies the retention policies to every repository: dropped recovery points stay restorable for
retention.grace, then \`gc\` frees their bytes. Safe while registries serve the same store.

options:
      --dry-run       show what would be dropped and the bytes it would free; change nothing
  -c, --config FILE   YAML configuration file
      --json          print JSON
`,
  run: (args) => pruneCommand(args),
};

export const gcCommandSpec: Command = {
  name: 'gc',
  summary: 'online garbage collection: removes what no kept recovery point needs',
  usage: `usage: dr-registry gc [--dry-run] [--config FILE] [--json]

Collects blobs no kept or restorable recovery point needs, while pushes go on (gc.grace,
gc.sweepDelay). Progress on stderr, the report on stdout.

options:
      --dry-run       report what would be freed; delete nothing
  -c, --config FILE   YAML configuration file
      --json          print the report as JSON
`,
  run: (args) => gcCommand(args),
};
