// One contract suite for every ObjectStore (src/storage/driver.ts): each driver, and each decorator
// stack, runs these same cases. Each case writes under its own prefix; the last case deletes
// everything the suite wrote and fails if the driver left anything behind (temp files, pending
// multipart uploads, segments), as its test file's leftovers() sees them.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ByteRange, ObjectStore } from '../../src/storage/driver.js';
import { ObjectNotFoundError, StorageUnavailableError } from '../../src/storage/errors.js';
import { readAll } from '../../src/storage/streams.js';

export interface SuiteStore {
  store: ObjectStore;
  /** Removes whatever backs the store (temp dir, bucket). */
  cleanup(): Promise<void>;
  /** What the backend still holds, seen from outside the driver: must be empty at the end. */
  leftovers(): Promise<string[]>;
}

/** The older factory form (test/helpers/stores.ts); without leftovers(), the store's own listing is used. */
interface StoreFactory {
  name: string;
  make(): Promise<{ store: ObjectStore; cleanup(): Promise<void>; leftovers?(): Promise<string[]> }>;
}

const MiB = 1024 * 1024;

export function defineStorageSuite(name: string, makeStore: () => Promise<SuiteStore>): void;
export function defineStorageSuite(factory: StoreFactory): void;
export function defineStorageSuite(nameOrFactory: string | StoreFactory, makeStore?: () => Promise<SuiteStore>): void {
  if (typeof nameOrFactory === 'string') return defineCases(nameOrFactory, makeStore!);
  defineCases(nameOrFactory.name, async () => {
    const made = await nameOrFactory.make();
    return { leftovers: () => keysUnder(made.store, ''), ...made };
  });
}

