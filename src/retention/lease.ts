// One collector at a time across every replica sharing the store. Object stores have no
// compare-and-swap here, so the lease is last-writer-wins with a read-back after a settle delay:
// two replicas that write at once both read back the same winner. The lease expires if its holder
// dies, and is renewed while it works.
import { readJson, writeJson } from '../registry/objects.js';
import { GC_LEASE_KEY } from '../registry/paths.js';
import type { ObjectStore } from '../storage/driver.js';

interface LeaseRecord {
  owner: string;
  expiresAt: string;
}

export class LeaseBusyError extends Error {
  override readonly name = 'LeaseBusyError';
  constructor(readonly holder: LeaseRecord | undefined) {
    super(`another collector holds the lease${holder ? ` until ${holder.expiresAt}` : ''}`);
  }
}

export interface Lease {
  /** True once another collector took the lease over (ours expired while we ran). */
  lost(): boolean;
  release(): Promise<void>;
}

export async function acquireLease(store: ObjectStore, owner: string, ttlMs = 60_000, settleMs = 500): Promise<Lease> {
  const held = await readJson<LeaseRecord>(store, GC_LEASE_KEY);
  if (held && held.owner !== owner && Date.parse(held.expiresAt) > Date.now()) throw new LeaseBusyError(held);
  const write = () => writeJson(store, GC_LEASE_KEY, { owner, expiresAt: new Date(Date.now() + ttlMs).toISOString() } satisfies LeaseRecord);
  await write();
  await new Promise((r) => setTimeout(r, settleMs));
  const winner = await readJson<LeaseRecord>(store, GC_LEASE_KEY);
  if (winner?.owner !== owner) throw new LeaseBusyError(winner);
  let lost = false;
  const renew = async () => {
    // Renew only what is still ours: never overwrite a collector that took over.
    const current = await readJson<LeaseRecord>(store, GC_LEASE_KEY);
    if (current?.owner !== owner) lost = true;
    else await write();
  };
  const renewal = setInterval(() => void renew().catch(() => {}), ttlMs / 3);
  renewal.unref();
  return {
    lost: () => lost,
    async release() {
      clearInterval(renewal);
      const current = await readJson<LeaseRecord>(store, GC_LEASE_KEY);
      if (current?.owner === owner) await store.delete(GC_LEASE_KEY);
    },
  };
}

export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  constructor() {
    super('the collector lost its lease to another one (renewals failed); stopped before deleting');
  }
}
