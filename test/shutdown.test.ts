// `npm start`, stopped with SIGTERM as a supervisor stops it: the signal reaches the registry (the
// start script execs node), requests in flight get shutdown.drain to finish, an upload still
// running is cut and named in the log, the port closes and no process of the tree is left.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './helpers/ports.js';

const REPO = path.resolve(import.meta.dirname, '..');

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every process descending from `pid` (read from /proc). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of parents) if (parent === p) (out.push(child), walk(child));
  };
  walk(pid);
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });

describe('npm start and SIGTERM', () => {
  let root: string | undefined;
  const started: number[] = [];
  afterAll(async () => {
    for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL'); // only what this test started
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('stops the registry, cuts and names the upload in flight, and leaves nothing running', async () => {
    root = await mkdtemp(path.join(tmpdir(), 'drreg-npmstart-'));
    const port = await freePort();
    const npm = spawn('npm', ['start', '--silent'], {
      cwd: REPO,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? root,
        DRREG_LISTEN: `127.0.0.1:${port}`,
        DRREG_STORAGE_FILESYSTEM_ROOT: root,
        DRREG_STORAGE_FILESYSTEM_FSYNC: 'false',
        DRREG_SHUTDOWN_DRAIN: '1s',
        DRREG_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started.push(npm.pid!);
    let out = '';
    npm.stdout.on('data', (c: Buffer) => (out += c));
    npm.stderr.on('data', (c: Buffer) => (out += c));
    const exited = new Promise<void>((r) => npm.once('exit', () => r()));

    // npm start builds first (tsc), then serves.
    await until('the registry listening', async () => ((await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false)) ? true : undefined), 180_000);
    const tree = descendants(npm.pid!);
    started.push(...tree);
    expect(tree.length).toBeGreaterThan(0);

    // An upload that is still sending when the stop comes.
    const location = (await fetch(`http://127.0.0.1:${port}/v2/sd/app/blobs/uploads/`, { method: 'POST' })).headers.get('location')!;
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(`PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Length: ${512 * 1024 * 1024}\r\n\r\n`);
    socket.write(Buffer.alloc(1024 * 1024, 1));
    await until('the upload streaming into the store', () => (readdirSync(path.join(root!, '.tmp')).length > 0 ? true : undefined), 10_000);

    process.kill(npm.pid!, 'SIGTERM');
    await until('the port closed', async () => ((await portOpen(port)) ? undefined : true), 30_000);
    await until('every process of the tree gone', () => ([npm.pid!, ...tree].every((p) => !alive(p)) ? true : undefined), 30_000);
    await exited;
    socket.destroy();

    const lines = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; path?: string; signal?: string; upload?: boolean });
    expect(lines.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'), out).toBe(true);
    const cut = lines.filter((l) => l.msg === 'upload cut by shutdown');
    expect(cut, out).toHaveLength(1);
    expect(cut[0]!.path).toBe(location);
  }, 240_000);
});
