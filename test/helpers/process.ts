// A registry as a separate OS process, started through the CLI exactly as operators start it.
// For tests where "another process" matters: replicas share nothing but the store.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { freePort } from './ports.js';

export interface RegistryProcess {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');

export async function startRegistryProcess(env: Record<string, string>): Promise<RegistryProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve'], {
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
