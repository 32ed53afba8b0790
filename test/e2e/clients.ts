// The real clients, run as users run them: skopeo (no daemon) and the docker CLI against the
// private daemon. Each skopeo call site gets a private cache so earlier runs cannot make it
// skip or mount blobs.
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface RunResult {
  stdout: string;
  stderr: string;
}

async function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  try {
    return await run(cmd, args, { env, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

/**
 * A skopeo with its own blob-info cache, like a fresh host, kept under `parent` (the test's work
 * dir, which the test removes). As root, skopeo uses the machine-wide cache in
 * /var/lib/containers/cache, which makes it mount blobs it saw in earlier runs; a non-zero
 * _CONTAINERS_ROOTLESS_UID moves the cache under XDG_DATA_HOME.
 */
export async function freshSkopeo(parent: string): Promise<(args: string[]) => Promise<RunResult>> {
  const home = await mkdtemp(path.join(parent, 'skopeo-'));
  const env = { ...process.env, _CONTAINERS_ROOTLESS_UID: '1000', XDG_DATA_HOME: home, XDG_RUNTIME_DIR: home, HOME: home, TMPDIR: tmpdir() };
  return (args) => exec('skopeo', args, env);
}

export function docker(host: string) {
  return (args: string[]) => exec('docker', args, { ...process.env, DOCKER_HOST: host });
}
