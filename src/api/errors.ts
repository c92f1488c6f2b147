/** Errors of the analyst REST API: a stable code, a message that names the field, value and fix. */

export const ERROR_CODES = [
  'invalid_request',
  'invalid_body',
  'invalid_query',
  'invalid_encoding',
  'unauthorized',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'already_exists',
  'stale_revision',
  'payload_too_large',
  'unsupported_media_type',
  'not_acceptable',
  'unprocessable',
  'too_many_requests',
  'unavailable',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ApiErrorBody {
  code: ErrorCode;
  message: string;
  /** JSON pointer of the offending field in the body, or the query parameter name. */
  field?: string;
  /** The offending value, when short enough to repeat. */
  value?: unknown;
  /** Further problems found in the same request. */
  problems?: { field?: string; message: string }[];
}

export class ApiError extends Error {
  readonly headers: Record<string, string>;

  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly extra: Omit<ApiErrorBody, 'code' | 'message'> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.headers = headers;
  }

  toBody(): ApiErrorBody {
    return { code: this.code, message: this.message, ...this.extra };
  }
}

/** Repeats a value in a message, shortened so that a huge value does not flood the response. */
export function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** Returns whether a value is short enough to repeat in an error body. */
export function echoable(value: unknown): boolean {
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) {
    return (JSON.stringify(value) ?? '').length <= 200;
  }
  return false;
}

export function notFound(what: string, id: string, fix = ''): ApiError {
  return new ApiError(
    404,
    'not_found',
    `${what} ${quote(id)} does not exist${fix ? `; ${fix}` : ''}`,
  );
}
