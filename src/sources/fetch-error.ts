/**
 * Why a fetch failed:
 * - `timeout`: the whole request, the response headers or a pause in the body took too long;
 * - `status`: a non-2xx response, or a redirect without a usable `Location` or beyond the limit;
 * - `too-large`: the decoded body exceeded the size cap;
 * - `network`: connection refused, reset, DNS failure and the like;
 * - `decode`: a compressed body that does not decompress;
 * - `not-found`: a `file://` URL whose file does not exist;
 * - `invalid-url`: an unparsable URL, an unsupported scheme (also as a redirect
 *   target) or a file outside the allowed directory.
 */
export type FetchFailure =
  'timeout' | 'status' | 'too-large' | 'network' | 'decode' | 'not-found' | 'invalid-url';

/** A failed feed fetch. The message names the URL; `status` is set for HTTP status failures. */
export class FetchError extends Error {
  readonly reason: FetchFailure;
  readonly status?: number;

  constructor(
    reason: FetchFailure,
    message: string,
    options: { cause?: unknown; status?: number } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'FetchError';
    this.reason = reason;
    if (options.status !== undefined) this.status = options.status;
  }
}
