// What the domain tells the audit trail, and who is acting. The registry and retention layers
// record what they did (a pin, a prune, a lock change); who asked and from where comes from the
// request that is running (an AsyncLocalStorage the HTTP layer fills), so domain code never sees
// HTTP. Without a request (the scheduler, the CLI) the actor is whoever opened the context, or
// "system". The trail itself (segments in the store, hash chain) is in ./log.ts.
import { AsyncLocalStorage } from 'node:async_hooks';

export type ActorKind = 'user' | 'admin-token' | 'anonymous' | 'scheduler' | 'cli' | 'system';

export interface AuditActor {
  kind: ActorKind;
  /** The user name, when a user acted. */
  user?: string;
  /** The client's address and user agent, for requests. */
  address?: string;
  userAgent?: string;
  requestId?: string;
}

export type AuditOutcome = 'ok' | 'denied' | 'failed';

export interface AuditEvent {
  /** What happened, e.g. "tag.push", "manifest.delete", "pin", "prune", "gc", "lock.change", "login". */
  action: string;
  outcome?: AuditOutcome;
  repository?: string;
  tag?: string;
  digest?: string;
  /** Small, action-specific facts (counts, the new lock, why it was refused). */
  detail?: Record<string, unknown>;
  /** Overrides the actor of the running context (a login names the user it tried). */
  actor?: AuditActor;
}

export interface AuditRecorder {
  /** Queues a record; never blocks and never throws (see AuditLog for the bound). */
  record(event: AuditEvent): void;
}

const context = new AsyncLocalStorage<AuditActor>();

/** Runs `fn` with `actor` as the one every record made inside it names. */
export function actingAs<T>(actor: AuditActor, fn: () => T): T {
  return context.run(actor, fn);
}

export function currentActor(): AuditActor {
  return context.getStore() ?? { kind: 'system' };
}

/** Forwards to a recorder set later (the registry is built before the trail is opened). */
export class ForwardingRecorder implements AuditRecorder {
  target: AuditRecorder | undefined;
  record(event: AuditEvent): void {
    this.target?.record(event);
  }
}
