// A registry as a separate OS process, started through the CLI exactly as operators start it.
// For tests where "another process" matters: replicas share nothing but the store.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';

export interface RegistryProcess {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'src/main.ts');

export interface BuiltRegistry {
  /** dist/main.js of the build. */
  main: string;
  remove(): Promise<void>;
}

/**
 * The registry compiled as `npm run build` compiles it, for tests that measure the process
 * operators run (`node dist/main.js`, not tsx). Built into a temporary directory laid out like the
 * checkout (package.json, node_modules and console/ beside dist/), so the checkout's dist/ is
 * left alone.
 */
export async function buildRegistry(): Promise<BuiltRegistry> {
  const dir = await mkdtemp(path.join(tmpdir(), 'drreg-build-'));
  for (const entry of ['package.json', 'node_modules', 'console']) await symlink(path.join(ROOT, entry), path.join(dir, entry));
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', path.join(dir, 'dist')], { cwd: ROOT });
  return { main: path.join(dir, 'dist/main.js'), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Starts the registry from source under tsx, or from `main` (a build's dist/main.js) as operators do. */
export async function startRegistryProcess(env: Record<string, string>, main?: string): Promise<RegistryProcess> {
  const port = await freePort();
  const args = main ? [main, 'serve'] : ['--import', 'tsx', MAIN, 'serve'];
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', DRREG_LISTEN: `127.0.0.1:${port}`, DRREG_LOG_LEVEL: 'warn', DRREG_RETENTION_LOCK: '0', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr = (stderr + c).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  };
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`${url}/v2/`)).ok) return { url, pid: child.pid!, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`registry process did not start: ${stderr}`);
}
