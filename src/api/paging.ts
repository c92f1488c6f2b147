/** Opaque list cursors: the position after the last item of a page, base64url JSON. */
import { ApiError } from './errors.js';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

/** The `limit` and `cursor` query parameters every list endpoint takes. */
export const PAGE_QUERY = {
  limit: {
    description: `Items per page, 1 to ${MAX_LIMIT}. Default ${DEFAULT_LIMIT}.`,
    schema: { type: 'integer', minimum: 1, maximum: MAX_LIMIT },
  },
  cursor: {
    description: 'The `next` of the previous page.',
    schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,2000}$' },
  },
} as const;

export function encodeCursor(position: unknown): string {
  return Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');
}

/** Decodes a cursor, checking its shape with `isValid`; a bad one is a 400 naming the parameter. */
export function decodeCursor<T>(
  text: string | undefined,
  isValid: (value: unknown) => value is T,
): T | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  if (!isValid(value)) {
    throw new ApiError(
      400,
      'invalid_query',
      'query parameter "cursor" is not a cursor this list issued; start again without it',
      {
        field: 'cursor',
      },
    );
  }
  return value;
}

export function isString(value: unknown): value is string {
  return typeof value === 'string';
}

export function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

/** Cuts a sorted list into one page after `after` (exclusive), by `key`. */
export function pageOf<T>(
  items: readonly T[],
  key: (item: T) => string,
  after: string | undefined,
  limit: number,
): { items: T[]; next?: string } {
  const start = after === undefined ? 0 : items.findIndex((item) => key(item) > after);
  const from = start < 0 ? items.length : start;
  const page = items.slice(from, from + limit);
  const more = from + limit < items.length;
  return more && page.length > 0
    ? { items: page, next: encodeCursor(key(page[page.length - 1]!)) }
    : { items: page };
}
