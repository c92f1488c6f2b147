/**
 * The `next` cursor of TAXII pages: opaque, stateless and signed.
 *
 * A cursor is `<payload>.<signature>`, both base64url. The payload is the
 * JSON array `[1, dateAdded, id, version, scope]`: format 1, the position of
 * the last item of the page, and a SHA-256 of what the cursor was issued
 * for (resource, collection, filters, caller). The signature is the
 * HMAC-SHA256 of the payload text under the cursor secret, so a client can
 * neither forge a position nor carry a cursor over to other filters. The
 * cursor does not expire, and it stays valid across restarts and processes
 * that share the secret.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

import type { PagePosition } from '../store/index.js';

import { invalidParameter } from './errors.js';

const FORMAT = 1;

/** The request context that a cursor is bound to. */
export interface CursorScope {
  /** The resource kind, e.g. `objects` or `manifest`. */
  resource: string;
  collectionId: string;
  /** The canonical filters, from `normaliseFilters`. */
  filters: string;
  /** The authenticated principal, '' for an anonymous caller. */
  principal: string;
}

function scopeHash(scope: CursorScope): string {
  return createHash('sha256')
    .update(JSON.stringify([scope.resource, scope.collectionId, scope.filters, scope.principal]))
    .digest('base64url');
}

function sign(secret: string, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload).digest();
}

/** Creates the `next` value that resumes after `position` under `scope`. */
export function encodeCursor(secret: string, position: PagePosition, scope: CursorScope): string {
  const payload = Buffer.from(
    JSON.stringify([FORMAT, position.dateAdded, position.id, position.version, scopeHash(scope)]),
  ).toString('base64url');
  return `${payload}.${sign(secret, payload).toString('base64url')}`;
}

/**
 * Verifies a `next` value and returns its position. Rejects with a 400 TAXII
 * error when the value was altered, was not issued by this hub, or was issued
 * for another scope.
 */
export function decodeCursor(secret: string, cursor: string, scope: CursorScope): PagePosition {
  const invalid = invalidParameter(
    'next',
    'next is not a cursor that this server issued; use the next value of the previous page unchanged, or drop it to start over.',
  );

  const dot = cursor.indexOf('.');
  if (dot <= 0) {
    throw invalid;
  }
  const payload = cursor.slice(0, dot);
  const signature = Buffer.from(cursor.slice(dot + 1), 'base64url');
  const expected = sign(secret, payload);
  if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
    throw invalid;
  }

  let fields: unknown;
  try {
    fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw invalid;
  }
  if (
    !Array.isArray(fields) ||
    fields.length !== 5 ||
    fields[0] !== FORMAT ||
    !Number.isSafeInteger(fields[1]) ||
    typeof fields[2] !== 'string' ||
    typeof fields[3] !== 'string' ||
    typeof fields[4] !== 'string'
  ) {
    throw invalid;
  }
  if (fields[4] !== scopeHash(scope)) {
    throw invalidParameter(
      'next',
      'next was issued for another collection, resource or set of filters; repeat the filters of the request that returned it, or drop it to start over.',
    );
  }
  return { dateAdded: fields[1] as number, id: fields[2], version: fields[3] };
}
