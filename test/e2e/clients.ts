// The real clients, run as users run them: skopeo (no daemon) and the docker CLI against the
// private daemon. Each skopeo call site gets a private cache so earlier runs cannot make it
// skip or mount blobs. Registries here are plain HTTP on 127.0.0.1: docker accepts that by
// itself, skopeo needs --tls-verify=false (--src-/--dest- for copy).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sha256, type Blob } from './images.js';

const run = promisify(execFile);
const TIMEOUT_MS = 300_000;

export interface RunResult {
  stdout: string;
  stderr: string;
}

export type Run = (args: string[]) => Promise<RunResult>;

/** A skopeo "host": runs skopeo with its own cache dir, `home`. */
export type Skopeo = Run & { home: string };

async function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  try {
    return await run(cmd, args, { env, timeout: TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { code?: number | string; signal?: string; killed?: boolean; stdout?: string; stderr?: string };
    const why = e.killed ? `killed after ${TIMEOUT_MS / 1000} s` : e.signal ? `signal ${e.signal}` : `exit code ${e.code}`;
    throw new Error(`${cmd} ${args.join(' ')} failed (${why}):\n${(e.stderr || e.stdout || '').trim().slice(-4000)}`);
  }
}

/**
 * A skopeo with its own blob-info cache, like a fresh host, kept under `parent` (the test's work
 * dir, which the test removes). As root, skopeo uses the machine-wide cache in
 * /var/lib/containers/cache, which makes it mount blobs it saw in earlier runs; a non-zero
 * _CONTAINERS_ROOTLESS_UID moves the cache under XDG_DATA_HOME. Reuse one for calls that should
 * share a cache (one host), make another for another host.
 */
export async function freshSkopeo(parent: string): Promise<Skopeo> {
  const home = await mkdtemp(path.join(parent, 'skopeo-'));
  const env = { ...process.env, _CONTAINERS_ROOTLESS_UID: '1000', XDG_DATA_HOME: home, XDG_RUNTIME_DIR: home, HOME: home, TMPDIR: tmpdir() };
  return Object.assign((args: string[]) => exec('skopeo', args, env), { home });
}

/** Copies `layoutTag` of an OCI layout to hostPort/repo:tag; `all` copies every image of an index. Returns the manifest digest written. */
export async function skopeoCopyToRegistry(
  skopeo: Skopeo,
  layoutDir: string,
  layoutTag: string,
  hostPort: string,
  repo: string,
  tag: string,
  opts: { all?: boolean } = {},
): Promise<string> {
  const digestFile = path.join(await mkdtemp(path.join(skopeo.home, 'digest-')), 'digest');
  const all = opts.all ? ['--all'] : [];
  await skopeo(['copy', ...all, '--dest-tls-verify=false', '--digestfile', digestFile, `oci:${layoutDir}:${layoutTag}`, `docker://${hostPort}/${repo}:${tag}`]);
  return (await readFile(digestFile, 'utf8')).trim();
}

/** The manifest or index exactly as the registry serves it, for `host:port/repo:tag` or `...@digest`. */
export async function skopeoInspectRaw(skopeo: Skopeo, ref: string): Promise<Blob> {
  const bytes = Buffer.from((await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout);
  return { digest: sha256(bytes), bytes };
}

/**
 * Loads `layoutTag` of an OCI layout into the daemon at `dockerHost` as `name` (repo:tag).
 * skopeo's docker-daemon transport ignores DOCKER_HOST (it then fails with "writing blob: io:
 * read/write on closed pipe"); the daemon is given with --dest-daemon-host.
 */
export async function dockerLoadFromLayout(skopeo: Skopeo, dockerHost: string, layoutDir: string, layoutTag: string, name: string): Promise<void> {
  await skopeo(['copy', '--dest-daemon-host', dockerHost, `oci:${layoutDir}:${layoutTag}`, `docker-daemon:${name}`]);
}

/**
 * The docker CLI against the daemon at `host`, with its own client config (where `docker login`
 * keeps credentials) in `configDir`: one user's machine. `input` goes to standard input.
 */
export function dockerAs(host: string, configDir: string): (args: string[], input?: string) => Promise<RunResult> {
  const env = { ...process.env, DOCKER_HOST: host, DOCKER_CONFIG: configDir };
  return (args, input) =>
    new Promise((resolve, reject) => {
      const child = execFile('docker', args, { env, timeout: TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`docker ${args.join(' ')} failed (exit code ${(err as { code?: number }).code}):\n${(stderr || stdout).trim().slice(-4000)}`));
        else resolve({ stdout, stderr });
      });
      child.stdin?.end(input ?? '');
    });
}

/** The docker CLI against the daemon at `host` (DOCKER_HOST). */
export function docker(host: string): Run {
  return (args) => exec('docker', args, { ...process.env, DOCKER_HOST: host });
}

function digestIn(output: string, pattern: RegExp, what: string): string {
  const digest = pattern.exec(output)?.[1];
  if (!digest) throw new Error(`no digest in the output of ${what}:\n${output}`);
  return digest;
}

/** Pushes and returns the manifest digest the registry accepted. */
export async function dockerPush(host: string, ref: string): Promise<string> {
  const { stdout } = await docker(host)(['push', ref]);
  return digestIn(stdout, /digest: (sha256:[0-9a-f]{64}) size:/, `docker push ${ref}`);
}

/** Pulls and returns the manifest digest the registry served. */
export async function dockerPull(host: string, ref: string): Promise<string> {
  const { stdout } = await docker(host)(['pull', ref]);
  return digestIn(stdout, /Digest: (sha256:[0-9a-f]{64})/, `docker pull ${ref}`);
}

export async function dockerRmi(host: string, ...refs: string[]): Promise<void> {
  await docker(host)(['rmi', ...refs]);
}

/** The digest docker recorded for `ref`'s repository (RepoDigests), or undefined if none. */
export async function dockerImageDigest(host: string, ref: string): Promise<string | undefined> {
  const { stdout } = await docker(host)(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref]);
  const repo = ref.replace(/:[^:/]+$/, ''); // drop the tag, keep a registry's :port
  const entry = (JSON.parse(stdout) as string[]).find((d) => d.startsWith(`${repo}@`));
  return entry?.slice(repo.length + 1);
}
