/**
 * Authentication in front of the TAXII routes, and the per-collection
 * authorization that each route applies.
 *
 * A collection the caller may neither read nor write is reported as missing
 * (404), so that its existence does not leak. An anonymous caller gets 401
 * instead wherever credentials could grant access, when principals are
 * configured. A caller with one of the two permissions that needs the other
 * gets 403.
 */
import type { Context, Next } from 'koa';

import { permissionsFor, type Permissions } from '../auth/index.js';
import type { CollectionRecord } from '../store/index.js';
import type { ResolvedTaxiiDeps } from './deps.js';
import { TaxiiError, notFound } from './errors.js';
import { callerOf, requireApiRoot } from './routes/common.js';

/** Authenticates the request and stores its principal for `callerOf`. */
export function authenticateMiddleware(deps: ResolvedTaxiiDeps) {
  return async function authenticate(ctx: Context, next: Next): Promise<void> {
    const authenticator = deps.authenticator;
    if (authenticator !== undefined) {
      const outcome = await authenticator.authenticate(ctx.req, ctx.res, ctx.ip);
      if (outcome.kind === 'rejected') {
        throw new TaxiiError(
          401,
          'unauthorized',
          'Unauthorized',
          'The credentials are invalid; send HTTP Basic credentials or an API key as "Bearer KEYID.SECRET".',
          { 'WWW-Authenticate': outcome.challenges.join(', ') },
        );
      }
      if (outcome.kind === 'throttled') {
        throw new TaxiiError(
          429,
          'too_many_requests',
          'Too many failed logins',
          `Too many failed logins from this address or for this principal; retry in ${outcome.retryAfterSeconds} s.`,
          { 'Retry-After': String(outcome.retryAfterSeconds) },
        );
      }
      if (outcome.kind === 'principal') ctx.state['principal'] = outcome.name;
    }
    await next();
  };
}

/** What a route needs to do with a collection. Deleting needs read and write. */
export type Need = 'visible' | 'read' | 'write' | 'delete';

export interface AuthorizedCollection {
  collection: CollectionRecord;
  permissions: Permissions;
}

/** The 401 for an anonymous caller that credentials might help, else undefined. */
function authenticationRequired(ctx: Context, deps: ResolvedTaxiiDeps): TaxiiError | undefined {
  if (callerOf(ctx) !== undefined || deps.authenticator?.enabled !== true) return undefined;
  return new TaxiiError(
    401,
    'unauthorized',
    'Authentication required',
    'This resource needs credentials: send HTTP Basic credentials or an API key as "Bearer KEYID.SECRET".',
    { 'WWW-Authenticate': deps.authenticator.challenges.join(', ') },
  );
}

function forbidden(ctx: Context, deps: ResolvedTaxiiDeps, description: string): TaxiiError {
  return (
    authenticationRequired(ctx, deps) ?? new TaxiiError(403, 'forbidden', 'Forbidden', description)
  );
}

/**
 * Loads the collection named in the path and checks that the caller may do
 * `need` with it; rejects with 401, 403 or 404 otherwise.
 */
export async function authorizeCollection(
  ctx: Context,
  deps: ResolvedTaxiiDeps,
  need: Need,
): Promise<AuthorizedCollection> {
  requireApiRoot(ctx, deps);
  const id = ctx.params['collectionId'] ?? '';
  const collection = await deps.store.getCollection(id);
  const permissions = collection
    ? permissionsFor(collection, callerOf(ctx))
    : { read: false, write: false };

  if (collection === undefined || (!permissions.read && !permissions.write)) {
    throw (
      authenticationRequired(ctx, deps) ??
      notFound(
        `Collection ${JSON.stringify(id)} does not exist in API root ${JSON.stringify(deps.apiRootPath)}, or you may not use it.`,
      )
    );
  }

  const caller = callerOf(ctx) ?? 'an anonymous caller';
  if ((need === 'read' || need === 'delete') && !permissions.read) {
    throw forbidden(ctx, deps, `Collection ${collection.id} cannot be read by ${caller}.`);
  }
  if ((need === 'write' || need === 'delete') && !permissions.write) {
    throw forbidden(ctx, deps, `Collection ${collection.id} cannot be written by ${caller}.`);
  }
  return { collection, permissions };
}
