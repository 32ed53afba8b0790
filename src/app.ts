// Builds the Koa application from its dependencies; no globals, so tests can run many at once.
import Koa from 'koa';
import type { Config } from './config/index.js';
import { clientWentAway, noteClientGone } from './http/client-gone.js';
import { errorMiddleware } from './http/errors.js';
import { requestFraming } from './http/middleware/framing.js';
import { requestLog } from './http/middleware/request-log.js';
import { auditContext } from './http/middleware/audit.js';
import { adminApi } from './http/admin/mount.js';
import { adminRoutes } from './http/admin/routes.js';
import { createAuth } from './http/auth/index.js';
import { consoleFiles } from './http/console.js';
import { healthEndpoint } from './http/health.js';
import { httpMetrics } from './http/middleware/metrics.js';
import { ociRoutes } from './http/oci/routes.js';
import { HttpError } from './http/errors.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { Registry } from './registry/registry.js';
import type { Maintenance } from './retention/maintenance.js';

export interface AppDeps {
  config: Config;
  registry: Registry;
  maintenance: Maintenance;
  logger: Logger;
  metrics: Metrics;
}

export function createApp({ config, registry, maintenance, logger, metrics }: AppDeps): Koa {
  const app = new Koa({ proxy: false });
  // Errors before the response starts are written and logged by errorMiddleware; these are the
  // ones after it started (a failing body stream): the client sees a cut-off response.
  app.silent = true;
  app.on('error', (err: Error, ctx?: Koa.Context) => {
    if (ctx && clientWentAway(ctx, err)) noteClientGone(ctx, logger, err);
    else ((ctx?.state?.log as Logger | undefined) ?? logger).error({ err }, 'response stream failed');
  });
  app.use(closeListenerRoom);
  app.use(httpMetrics(metrics));
  app.use(requestLog(logger));
  app.use(auditContext(registry.audit));
  app.use(errorMiddleware());
  app.use(requestFraming());
  app.use(healthEndpoint(() => registry.storeReachable()));
  const auth = createAuth(config, { onLoginFailure: () => metrics.loginFailures.inc(), onPasswordCheck: () => metrics.passwordChecks.inc() });
  if (auth.tokenEndpoint) app.use(auth.tokenEndpoint);
  app.use(consoleFiles({ enabled: auth.adminGuard !== undefined }));
  app.use(
    ociRoutes(registry, {
      gate: auth.gate,
      maxManifestBytes: config.manifests.maxSize,
      deletesEnabled: config.api.deletes,
      linkExistingOnHead: config.dedup.linkExistingOnHead,
      redirectBlobs: config.storage.driver === 's3' && config.storage.s3.redirect,
    }),
  );
  // The only way into admin handlers: guard first, for every spelling of /admin (http/admin/mount.ts).
  app.use(adminApi({ guard: auth.adminGuard, routers: [adminRoutes(registry, maintenance)] }));
  app.use(async (ctx) => {
    throw new HttpError(404, 'NOT_FOUND', 'no such endpoint', { path: ctx.path.slice(0, 300) });
  });
  return app;
}

/**
 * A streamed response carries about a dozen 'close' listeners, each removed when it closes: ours
 * (in-flight tracking, request log, metrics, the request's abort signal, a recycling body) and
 * koa's (on-finished, the body's pipeline). Above Node's default of ten, Node warns of a leak that
 * is not one, once per response: a line on stderr for every encrypted or S3 pull.
 */
const RESPONSE_CLOSE_LISTENERS = 20;
function closeListenerRoom(ctx: Koa.Context, next: Koa.Next): Promise<void> {
  ctx.res.setMaxListeners(RESPONSE_CLOSE_LISTENERS);
  return next();
}
