// `dr-registry verify [REPOSITORY [DIGEST]]`: reads every blob of the recovery points asked for
// and checks it, then names the damaged blobs and the points they break. Through a running
// registry's admin API with --url (or DRREG_URL), else directly on the configured store.
import { parseArgs } from 'node:util';
import type { VerifyStatus } from '../retention/maintenance.js';
import type { VerifyReport, VerifyScope } from '../retention/verify.js';
import { EXIT, usageError, type Command } from './command.js';
import { AdminClient, REMOTE_HELP, REMOTE_OPTIONS, table } from './remote.js';

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'read and check every blob of the recovery points; name the damaged ones',
  usage: `usage: dr-registry verify [REPOSITORY [DIGEST]] [--url URL ... | --config FILE] [--json]

Reads every blob of the recovery points asked for (all, those of REPOSITORY, or the point DIGEST
of REPOSITORY), checks each against its digest and size (on an encrypted store every segment is
authenticated), and prints the damaged blobs and the recovery points they break (repository, tag,
digest, push time). Exits 7 when it finds damage.

With --url (or DRREG_URL) the registry there runs it (POST /admin/v1/verify) and this waits for
its report; without, it reads the configured store directly (safe while registries serve it).

options:
  -c, --config FILE   YAML configuration file (without --url)
${REMOTE_HELP}, 7 damage found
`,
  async run(args) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...REMOTE_OPTIONS, config: { type: 'string', short: 'c' } } });
    if (positionals.length > 2) throw usageError('verify takes at most REPOSITORY and DIGEST');
    const [repository, digest] = positionals;
    const scope: VerifyScope = { ...(repository ? { repository } : {}), ...(digest ? { digest } : {}) };
    const remote = values.url ?? process.env.DRREG_URL;
    const report = remote ? await viaApi(await AdminClient.connect(values), scope) : await locally(values.config, scope);
    if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(describe(report));
    return report.damaged.length > 0 ? EXIT.damaged : EXIT.ok;
  },
};

async function viaApi(client: AdminClient, scope: VerifyScope): Promise<VerifyReport> {
  const started = await client.call<VerifyStatus>('POST', '/verify', scope);
  let last = '';
  for (;;) {
    const status = await client.call<VerifyStatus>('GET', '/verify');
    if (!status.running && status.lastReport && started.startedAt && status.lastReport.startedAt >= started.startedAt) return status.lastReport;
    if (!status.running && status.lastError) throw new Error(`verify failed on the registry: ${status.lastError}`);
    const line = status.running ? `verify: ${status.done ?? 0}/${status.total ?? 0} points\n` : '';
    if (line && line !== last) process.stderr.write((last = line));
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function locally(configFile: string | undefined, scope: VerifyScope): Promise<VerifyReport> {
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
  try {
    const maintenance = new Maintenance(new Registry(store, registryOptions(config)), config, createLogger('silent'));
    let lastLine = 0;
    return await maintenance.runVerify(scope, (done, total) => {
      if (Date.now() - lastLine < 1000 && done < total) return;
      lastLine = Date.now();
      process.stderr.write(`verify: ${done}/${total} points\n`);
    });
  } finally {
    await store.close?.();
  }
}

function describe(r: VerifyReport): string {
  const mib = (r.bytesRead / 1024 / 1024).toFixed(1);
  let out = `checked ${r.points} recovery point(s) in ${r.repositories} repositor${r.repositories === 1 ? 'y' : 'ies'}: ${r.blobsChecked} blob(s), ${mib} MiB read\n`;
  if (r.damaged.length === 0) return `${out}no damage found\n`;
  out += `\n${r.damaged.length} DAMAGED blob(s):\n`;
  out += table(['DIGEST', 'PROBLEM', 'DETAIL'], r.damaged.map((d) => [d.digest, d.problem, d.detail]));
  out += `\n${r.brokenPoints.length} BROKEN recovery point(s) (will not restore):\n`;
  out += table(['REPOSITORY', 'TAG', 'DIGEST', 'PUSHED', 'DAMAGED BLOBS'], r.brokenPoints.map((p) => [p.repository, p.tag + (p.pruned ? ' (pruned)' : ''), p.digest, p.pushedAt, String(p.damaged.length)]));
  return out;
}
