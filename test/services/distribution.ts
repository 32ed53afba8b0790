// CNCF Distribution 2.8 (Debian `docker-registry`), the reference registry, on an ephemeral
// loopback port with filesystem or S3 storage, for differential tests and benchmarks.
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

/** Its s3 driver on an S3 endpoint such as the test Swift. Distribution does not create the bucket. */
export interface DistributionS3 {
  endpoint: string;
  bucket: string;
  accessKey: string;
  secretKey: string;
  region?: string;
  /** Key prefix inside the bucket. */
  rootDirectory?: string;
}

/** The storage section for S3, path-style (as Swift and MinIO need). */
function s3Storage(s3: DistributionS3): string[] {
  const q = (v: string) => JSON.stringify(v); // a JSON string is a valid YAML scalar
  return [
    '  s3:',
    `    regionendpoint: ${q(s3.endpoint)}`,
    `    region: ${q(s3.region ?? 'us-east-1')}`,
    `    bucket: ${q(s3.bucket)}`,
    `    accesskey: ${q(s3.accessKey)}`,
    `    secretkey: ${q(s3.secretKey)}`,
    '    forcepathstyle: true',
    `    secure: ${s3.endpoint.startsWith('https:')}`,
    '    v4auth: true',
    ...(s3.rootDirectory ? [`    rootdirectory: ${q(s3.rootDirectory)}`] : []),
  ];
}

/**
 * Storage: filesystem in `rootDir` (default: a temp dir that stop() removes), or `s3`, or
 * `storage`, raw YAML lines of another driver indented under `storage:`.
 */
export async function startDistribution(opts: { rootDir?: string; s3?: DistributionS3; storage?: string[] } = {}): Promise<RunningDistribution> {
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
      ...(opts.storage ?? (opts.s3 ? s3Storage(opts.s3) : ['  filesystem:', `    rootdirectory: ${root}`])),
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
  const exited = new Promise((r) => child.once('exit', r));
  const running = () => child.exitCode === null && child.signalCode === null;
  const stop = async () => {
    if (running()) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000); // bounded even if it hangs
      await exited;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  for (const deadline = Date.now() + 30_000; Date.now() < deadline && running(); ) {
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return { url, hostPort: `127.0.0.1:${port}`, pid: child.pid!, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`CNCF Distribution did not answer on ${url}/v2/ within 30 s: ${stderr.trim()}`);
}
