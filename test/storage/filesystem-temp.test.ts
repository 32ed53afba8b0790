// A registry process killed with SIGKILL mid-upload leaves the filesystem driver's temp file; the
// registry that is running removes it once it has not been written to for
// storage.filesystem.tempMaxAge, without waiting for a restart.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startRegistryProcess } from '../helpers/process.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const tempFiles = async (root: string) => {
  const dir = path.join(root, '.tmp');
  const out: Array<{ file: string; size: number }> = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const st = await stat(path.join(dir, name)).catch(() => undefined);
    if (st) out.push({ file: name, size: st.size });
  }
  return out;
};

describe('temp files of a killed process', () => {
  let root: string;
  let registry: TestRegistry | undefined;
  afterAll(async () => {
    await registry?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('are removed by the running registry within tempMaxAge', async () => {
    root = await mkdtemp(path.join(tmpdir(), 'drreg-temp-'));
    const child = await startRegistryProcess({ DRREG_STORAGE_FILESYSTEM_ROOT: root, DRREG_STORAGE_FILESYSTEM_FSYNC: 'false' });
    let socket: net.Socket | undefined;
    try {
      const location = (await fetch(`${child.url}/v2/tmp/app/blobs/uploads/`, { method: 'POST' })).headers.get('location')!;
      const port = Number(new URL(child.url).port);
      socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(`PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Length: ${256 * 1024 * 1024}\r\n\r\n`);
      socket.write(Buffer.alloc(2 * 1024 * 1024, 7));
      const partial = await until('a temp file with bytes in it', async () => (await tempFiles(root)).find((f) => f.size > 0));
      process.kill(child.pid, 'SIGKILL');
      await until('the child gone', async () => {
        try {
          process.kill(child.pid, 0);
          return undefined;
        } catch {
          return true;
        }
      });
      expect((await tempFiles(root)).map((f) => f.file)).toContain(partial.file);

      // Start-up removes only what is older than tempMaxAge: this file is not; the sweep while
      // running must.
      const started = Date.now();
      registry = await startTestRegistry({
        root,
        env: { DRREG_STORAGE_FILESYSTEM_TEMPMAXAGE: '3s', DRREG_HTTP_IDLETIMEOUT: '2s' },
      });
      expect((await tempFiles(root)).map((f) => f.file)).toContain(partial.file);
      await until('the temp file removed', async () => ((await tempFiles(root)).some((f) => f.file === partial.file) ? undefined : true), 20_000);
      // Within the bound: its age (3 s) plus one sweep interval (1.5 s), with slack for a busy machine.
      expect(Date.now() - started).toBeLessThan(15_000);
      // The running registry still takes uploads into the same temp directory.
      const blob = Buffer.from('after the sweep');
      const { createHash } = await import('node:crypto');
      const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
      expect((await fetch(`${registry.url}/v2/tmp/app/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob })).status).toBe(201);
    } finally {
      socket?.destroy();
      await child.stop();
    }
  });
});
