// CNCF Distribution 2.8 (Debian `docker-registry`), the reference registry, on an ephemeral
// loopback port with filesystem storage, for differential tests and benchmarks.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../helpers/ports.js';

export interface RunningDistribution {
  url: string;
  hostPort: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startDistribution(opts: { rootDir?: string } = {}): Promise<RunningDistribution> {
  const dir = await mkdtemp(path.join(tmpdir(), 'drreg-distribution-'));
  const root = opts.rootDir ?? path.join(dir, 'data');
  const port = await freePort();
  const config = path.join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${root}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const env = { ...process.env };
  delete env.AWS_CA_BUNDLE; // its s3 driver panics on start-up when this is set
  const child = spawn('docker-registry', ['serve', config], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr = (stderr + c).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`${url}/v2/`)).status === 200) return { url, hostPort: `127.0.0.1:${port}`, pid: child.pid!, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`CNCF Distribution did not start: ${stderr.trim()}`);
}
