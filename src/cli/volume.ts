// `dr-registry volume push SOURCE REF` and `volume pull REF DEST`: volume snapshots in any OCI
// registry (docs/volumes.md). SOURCE and DEST are directories or docker:VOLUME.
import { subcommandArgs } from './command.js';
import { USAGE } from './volume-spec.js';
import { spawnSync } from 'node:child_process';
import { connect } from '../client/connect.js';
import { DockerEngine } from '../client/docker-engine.js';
import { parseReference, type Reference } from '../client/reference.js';
import { pullVolume } from '../volumes/pull.js';
import { pushVolume, type PushProgress } from '../volumes/push.js';


const options = {
  json: { type: 'boolean' },
  creds: { type: 'string' },
  insecure: { type: 'boolean' },
  pause: { type: 'string', multiple: true },
  'exec-before': { type: 'string' },
  'exec-after': { type: 'string' },
  from: { type: 'string', multiple: true },
  full: { type: 'boolean' },
  parent: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/** A directory for SOURCE/DEST: docker:NAME resolves to the volume's mountpoint. */
export async function volumeDir(spec: string, create: boolean): Promise<string> {
  if (!spec.startsWith('docker:')) return spec;
  const name = spec.slice('docker:'.length);
  const engine = new DockerEngine();
  let volume = await engine.volume(name);
  if (!volume) {
    if (!create) throw new Error(`docker volume ${name} does not exist`);
    volume = await engine.createVolume(name);
  }
  if (volume.Driver !== 'local') throw new Error(`docker volume ${name} uses driver ${volume.Driver}; only local volumes can be read`);
  return volume.Mountpoint;
}

function hook(cmd: string, what: string): void {
  const r = spawnSync('sh', ['-c', cmd], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`${what} hook failed (exit ${r.status ?? r.signal}): ${cmd}`);
}

function progressPrinter(enabled: boolean) {
  let last = 0;
  return {
    update(line: string) {
      if (!enabled || Date.now() - last < 200) return;
      last = Date.now();
      process.stderr.write(`\r\x1b[K${line}`);
    },
    done() {
      if (enabled) process.stderr.write('\r\x1b[K');
    },
  };
}

export async function volumeCommand(argv: string[]): Promise<number> {
  const parsed = subcommandArgs(argv, ['push', 'pull'], options, USAGE, (n) => n === 2);
  if (typeof parsed === 'number') return parsed;
  const { sub, values, positionals } = parsed;
  const warn = (m: string) => process.stderr.write(`warning: ${m}\n`);
  const progress = progressPrinter(!values.json && process.stderr.isTTY === true);
  try {
    if (sub === 'push') {
      const [source, refText] = positionals as [string, string];
      const ref = parseReference(refText);
      if (!ref.tag || ref.digest) throw new Error('push needs REGISTRY/REPO:TAG (a tag, no digest)');
      if (values.full && values.parent !== undefined) throw new Error('--full and --parent exclude each other');
      const result = await withPauseAndHooks(values, async () => {
        const dir = await volumeDir(source, false);
        const client = connect(ref, { creds: values.creds, insecure: values.insecure, push: true, scopes: (values.from ?? []).map((r) => `repository:${r}:pull`), warn });
        return pushVolume({
          client,
          repo: ref.repository,
          tag: ref.tag!,
          dir,
          sourceLabel: source,
          useParent: !values.full,
          parent: values.parent,
          mountFrom: values.from,
          onProgress: (p: PushProgress) =>
            progress.update(`read ${mib(p.bytesDone)} of ${mib(p.bytesToRead)} changed, ${p.filesDone} files, sent ${mib(p.sentBytes)}`),
        });
      });
      progress.done();
      const out = { ...result, reference: `${ref.registry}/${result.reference}` };
      if (values.json) console.log(JSON.stringify(out));
      else
        console.log(
          `${out.reference}@${out.digest}: ${out.files} files, ${mib(out.totalBytes)}; read ${mib(out.bytesRead)}, sent ${mib(out.sentBytes)}, ${out.newChunks} new of ${out.chunks} chunks in ${out.seconds.toFixed(1)} s`,
        );
      return 0;
    }
    const [refText, destSpec] = positionals as [string, string];
    const ref: Reference = parseReference(refText);
    const dest = await volumeDir(destSpec, true);
    const client = connect(ref, { creds: values.creds, insecure: values.insecure, warn });
    const result = await pullVolume({
      client,
      repo: ref.repository,
      reference: ref.digest ?? ref.tag!,
      dest,
      onProgress: (p) => progress.update(`restored ${mib(p.bytesDone)} of ${mib(p.totalBytes)}`),
    });
    progress.done();
    if (values.json) console.log(JSON.stringify({ ...result, dest: destSpec }));
    else console.log(`${destSpec}: ${result.files} files, ${mib(result.totalBytes)} from ${result.digest} in ${result.seconds.toFixed(1)} s`);
    return 0;
  } catch (err) {
    progress.done();
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  }
}

/** Runs `work` with the containers paused and the hooks around it; always unpauses. */
async function withPauseAndHooks<T>(values: { pause?: string[]; 'exec-before'?: string; 'exec-after'?: string }, work: () => Promise<T>): Promise<T> {
  const engine = values.pause?.length ? new DockerEngine() : undefined;
  const paused: string[] = [];
  try {
    if (values['exec-before']) hook(values['exec-before'], '--exec-before');
    for (const c of values.pause ?? []) {
      await engine!.pause(c);
      paused.push(c);
    }
    return await work();
  } finally {
    for (const c of paused) await engine!.unpause(c).catch((err: Error) => process.stderr.write(`warning: cannot unpause ${c}: ${err.message}\n`));
    if (values['exec-after']) hook(values['exec-after'], '--exec-after');
  }
}
