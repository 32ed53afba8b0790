// Token auth as configured (auth.*): the gate every /v2 request passes, and the token endpoint.
// With auth.secret empty the gate is open and there is no endpoint.
import type { Middleware } from 'koa';
import type { Config } from '../../config/index.js';
import { openGate, TokenGate, type Gate } from './gate.js';
import { Rights } from './rights.js';
import { tokenEndpoint } from './token-endpoint.js';
import { Tokens } from './tokens.js';
import { Users } from './users.js';

export function createAuth(config: Config['auth']): { gate: Gate; tokenEndpoint?: Middleware } {
  if (!config.secret) return { gate: openGate };
  const tokens = new Tokens({ secret: config.secret, service: config.service, ttlMs: config.tokenTtl });
  const rights = new Rights(config.access);
  return {
    gate: new TokenGate({ tokens, rights, realm: config.realm }),
    tokenEndpoint: tokenEndpoint({ tokens, users: new Users(config.users), rights }),
  };
}
