/** The status resource of an add-objects request. */
import type Router from '@koa/router';

import type { ResolvedTaxiiDeps } from '../deps.js';
import { TaxiiError, notFound } from '../errors.js';
import { toStatusResource } from '../status.js';
import { callerOf, requireApiRoot, sendTaxii } from './common.js';

/** Time between two purges of expired statuses by one process, in ms. */
const PURGE_INTERVAL_MS = 60 * 60 * 1000;
const lastPurgeByStore = new WeakMap<object, number>();

/**
 * Deletes statuses older than the retention, at most once an hour per
 * process and store, so that a busy write path does not purge on every request.
 */
export async function purgeStatusesNow(deps: ResolvedTaxiiDeps, nowMicros: number): Promise<void> {
  const nowMs = nowMicros / 1000;
  const last = lastPurgeByStore.get(deps.store) ?? 0;
  if (nowMs - last < PURGE_INTERVAL_MS) return;
  lastPurgeByStore.set(deps.store, nowMs);
  const count = await deps.store.purgeStatuses(nowMicros - deps.statusRetentionMs * 1000);
  if (count > 0) deps.logger.info({ count }, 'expired TAXII statuses purged');
}

export function registerStatusRoutes(router: Router, deps: ResolvedTaxiiDeps): void {
  router.get('/:root/status/:statusId', async (ctx) => {
    requireApiRoot(ctx, deps);
    const principal = callerOf(ctx);
    if (principal === undefined && deps.authenticator?.enabled === true) {
      throw new TaxiiError(
        401,
        'unauthorized',
        'Authentication required',
        'Status resources are readable by the principal that made the request; send its credentials.',
        { 'WWW-Authenticate': deps.authenticator.challenges.join(', ') },
      );
    }

    const id = ctx.params['statusId'] ?? '';
    const status = await deps.store.getStatus(id);
    const expiredBefore = Date.now() * 1000 - deps.statusRetentionMs * 1000;
    if (
      status === undefined ||
      status.principal !== (principal ?? '') ||
      status.requestTimestamp < expiredBefore
    ) {
      throw notFound(
        `Status ${JSON.stringify(id)} does not exist, has expired, or belongs to another principal.`,
      );
    }

    sendTaxii(ctx, JSON.stringify(toStatusResource(status)));
  });
}
