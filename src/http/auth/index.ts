// Token auth as configured (auth.*): the gate every /v2 request passes, the token endpoint, and
// the guard of the admin API. With auth.secret empty the gate is open, there is no endpoint, and
// only admin.token opens the admin API.
import type { Middleware } from 'koa';
import type { Config } from '../../config/index.js';
import { adminGuard } from './admin-guard.js';
import { LoginLimits, Logins } from './login-limits.js';
import { openGate, TokenGate, type Gate } from './gate.js';
import { Rights } from './rights.js';
import { tokenEndpoint } from './token-endpoint.js';
import { Tokens } from './tokens.js';
import { Users } from './users.js';

export interface Auth {
  gate: Gate;
  tokenEndpoint?: Middleware;
  /** Undefined when nothing opens the admin API (it then answers 404). */
  adminGuard?: Middleware;
}

export interface AuthHooks {
  onLoginFailure?: () => void;
  /** Every scrypt verification (drreg_password_checks_total). */
  onPasswordCheck?: () => void;
}

export function createAuth(config: Pick<Config, 'auth' | 'admin' | 'loginLimits'>, hooks: AuthHooks = {}): Auth {
  const staticToken = config.admin.token;
  const limits = new LoginLimits(config.loginLimits);
  if (!config.auth.secret) return { gate: openGate, adminGuard: staticToken ? adminGuard({ staticToken, limits }) : undefined };
  const { auth } = config;
  const tokens = new Tokens({ secret: auth.secret, service: auth.service, ttlMs: auth.tokenTtl });
  const rights = new Rights(auth.access);
  const users = new Users(auth.users, hooks.onPasswordCheck);
  const logins = new Logins(users, limits);
  const admins = new Set(auth.admins);
  const appendOnly = new Set(auth.users.filter((u) => u.appendOnly).map((u) => u.name));
  return {
    gate: new TokenGate({ tokens, rights, realm: auth.realm, appendOnly }),
    tokenEndpoint: tokenEndpoint({ tokens, logins, rights, admins, appendOnly, onLoginFailure: hooks.onLoginFailure }),
    adminGuard: staticToken || admins.size > 0 ? adminGuard({ staticToken, limits, accounts: { admins, logins, tokens } }) : undefined,
  };
}
