// One contract suite for every ObjectStore: each driver (and each decorator stack) runs these
// same cases. Each case writes under its own prefix; the last case checks nothing is left behind.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../src/storage/driver.js';
import { ObjectNotFoundError } from '../../src/storage/errors.js';
import { readAll } from '../../src/registry/objects.js';
import type { StoreFactory } from '../helpers/stores.js';

async function keysUnder(store: ObjectStore, prefix: string, startAfter?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const obj of store.list(prefix, { startAfter })) keys.push(obj.key);
  return keys;
}

const text = async (store: ObjectStore, key: string, range?: { start: number; end?: number }) =>
  (await readAll(await store.get(key, range))).toString();

/** A stream of `size` random-looking bytes in small chunks, with its content for comparison. */
function chunked(size: number): { stream: Readable; bytes: Buffer } {
  const bytes = randomBytes(size);
  const chunks: Buffer[] = [];
  for (let i = 0; i < size; i += 64 * 1024 + 7) chunks.push(bytes.subarray(i, i + 64 * 1024 + 7));
  return { stream: Readable.from(chunks), bytes };
}

export function defineStorageSuite(factory: StoreFactory): void {
  describe(`ObjectStore contract: ${factory.name}`, () => {
    let store: ObjectStore;
    let cleanup: () => Promise<void>;
    const root = `suite-${Date.now()}/`;

    beforeAll(async () => {
      ({ store, cleanup } = await factory.make());
    });
    afterAll(async () => cleanup?.());

    it('puts and gets bytes, and overwrites whole', async () => {
      const key = `${root}bytes/a`;
      expect(await store.put(key, Buffer.from('first version'))).toBe(13);
      expect(await text(store, key)).toBe('first version');
      await store.put(key, Buffer.from('second'));
      expect(await text(store, key)).toBe('second');
    });

    it.each([
      ['known', true],
      ['unknown', false],
    ])('streams a multi-MiB body of %s size', async (_name, known) => {
      const key = `${root}stream/${known ? 'known' : 'unknown'}`;
      const { stream, bytes } = chunked(12 * 1024 * 1024 + 3);
      expect(await store.put(key, stream, known ? { size: bytes.length } : {})).toBe(bytes.length);
      expect((await readAll(await store.get(key))).equals(bytes)).toBe(true);
      expect((await store.stat(key))?.size).toBe(bytes.length);
    });

    it('stores an empty object', async () => {
      const key = `${root}empty`;
      expect(await store.put(key, Readable.from([]))).toBe(0);
      expect((await store.stat(key))?.size).toBe(0);
      expect(await text(store, key)).toBe('');
    });

    it('reads inclusive ranges', async () => {
      const key = `${root}range`;
      await store.put(key, Buffer.from('0123456789'));
      expect(await text(store, key, { start: 3 })).toBe('3456789');
      expect(await text(store, key, { start: 2, end: 4 })).toBe('234');
      expect(await text(store, key, { start: 9, end: 9 })).toBe('9');
      expect(await text(store, key, { start: 0, end: 9 })).toBe('0123456789');
    });

    it('reads a large range intact (drivers may fetch it in parallel windows)', async () => {
      const key = `${root}large-range`;
      const { stream, bytes } = chunked(20 * 1024 * 1024 + 11);
      await store.put(key, stream);
      const got = await readAll(await store.get(key, { start: 1001, end: bytes.length - 1002 }));
      expect(got.equals(bytes.subarray(1001, bytes.length - 1001))).toBe(true);
      await expect(store.get(`${root}large-range-missing`, { start: 0, end: 20 * 1024 * 1024 })).rejects.toBeInstanceOf(ObjectNotFoundError);
    });

    it('reports missing objects: get throws ObjectNotFoundError, stat is undefined, delete is quiet', async () => {
      const key = `${root}missing/never`;
      await expect(store.get(key)).rejects.toBeInstanceOf(ObjectNotFoundError);
      expect(await store.stat(key)).toBeUndefined();
      await expect(store.delete(key)).resolves.toBeUndefined();
    });

    it('stat gives size and modification time', async () => {
      const key = `${root}stat`;
      const before = Date.now() - 5000;
      await store.put(key, Buffer.from('12345'));
      const info = await store.stat(key);
      expect(info?.size).toBe(5);
      expect(info!.modified.getTime()).toBeGreaterThan(before);
    });

    it('deletes', async () => {
      const key = `${root}delete/x`;
      await store.put(key, Buffer.from('x'));
      await store.delete(key);
      expect(await store.stat(key)).toBeUndefined();
      await store.delete(key);
    });

    it('lists in byte order of the whole key, with prefixes that are not directory boundaries', async () => {
      const base = `${root}order/`;
      const names = ['a/b/x', 'a-b/x', 'a/x', 'a0', 'b', 'a.b/y', 'ab', 'a~'];
      await Promise.all(names.map((n) => store.put(base + n, Buffer.from(n))));
      const sorted = [...names].sort(); // JS sorts strings by UTF-16 code units = bytes for ASCII
      expect(await keysUnder(store, base)).toEqual(sorted.map((n) => base + n));
      expect(await keysUnder(store, `${base}a/`)).toEqual([`${base}a/b/x`, `${base}a/x`]);
      expect(await keysUnder(store, `${base}a-`)).toEqual([`${base}a-b/x`]);
      expect(await keysUnder(store, `${base}a`)).toEqual(sorted.filter((n) => n.startsWith('a')).map((n) => base + n));
      expect(await keysUnder(store, `${base}zz`)).toEqual([]);
    });

    it('lists after a given key', async () => {
      const base = `${root}after/`;
      await Promise.all(['k1', 'k2', 'k3', 'k4/x'].map((n) => store.put(base + n, Buffer.from(n))));
      expect(await keysUnder(store, base, `${base}k2`)).toEqual([`${base}k3`, `${base}k4/x`]);
      expect(await keysUnder(store, base, `${base}k4/x`)).toEqual([]);
      expect(await keysUnder(store, base, `${base}a`)).toHaveLength(4);
    });

    it('lists past 1000 keys', async () => {
      const base = `${root}many/`;
      const keys = Array.from({ length: 1234 }, (_, i) => `${base}${String(i).padStart(5, '0')}`);
      for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, Buffer.from('m'))));
      expect(await keysUnder(store, base)).toEqual(keys);
      expect(await keysUnder(store, base, keys[999])).toEqual(keys.slice(1000));
    }, 120_000);

    it('concurrent writers to one key leave exactly one whole value', async () => {
      const key = `${root}race/one`;
      const values = Array.from({ length: 8 }, (_, i) => Buffer.alloc(256 * 1024 + i, String.fromCharCode(65 + i)));
      await Promise.all(values.map((v) => store.put(key, Readable.from([v.subarray(0, 1000), v.subarray(1000)]))));
      const got = await readAll(await store.get(key));
      expect(values.some((v) => v.equals(got))).toBe(true);
    });

    it('concurrent writers to different keys all land', async () => {
      const base = `${root}race/many/`;
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(`${base}${i}`, Buffer.from(`v${i}`))));
      for (let i = 0; i < 20; i++) expect(await text(store, `${base}${i}`)).toBe(`v${i}`);
    });

    it('an aborted put leaves nothing visible', async () => {
      const key = `${root}aborted/signal`;
      const controller = new AbortController();
      const source = new Readable({ read() {} });
      const put = store.put(key, source, { signal: controller.signal });
      source.push(randomBytes(6 * 1024 * 1024));
      source.push(randomBytes(6 * 1024 * 1024));
      setTimeout(() => controller.abort(new Error('client went away')), 200);
      await expect(put).rejects.toThrow();
      expect(await store.stat(key)).toBeUndefined();
    });

    it('a source stream that fails leaves nothing visible', async () => {
      const key = `${root}aborted/source`;
      let sent = 0;
      const source = new Readable({
        read() {
          if (sent >= 7 * 1024 * 1024) return this.destroy(new Error('connection reset by client'));
          sent += 1024 * 1024;
          this.push(randomBytes(1024 * 1024));
        },
      });
      await expect(store.put(key, source)).rejects.toThrow(/connection reset/);
      expect(await store.stat(key)).toBeUndefined();
    });

    it('leaves nothing behind once everything written is deleted', async () => {
      for (const key of await keysUnder(store, root)) await store.delete(key);
      expect(await keysUnder(store, root)).toEqual([]);
      expect(await keysUnder(store, '')).toEqual([]);
    }, 120_000);
  });
}
