// Shared pieces of the benchmarks: start registries as separate processes (so their memory can
// be read from /proc), stream deterministic data, push and pull blobs the way clients do.
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { freePort } from '../test/helpers/ports.js';
import { startDistribution as startReference } from '../test/services/distribution.js';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';

export interface Registry {
  name: string;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function waitUp(url: string, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) return; // with or without auth
    } catch {
      // not yet listening
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`registry at ${url} did not start: ${log()}`);
}

function stopper(child: ChildProcess, dir: string) {
  return async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await rm(dir, { recursive: true, force: true });
  };
}

/** dr-registry from the built dist/, as a child process, with DRREG_* settings. */
export async function startOurs(name: string, env: Record<string, string>): Promise<Registry> {
  const dir = await mkdtemp(path.join(tmpdir(), 'drreg-bench-'));
  const port = await freePort();
  const child = spawn(process.execPath, [path.resolve(import.meta.dirname, '../dist/main.js'), 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      DRREG_LISTEN: `127.0.0.1:${port}`,
      DRREG_STORAGE_FILESYSTEM_ROOT: path.join(dir, 'data'),
      DRREG_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (c) => (err = (err + c).slice(-2000)));
  const url = `http://127.0.0.1:${port}`;
  await waitUp(url, child, () => err);
  return { name, url, pid: child.pid!, stop: stopper(child, dir) };
}

/** CNCF Distribution 2.8 (Debian docker-registry), with filesystem storage or the given YAML lines. */
export async function startDistribution(name: string, storage: string[]): Promise<Registry> {
  const running = await startReference(storage.length ? { storage } : {});
  return { name, url: running.url, pid: running.pid, stop: running.stop };
}

/** Peak resident memory of a process so far (VmHWM), in MiB. */
export async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** `size` incompressible bytes, the same for the same seed, produced fast (AES-CTR keystream). */
export function deterministicStream(size: number, seed: string): Readable {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const chunk = Buffer.alloc(1024 * 1024);
  let left = size;
  return new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const n = Math.min(left, chunk.length);
      left -= n;
      this.push(cipher.update(chunk.subarray(0, n)));
    },
  });
}

export async function digestOfStream(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const c of stream) hash.update(c as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

function request(url: string, method: string, body?: Readable, headers: Record<string, string> = {}) {
  return new Promise<http.IncomingMessage>((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers }, resolve);
    req.on('error', reject);
    if (body) body.pipe(req);
    else req.end();
  });
}

async function drain(res: http.IncomingMessage): Promise<string> {
  let text = '';
  for await (const c of res) text += (c as Buffer).toString();
  return text;
}

/** Pushes a blob as docker does: POST, one streamed PATCH (chunked), PUT ?digest=. */
export async function pushBlob(base: string, repo: string, size: number, seed: string, digest: string): Promise<void> {
  const start = await request(`${base}/v2/${repo}/blobs/uploads/`, 'POST');
  await drain(start);
  if (start.statusCode !== 202) throw new Error(`POST upload: ${start.statusCode}`);
  const location = new URL(start.headers.location!, base).toString();
  const patch = await request(location, 'PATCH', deterministicStream(size, seed), { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' });
  const patchText = await drain(patch);
  if (patch.statusCode !== 202) throw new Error(`PATCH: ${patch.statusCode} ${patchText}`);
  const next = new URL(patch.headers.location!, base).toString();
  const put = await request(`${next}${next.includes('?') ? '&' : '?'}digest=${digest}`, 'PUT');
  const putText = await drain(put);
  if (put.statusCode !== 201) throw new Error(`PUT: ${put.statusCode} ${putText}`);
}

/** Pulls a blob as clients do (following a redirect to the object store) and returns its digest. */
export async function pullBlob(base: string, repo: string, digest: string): Promise<string> {
  let url = `${base}/v2/${repo}/blobs/${digest}`;
  for (let hops = 0; hops < 3; hops++) {
    const res = await request(url, 'GET');
    if (res.statusCode === 200) return digestOfStream(res);
    await drain(res);
    if (res.statusCode !== 307 && res.statusCode !== 302) throw new Error(`GET blob: ${res.statusCode}`);
    url = new URL(res.headers.location!, url).toString();
  }
  throw new Error('GET blob: too many redirects');
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, value };
}
