// GET /admin/v1/systems: every repository (system) with its newest recovery point and whether it
// is within its recovery point objective (src/retention/rpo.ts).
import type Router from '@koa/router';
import type { Maintenance } from '../../retention/maintenance.js';

export function systemsRoutes(router: Router, maintenance: Maintenance): void {
  router.get('listSystems', '/systems', async (ctx) => {
    ctx.body = await maintenance.rpo.report();
  });
}
