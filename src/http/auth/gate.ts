// What a /v2 request may do. With auth off every request may do everything (the embedded
// default). With token auth a request must carry a Bearer token from /auth/token that grants the
// action it asks for; otherwise it gets 401 and a challenge naming the realm, the service and the
// scope to ask for, as in Distribution, so docker, containerd and skopeo fetch a token and retry.
import type { Context } from 'koa';
import { RegistryError } from '../../registry/errors.js';
import { bearerToken } from './credentials.js';
import type { Rights } from './rights.js';
import { CATALOG, formatScope, type AccessEntry, type RepositoryAction } from './scope.js';
import type { Tokens } from './tokens.js';

/** What one request was granted. */
export interface RequestAccess {
  /** The signed-in user; undefined for an anonymous client or with auth off. */
  readonly user: string | undefined;
  /** Whether the request's token grants `action` in `repo` (a mount's source, say). */
  allows(repo: string, action: RepositoryAction): boolean;
  /**
   * Whether the user may read `repo` by the access rules, beyond the token's scope: for answers
   * that draw on other repositories (the catalog, a HEAD that links a blob held elsewhere).
   */
  mayRead(repo: string): boolean;
}

/** The access a request needs: /v2/ itself (any valid token), the catalog, or an action in a repository. */
export type Need = { kind: 'base' } | { kind: 'catalog' } | { kind: 'repository'; repo: string; action: RepositoryAction };

export interface Gate {
  /** Returns the request's access, or throws 401 UNAUTHORIZED with a challenge. */
  admit(ctx: Context, need: Need): Promise<RequestAccess>;
}

const EVERYTHING: RequestAccess = { user: undefined, allows: () => true, mayRead: () => true };

/** Auth off: every client may do everything. */
export const openGate: Gate = { admit: async () => EVERYTHING };

export interface TokenGateOptions {
  tokens: Tokens;
  rights: Rights;
  /** The token endpoint's absolute URL; empty: this server's /auth/token as the client reached it. */
  realm: string;
  /** Append-only users: a delete is refused with DENIED, whatever the token says. */
  appendOnly?: ReadonlySet<string>;
}

export class TokenGate implements Gate {
  constructor(private readonly options: TokenGateOptions) {}

  async admit(ctx: Context, need: Need): Promise<RequestAccess> {
    const header = ctx.get('Authorization');
    const bearer = bearerToken(header);
    if (!bearer) throw this.challenge(ctx, need, header ? 'invalid_request' : undefined, 'authentication required');
    const verified = await this.options.tokens.verify(bearer);
    if (!verified) throw this.challenge(ctx, need, 'invalid_token', 'the token is invalid or has expired');
    ctx.state.user = verified.user;
    if (need.kind === 'repository' && need.action === 'delete' && verified.user !== undefined && this.options.appendOnly?.has(verified.user)) {
      throw new RegistryError('DENIED', `user ${verified.user} is append-only: it may push new recovery points but never delete`, { user: verified.user });
    }
    if (!grants(verified.access, need)) throw this.challenge(ctx, need, 'insufficient_scope', 'the token does not grant this access');
    const { rights } = this.options;
    return {
      user: verified.user,
      allows: (repo, action) => grants(verified.access, { kind: 'repository', repo, action }),
      mayRead: (repo) => rights.can(verified.user, repo, 'pull'),
    };
  }

  private challenge(ctx: Context, need: Need, error: string | undefined, message: string): RegistryError {
    const realm = this.options.realm || `${ctx.protocol}://${safeHost(ctx.host)}/auth/token`;
    const scope = scopeOf(need);
    const parts = [`realm="${realm}"`, `service="${this.options.tokens.service}"`];
    if (scope) parts.push(`scope="${formatScope(scope)}"`);
    if (error) parts.push(`error="${error}"`);
    ctx.set('WWW-Authenticate', `Bearer ${parts.join(',')}`);
    const detail = scope ? scope.actions.map((action) => ({ Type: scope.type, Name: scope.name, Action: action })) : undefined;
    return new RegistryError('UNAUTHORIZED', message, detail);
  }
}

/** The scope a client should ask for: a write also needs pull (a push HEADs blobs first). */
function scopeOf(need: Need): AccessEntry | undefined {
  if (need.kind === 'base') return undefined;
  if (need.kind === 'catalog') return CATALOG;
  const actions = need.action === 'push' ? ['pull', 'push'] : [need.action];
  return { type: 'repository', name: need.repo, actions };
}

function grants(access: AccessEntry[], need: Need): boolean {
  if (need.kind === 'base') return true;
  const wanted = need.kind === 'catalog' ? CATALOG : { type: 'repository', name: need.repo, actions: [need.action] };
  return access.some((e) => e.type === wanted.type && e.name === wanted.name && (e.actions.includes('*') || e.actions.includes(wanted.actions[0]!)));
}

/** The Host header as it may appear in a quoted challenge parameter: host name or address, port. */
function safeHost(host: string): string {
  return host.replace(/[^A-Za-z0-9.:[\]-]/g, '');
}
