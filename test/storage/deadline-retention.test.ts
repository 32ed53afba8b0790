// A finished store call keeps nothing of its caller alive. The deadline decorator once joined the
// caller's signal to its own with AbortSignal.any() and listened to the result: Node keeps such a
// composite signal alive until it aborts, and a store call's signal almost never does, so every
// call kept its stream and, through the promises waiting on it, the request that made it. Under
// manifest GET load RSS grew by about 14 KB per request without bound. Here each call's result and
// its caller's state must be collectable once the caller is done with them. The calls run in an
// audit context, as every request does (src/http/middleware/audit.ts): Node copies the context
// into each promise made inside it, which is how a kept promise kept the request.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actingAs, type AuditActor } from '../../src/audit/recorder.js';
import type { ObjectStore } from '../../src/storage/driver.js';
import { DeadlineStore } from '../../src/storage/deadline.js';
import { storeFactories } from '../helpers/stores.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects garbage until `refs` are all gone or a few rounds have passed (finalization is async). */
async function collected(refs: Array<WeakRef<object>>): Promise<number> {
  for (let round = 0; round < 10 && refs.some((r) => r.deref() !== undefined); round++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  return refs.filter((r) => r.deref() !== undefined).length;
}

describe.each(storeFactories())('store calls on $name', ({ make }) => {
  let store: ObjectStore;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const made = await make();
    cleanup = made.cleanup;
    store = new DeadlineStore(made.store, { callMs: 10_000, idleMs: 20_000, maxInFlight: 64 });
    await store.put('retention/object', Buffer.from('a small object, read many times'));
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it('keep neither their result nor their caller once done', async () => {
    const refs: Array<WeakRef<object>> = [];
    // What a request handler does: a signal of its own (aborted if its client goes away), a few
    // store calls, its state alive while it awaits them.
    const request = async (state: { payload: Buffer; client: AbortController }, track: boolean) => {
      const { client } = state;
      const info = await store.stat('retention/object', { signal: client.signal });
      const body = await store.get('retention/object', undefined, { signal: client.signal });
      if (track) refs.push(new WeakRef(body));
      let bytes = 0;
      for await (const chunk of body) bytes += (chunk as Buffer).length;
      let listed = 0;
      for await (const object of store.list('retention/', { signal: client.signal })) if (object.key === 'retention/object') listed++;
      return bytes === info?.size && listed === 1 && state.payload.length > 0;
    };
    const run = async (i: number, track: boolean) => {
      const state = { payload: Buffer.alloc(64 * 1024), client: new AbortController() };
      const actor: AuditActor & { state?: typeof state } = { kind: 'user', user: `u${i}`, state };
      if (track) refs.push(new WeakRef(state));
      return actingAs(actor, () => request(state, track));
    };
    for (let i = 0; i < 20; i++) expect(await run(i, true)).toBe(true);
    // The engine may hold on to the last request it ran until others run: two more, not counted.
    for (let i = 20; i < 22; i++) expect(await run(i, false)).toBe(true);

    expect(await collected(refs)).toBe(0);
  });
});
