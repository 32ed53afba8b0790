// POST /admin/v1/verify starts a scrub of the recovery points asked for (all, a repository, or a
// point); GET /admin/v1/verify reports its progress and the newest report (src/retention/verify.ts).
import type { Readable } from 'node:stream';
import type Router from '@koa/router';
import { isDigest } from '../../registry/digest.js';
import { isValidName } from '../../registry/names.js';
import { VerifyAlreadyRunningError, type Maintenance } from '../../retention/maintenance.js';
import type { VerifyScope } from '../../retention/verify.js';
import { readAll } from '../../storage/streams.js';
import { HttpError } from '../errors.js';

export function verifyRoutes(router: Router, maintenance: Maintenance): void {
  router.post('startVerify', '/verify', async (ctx) => {
    const scope = parseScope(await optionalJsonBody(ctx.req));
    try {
      ctx.body = await maintenance.startVerify(scope);
      ctx.status = 202;
    } catch (err) {
      if (err instanceof VerifyAlreadyRunningError) throw new HttpError(409, 'CONFLICT', err.message);
      throw err;
    }
  });

  router.get('getVerifyStatus', '/verify', async (ctx) => {
    ctx.body = await maintenance.verifyStatus();
  });
}

const badRequest = (message: string) => new HttpError(400, 'BAD_REQUEST', message);

function parseScope(body: Record<string, unknown>): VerifyScope {
  const { repository, digest } = body;
  if (repository !== undefined && (typeof repository !== 'string' || !isValidName(repository))) throw badRequest('repository must be a valid repository name');
  if (digest !== undefined && (typeof digest !== 'string' || !isDigest(digest))) throw badRequest('digest must be a valid digest');
  if (digest !== undefined && repository === undefined) throw badRequest('a digest needs its repository');
  return { ...(repository ? { repository } : {}), ...(digest ? { digest } : {}) };
}

/** An empty body is {}; anything else must be a JSON object. */
async function optionalJsonBody(req: Readable): Promise<Record<string, unknown>> {
  const text = (await readAll(req, 64 * 1024)).toString('utf8').trim();
  if (text === '') return {};
  try {
    const value = JSON.parse(text) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // the same answer for malformed JSON and a non-object
  }
  throw badRequest('body must be a JSON object');
}
