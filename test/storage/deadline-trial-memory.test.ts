// Review of "puts waiting for memory fail when the breaker opens" (src/storage/deadline.ts): a put
// that starts waiting for the S3 memory budget while the breaker is not closed is given up at once
// with StoreDownError. After the cooldown the breaker lets one trial call through; when that call
// is a put that must wait its turn for a part buffer (another upload holds it), it gave itself up:
// 503 "the store is not answering" although the store answers, and since a call given up that way
// reports nothing, the breaker stayed in its trial and turned every other call away too.
// The store is the shared Swift behind a relay the test can stall (a hung store), so nothing else
// is stopped.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadlineStore } from '../../src/storage/deadline.js';
import { S3Store } from '../../src/storage/s3.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';

const MiB = 1024 * 1024;

/** A TCP relay to Swift that can stop relaying (connections stay open, nothing answers). */
function relay(target: URL) {
  const pairs = new Set<{ client: net.Socket; store: net.Socket }>();
  let hung = false;
  const server = net.createServer((client) => {
    const store = net.connect(Number(target.port), target.hostname);
    const pair = { client, store };
    pairs.add(pair);
    const close = () => {
      client.destroy();
      store.destroy();
      pairs.delete(pair);
    };
    client.on('error', close).on('close', close);
    store.on('error', close).on('close', close);
    if (!hung) client.pipe(store).pipe(client);
  });
  return {
    listen: () => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port))),
    hang() {
      hung = true;
      for (const { client, store } of pairs) {
        client.unpipe(store);
        store.unpipe(client);
      }
    },
    resume() {
      hung = false;
      for (const { client, store } of [...pairs]) {
        client.destroy();
        store.destroy();
      }
    },
    close: () => new Promise<void>((resolve) => {
      for (const { client, store } of pairs) (client.destroy(), store.destroy());
      server.close(() => resolve());
    }),
  };
}

describe('the breaker trial and puts waiting for memory', () => {
  const options = swiftOptions();
  const proxy = relay(new URL(options.endpoint));
  let s3: S3Store;
  let store: DeadlineStore;

  beforeAll(async () => {
    const port = await proxy.listen();
    s3 = new S3Store({ ...options, endpoint: `http://127.0.0.1:${port}`, partSize: 5 * MiB, concurrency: 2, memoryBudget: 5 * MiB });
    await s3.check();
    store = new DeadlineStore(s3, { callMs: 1000, idleMs: 1000, maxInFlight: 64, breakerThreshold: 3, breakerCooldownMs: 300 });
  });
  afterAll(async () => {
    await s3?.close?.();
    await proxy.close();
    await removeBucket(options);
  });

  it('a trial put waiting for a part buffer waits its turn and is stored', async () => {
    // An upload whose client is slow holds the only part buffer (the store is not to blame).
    const first = randomBytes(8 * MiB);
    const firstBody = new Readable({ read() {} });
    firstBody.push(first.subarray(0, MiB));
    const firstPut = store.put('trial/first', firstBody, { size: first.length });
    await expect.poll(() => s3.budget.inUse, { timeout: 10_000 }).toBe(5 * MiB);

    // The store hangs: three calls past their deadline open the breaker.
    proxy.hang();
    for (let i = 0; i < 3; i++) await expect(store.stat(`trial/missing-${i}`)).rejects.toThrow(/did not answer|deadline|not answering/);
    await expect(store.stat('trial/missing')).rejects.toThrow(/not attempted/);
    proxy.resume();
    const opened = Date.now();
    await expect.poll(() => Date.now() - opened >= 400, { interval: 50 }).toBe(true); // the cooldown

    // The first call after the cooldown is the trial: a put that must wait for the buffer.
    const second = randomBytes(6 * MiB);
    const secondPut = store.put('trial/second', Readable.from([second]), { size: second.length });
    let outcome: string | undefined;
    secondPut.then(
      () => (outcome = 'stored'),
      (err: Error) => (outcome = `failed: ${err.message}`),
    );
    // It queues for the buffer (before the fix it gave itself up at once instead).
    await expect.poll(() => outcome ?? (s3.budget.queued === 1 ? 'waiting' : undefined), { timeout: 10_000 }).toBeDefined();
    expect(outcome ?? 'waiting').toBe('waiting');

    // The slow client finishes: both are stored.
    firstBody.push(first.subarray(MiB));
    firstBody.push(null);
    expect(await firstPut).toBe(first.length);
    expect(await secondPut).toBe(second.length);
    expect((await store.stat('trial/second'))?.size).toBe(second.length);
  }, 60_000);
});