function defineCases(name: string, makeStore: () => Promise<SuiteStore>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let made: SuiteStore | undefined;
    let store: ObjectStore;
    const run = `suite-${Date.now()}-${randomBytes(3).toString('hex')}`;
    /** Each case's own prefix, so no case sees another's keys. */
    const prefix = (name: string) => `${run}/${name}/`;

    beforeAll(async () => {
      made = await makeStore();
      store = made.store;
    });
    afterAll(async () => {
      await made?.store.close?.();
      await made?.cleanup();
    });

    it('puts and gets bytes, and overwrites them whole', async () => {
      const key = `${prefix('bytes')}obj`;
      const first = randomBytes(3000);
      expect(await store.put(key, first)).toBe(3000);
      expect(await bytesOf(store, key)).toEqual(first);
      await store.put(key, Buffer.from('shorter'));
      expect((await bytesOf(store, key)).toString()).toBe('shorter');
      const longer = randomBytes(5000);
      await store.put(key, longer);
      expect(await bytesOf(store, key)).toEqual(longer);
    });

    it.each([
      ['unknown', 10 * MiB],
      ['known', 12 * MiB + 3],
      ['unknown', 12 * MiB + 3],
    ])('streams a body of %s size, %d bytes', async (kind, size) => {
      const key = `${prefix('stream')}${kind}-${size}`;
      const bytes = randomBytes(size);
      const options = kind === 'known' ? { size } : {};
      expect(await store.put(key, chunked(bytes), options)).toBe(size);
      expect((await store.stat(key))?.size).toBe(size);
      expect((await bytesOf(store, key)).equals(bytes)).toBe(true);
    }, 60_000);

    it('stores an empty object', async () => {
      const key = `${prefix('empty')}obj`;
      expect(await store.put(key, Readable.from([]))).toBe(0);
      expect((await store.stat(key))?.size).toBe(0);
      expect((await bytesOf(store, key)).length).toBe(0);
    });

    it('reports missing objects: get throws ObjectNotFoundError, stat is undefined', async () => {
      const key = `${prefix('missing')}never`;
      await expect(store.get(key)).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(store.get(key, { start: 1, end: 2 })).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(store.get(key, { start: 0, end: 40 * MiB })).rejects.toBeInstanceOf(ObjectNotFoundError);
      expect(await store.stat(key)).toBeUndefined();
    });

    it('stat gives the size and modification time of the current version', async () => {
      const key = `${prefix('stat')}obj`;
      const before = Date.now();
      await store.put(key, Buffer.from('12345'));
      const info = await store.stat(key);
      expect(info).toMatchObject({ key, size: 5 });
      // Stores keep whole seconds; the clock is this machine's.
      expect(info!.modified.getTime()).toBeGreaterThanOrEqual(before - 2000);
      expect(info!.modified.getTime()).toBeLessThanOrEqual(Date.now() + 2000);
      await store.put(key, Buffer.from('1234567'));
      expect((await store.stat(key))?.size).toBe(7);
    });

    it('reads inclusive ranges', async () => {
      const key = `${prefix('range')}obj`;
      const bytes = randomBytes(1000);
      await store.put(key, bytes);
      const range = (r: ByteRange) => bytesOf(store, key, r);
      expect(await range({ start: 300 })).toEqual(bytes.subarray(300));
      expect(await range({ start: 2, end: 4 })).toEqual(bytes.subarray(2, 5));
      expect(await range({ start: 999, end: 999 })).toEqual(bytes.subarray(999));
      expect(await range({ start: 999 })).toEqual(bytes.subarray(999));
      expect(await range({ start: 0, end: 0 })).toEqual(bytes.subarray(0, 1));
      expect(await range({ start: 0, end: 999 })).toEqual(bytes);
      expect(await range({ start: 0 })).toEqual(bytes);
      expect((await range({ start: 1000 })).length).toBe(0);
    });

    it('reads a large range intact (drivers may fetch it in parallel windows)', async () => {
      const key = `${prefix('large-range')}obj`;
      const bytes = randomBytes(20 * MiB + 11);
      await store.put(key, chunked(bytes));
      const got = await bytesOf(store, key, { start: 1001, end: bytes.length - 1002 });
      expect(got.equals(bytes.subarray(1001, bytes.length - 1001))).toBe(true);
    }, 60_000);

    it('deletes one object, idempotently, and nothing else', async () => {
      const base = prefix('delete');
      await store.put(`${base}a/b`, Buffer.from('b'));
      await store.put(`${base}a/c`, Buffer.from('c'));
      await store.delete(`${base}a/b`);
      expect(await store.stat(`${base}a/b`)).toBeUndefined();
      await expect(store.get(`${base}a/b`)).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(store.delete(`${base}a/b`)).resolves.toBeUndefined();
      await expect(store.delete(`${base}never/was`)).resolves.toBeUndefined();
      expect(await keysUnder(store, base)).toEqual([`${base}a/c`]);
      expect((await bytesOf(store, `${base}a/c`)).toString()).toBe('c');
    });

    it('lists in byte order of the whole key, with sizes', async () => {
      const base = prefix('order');
      const names = ['a/b/x', 'a-b/x', 'a/x', 'a0', 'b', 'a.b/y', 'ab', 'a~', 'B', 'a_'];
      await Promise.all(names.map((n) => store.put(base + n, Buffer.from(n))));
      // "a-b/x" < "a.b/y" < "a/b/x" < "a/x" < "a0": '-' 0x2d, '.' 0x2e, '/' 0x2f, '0' 0x30.
      const sorted = [...names].sort(byteOrder);
      const listed = await collect(store.list(base));
      expect(listed.map((o) => o.key)).toEqual(sorted.map((n) => base + n));
      for (const obj of listed) expect(obj.size).toBe(obj.key.length - base.length);
    });

    it('lists prefixes that are not directory boundaries', async () => {
      const base = prefix('partial');
      const names = ['a/b/x', 'a-b/x', 'a/x', 'a0', 'ab', 'abc/d', 'b'];
      await Promise.all(names.map((n) => store.put(base + n, Buffer.from(n))));
      const under = async (p: string) => (await keysUnder(store, base + p)).map((k) => k.slice(base.length));
      expect(await under('a')).toEqual(['a-b/x', 'a/b/x', 'a/x', 'a0', 'ab', 'abc/d']);
      expect(await under('a/')).toEqual(['a/b/x', 'a/x']);
      expect(await under('a/b')).toEqual(['a/b/x']);
      expect(await under('a-')).toEqual(['a-b/x']);
      expect(await under('ab')).toEqual(['ab', 'abc/d']);
      expect(await under('abc/d')).toEqual(['abc/d']);
      expect(await under('zz')).toEqual([]);
      // The whole run prefix, cut inside a path segment.
      expect(await keysUnder(store, base.slice(0, -3))).toEqual(names.map((n) => base + n).sort(byteOrder));
    });

    it('lists after a given key (a full key, not relative to the prefix)', async () => {
      const base = prefix('after');
      await Promise.all(['k1', 'k2', 'k3', 'k4/x', 'k5'].map((n) => store.put(base + n, Buffer.from(n))));
      const after = async (startAfter: string) => (await keysUnder(store, base, startAfter)).map((k) => k.slice(base.length));
      expect(await after(`${base}k2`)).toEqual(['k3', 'k4/x', 'k5']);
      expect(await after(`${base}k25`)).toEqual(['k3', 'k4/x', 'k5']);
      expect(await after(`${base}k4`)).toEqual(['k4/x', 'k5']);
      expect(await after(`${base}k4/x`)).toEqual(['k5']);
      expect(await after(`${base}k5`)).toEqual([]);
      expect(await after('')).toEqual(['k1', 'k2', 'k3', 'k4/x', 'k5']);
      expect(await after(run)).toEqual(['k1', 'k2', 'k3', 'k4/x', 'k5']);
    });

    it('lists past 1000 keys, in pages, in order', async () => {
      const base = prefix('many');
      const keys = Array.from({ length: 1234 }, (_, i) => `${base}${String(i).padStart(5, '0')}`);
      await bounded(keys.toReversed(), 32, (k) => store.put(k, Buffer.from(k)));
      expect(await keysUnder(store, base)).toEqual(keys);
      expect(await keysUnder(store, base, keys[999])).toEqual(keys.slice(1000));
      expect(await keysUnder(store, `${base}010`)).toEqual(keys.slice(1000, 1100));
    }, 120_000);

    it('concurrent writers to one key leave exactly one whole value', async () => {
      const key = `${prefix('race-one')}obj`;
      // Different sizes and contents, streamed in small interleaved chunks: a driver that writes
      // in place would mix them.
      const values = Array.from({ length: 8 }, (_, i) => randomBytes(256 * 1024 + 1000 * i));
      await Promise.all(values.map((v) => store.put(key, chunked(v, 16 * 1024, true))));
      const got = await bytesOf(store, key);
      expect(values.filter((v) => v.equals(got))).toHaveLength(1);
      expect((await store.stat(key))?.size).toBe(got.length);
    }, 60_000);

    it('concurrent writers to different keys all land', async () => {
      const base = prefix('race-many');
      const values = Array.from({ length: 24 }, (_, i) => randomBytes(1000 + 9000 * i));
      await Promise.all(values.map((v, i) => store.put(`${base}${String(i).padStart(2, '0')}`, chunked(v, 8 * 1024, true))));
      const keys = await keysUnder(store, base);
      expect(keys).toHaveLength(values.length);
      for (const [i, v] of values.entries()) expect((await bytesOf(store, keys[i]!)).equals(v)).toBe(true);
    }, 60_000);

    it('puts and deletes racing in one folder all succeed (the collector does this)', async () => {
      const base = prefix('churn');
      // Each worker writes a key and deletes it again: a filesystem driver that prunes empty
      // folders must not make another writer's put into that folder fail.
      const worker = async (w: number) => {
        for (let i = 0; i < 25; i++) {
          const key = `${base}dir/${w}-${i}`;
          await store.put(key, Buffer.from(`${w}:${i}`));
          await store.delete(key);
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
      expect(await keysUnder(store, base)).toEqual([]);
    }, 60_000);

    it('a put aborted by its signal mid-stream fails, destroys its source and leaves nothing', async () => {
      const key = `${prefix('aborted')}signal`;
      const controller = new AbortController();
      const { source, sent } = endless();
      const put = store.put(key, source, { signal: controller.signal });
      put.catch(() => undefined);
      // Enough for a multipart upload to be under way in drivers that cut parts of a few MiB.
      while (sent() < 12 * MiB) await sleep(10);
      controller.abort(new Error('client went away'));
      await expect(put).rejects.toThrow();
      expect(source.destroyed).toBe(true);
      expect(await store.stat(key)).toBeUndefined();
      expect(await keysUnder(store, prefix('aborted'))).toEqual([]);
    }, 60_000);

    it('a put whose signal is already aborted writes nothing', async () => {
      const key = `${prefix('aborted-early')}obj`;
      await expect(store.put(key, Buffer.from('x'), { signal: AbortSignal.abort() })).rejects.toThrow();
      await expect(store.put(key, Readable.from([Buffer.from('x')]), { signal: AbortSignal.abort() })).rejects.toThrow();
      expect(await store.stat(key)).toBeUndefined();
    });

    it('a put whose source fails rejects with that error and leaves nothing', async () => {
      const key = `${prefix('failed-source')}obj`;
      const source = failingAfter(7 * MiB, 'connection reset by client');
      const err = await store.put(key, source).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/connection reset by client/);
      // The client failed, not the store: the HTTP layer must not answer 503 for it.
      expect(err).not.toBeInstanceOf(StorageUnavailableError);
      expect(await store.stat(key)).toBeUndefined();
      expect(await keysUnder(store, prefix('failed-source'))).toEqual([]);
    }, 60_000);

    it('a failed overwrite leaves the previous value intact', async () => {
      const key = `${prefix('failed-overwrite')}obj`;
      await store.put(key, Buffer.from('previous value'));
      await expect(store.put(key, failingAfter(7 * MiB, 'source broke'))).rejects.toThrow(/source broke/);
      const controller = new AbortController();
      const { source, sent } = endless();
      const put = store.put(key, source, { signal: controller.signal });
      put.catch(() => undefined);
      while (sent() < 7 * MiB) await sleep(10);
      controller.abort();
      await expect(put).rejects.toThrow();
      expect((await bytesOf(store, key)).toString()).toBe('previous value');
    }, 60_000);

    it('leaves nothing behind once everything written is deleted', async () => {
      const keys = await keysUnder(store, `${run}/`);
      await bounded(keys, 32, (k) => store.delete(k));
      expect(await keysUnder(store, `${run}/`)).toEqual([]);
      expect(await keysUnder(store, '')).toEqual([]);
      expect(await made!.leftovers()).toEqual([]);
    }, 120_000);
  });
}

/** Plain byte order (what S3 and Swift sort by); String#sort compares UTF-16 units. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

async function keysUnder(store: ObjectStore, prefix: string, startAfter?: string): Promise<string[]> {
  return (await collect(store.list(prefix, { startAfter }))).map((o) => o.key);
}

async function bytesOf(store: ObjectStore, key: string, range?: ByteRange): Promise<Buffer> {
  return readAll(await store.get(key, range));
}

/** `bytes` as a stream of odd-sized chunks; `yieldBetween` lets other writers run between chunks. */
function chunked(bytes: Buffer, size = 64 * 1024 + 7, yieldBetween = false): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < bytes.length; i += size) {
        if (yieldBetween) await nextTurn();
        yield bytes.subarray(i, i + size);
      }
    })(),
    { objectMode: false },
  );
}

/**
 * A source that sends 1 MiB chunks as fast as they are read and never ends. Each chunk comes a
 * turn later, as from a socket: a driver without I/O would otherwise starve the test's timers.
 */
function endless(): { source: Readable; sent: () => number } {
  let sent = 0;
  const source = new Readable({
    read() {
      setImmediate(() => {
        sent += MiB;
        this.push(randomBytes(MiB));
      });
    },
  });
  return { source, sent: () => sent };
}

/** A source that fails with `message` after `limit` bytes, as a client connection that resets. */
function failingAfter(limit: number, message: string): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= limit) return void this.destroy(new Error(message));
      sent += MiB;
      this.push(randomBytes(MiB));
    },
  });
}

/** Runs `work` over `items`, at most `limit` at a time. */
async function bounded<T>(items: T[], limit: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}
