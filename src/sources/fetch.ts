import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { sep } from 'node:path';
import { PassThrough, pipeline, type Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';

import { decodeBody } from './decode.js';
import { FetchError } from './fetch-error.js';
import {
  backoffDelayMs,
  describeNetworkError,
  dispatcherFor,
  isRetriableNetworkError,
  isRetriableStatus,
  MAX_RETRY_AFTER_SECONDS,
  parseRetryAfter,
  SHARED_HOST_LIMITER,
  TlsFileError,
  type HostLimiter,
  type HttpSettings,
} from './http-client.js';

export interface FetchOptions {
  /** ETag of the previous response, sent as If-None-Match. */
  etag?: string;
  /** Last-Modified of the previous response (an HTTP date), sent as If-Modified-Since. */
  lastModified?: string;
  /**
   * Limit in milliseconds for one attempt, body included; also the limit for
   * headers and for each pause in the body. Retries get the limit afresh.
   */
  timeoutMs: number;
  /** Limit on the decoded body in bytes; reading stops with `too-large` beyond it. */
  maxBytes: number;
  /** The User-Agent header, naming the hub and its version. */
  userAgent: string;
  /** When set, `file://` URLs must point inside this directory. */
  baseDir?: string;
  /** Authentication, TLS, proxy, retries and zip entry of the source. Default: no retries. */
  http?: HttpSettings;
  /** Per-host concurrency limit. Default: the one the whole process shares. */
  limiter?: HostLimiter;
  /** Receives a warning for each retry. */
  logger?: Logger;
  /** Random numbers in [0, 1) for the backoff jitter; tests may pin it. */
  random?: () => number;
}

export type FetchResult =
  | { kind: 'not-modified'; url: string }
  | {
      kind: 'body';
      /** The final URL after redirects. */
      url: string;
      status: number;
      etag?: string;
      lastModified?: string;
      contentType?: string;
      /**
       * The decoded body, read while iterating; iterate it once. It throws
       * `FetchError` on a timeout, the size cap or a decode error. Stopping
       * early releases the connection.
       */
      body: AsyncIterable<Buffer>;
      /** Decoded bytes read from `body` so far. */
      bytes: () => number;
    };

const MAX_REDIRECTS = 5;

/**
 * Returns the URL as error messages and logs show it, with a password in it
 * (a feed URL such as `https://user:KEY@host/list`) replaced by `***`.
 */
export function redactUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return String(url);
  }
  if (parsed.password !== '') parsed.password = '***';
  return parsed.href;
}
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * Fetches a feed over http(s) or from a `file://` URL, streaming the body.
 * Sends a conditional GET when `etag` or `lastModified` is given and returns
 * `not-modified` on 304 (for files: when the mtime is not newer than
 * `lastModified`). Follows up to five redirects to http or https URLs.
 * A user and password in an http(s) URL, and the source's auth header, are
 * sent to that origin only. Error messages show a password as `***`.
 * Retries network errors, 429 and 5xx with exponential backoff and full
 * jitter, and honours Retry-After up to MAX_RETRY_AFTER_SECONDS.
 * Decompresses gzip, deflate, br and zip bodies, and converts UTF-16 and
 * other charsets to UTF-8. Throws `FetchError`.
 */
export async function fetchFeed(url: string, options: FetchOptions): Promise<FetchResult> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new FetchError('invalid-url', `invalid feed URL "${url}": not an absolute URL`, {
      cause: error,
    });
  }
  if (parsed.protocol === 'file:') return fetchFile(parsed, options);
  if (parsed.protocol === 'http:' || parsed.protocol === 'https:')
    return fetchHttp(parsed, options);
  throw new FetchError('invalid-url', `invalid feed URL "${url}": use http, https or file`);
}

/** Percent-decodes a user or password of a URL; a stray `%` is kept as written. */
function decodeUserinfo(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function headerValue(
  headers: Record<string, string | string[] | undefined>,
  name: string,
): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function fetchHttp(start: URL, options: FetchOptions): Promise<FetchResult> {
  const http = options.http;
  let dispatcher: Dispatcher;
  try {
    dispatcher = await dispatcherFor(http?.tls, http?.proxy);
  } catch (error) {
    if (error instanceof TlsFileError) {
      throw new FetchError('network', error.message, { cause: error });
    }
    throw new FetchError(
      'invalid-url',
      `GET ${redactUrl(start)} failed: invalid proxy settings (${(error as Error).message}); fix proxy of the source or HTTP_PROXY, HTTPS_PROXY and NO_PROXY`,
      { cause: error },
    );
  }

  const headers: Record<string, string> = {
    'user-agent': options.userAgent,
    'accept-encoding': 'gzip, deflate',
  };
  if (options.etag) headers['if-none-match'] = options.etag;
  if (options.lastModified) headers['if-modified-since'] = options.lastModified;

  // Credentials in the URL (RFC 3986 userinfo) and the auth header go out
  // only to the origin they were written for: a redirect elsewhere does not get them.
  const privateHeaders: Record<string, string> = {};
  if (start.username !== '' || start.password !== '') {
    privateHeaders.authorization = `Basic ${Buffer.from(`${decodeUserinfo(start.username)}:${decodeUserinfo(start.password)}`).toString('base64')}`;
  }
  if (http?.authHeader) privateHeaders[http.authHeader.name.toLowerCase()] = http.authHeader.value;

  let current = start;
  for (let redirects = 0; ; redirects += 1) {
    const target = new URL(current);
    target.username = '';
    target.password = '';
    const sent = target.origin === start.origin ? { ...headers, ...privateHeaders } : headers;
    const attempt = await requestWithRetries(target, sent, dispatcher, options);
    const { response, finish } = attempt;
    const fail = (error: unknown, url: string): FetchError => {
      finish();
      return toFetchError(error, url, options, attempt.timedOut());
    };

    const status = response.statusCode;
    if (REDIRECT_STATUSES.has(status)) {
      discard(response.body);
      finish();
      const next = redirectTarget(
        current,
        headerValue(response.headers, 'location'),
        status,
        redirects,
      );
      if (next instanceof FetchError) throw next;
      current = next;
      continue;
    }
    if (status === 304) {
      discard(response.body);
      finish();
      return { kind: 'not-modified', url: current.href };
    }
    if (status < 200 || status > 299) {
      discard(response.body);
      throw fail(
        new FetchError(
          'status',
          `GET ${redactUrl(current)} failed${attempt.attempts > 1 ? ` after ${attempt.attempts} attempts` : ''}: HTTP ${status}${hint(status, http?.authHeader !== undefined && target.origin === start.origin)}`,
          { status },
        ),
        redactUrl(current),
      );
    }

    const length = Number(headerValue(response.headers, 'content-length'));
    if (Number.isFinite(length) && length > options.maxBytes) {
      discard(response.body);
      throw fail(tooLarge(redactUrl(current), options.maxBytes), redactUrl(current));
    }

    const counter = { bytes: 0 };
    const url = current.href;
    const shown = redactUrl(current);
    const contentType = headerValue(response.headers, 'content-type');
    const raw = withoutBackpressure(response.body, options.maxBytes);
    const body = limitBody(
      decodeBody(raw, headerValue(response.headers, 'content-encoding'), shown, {
        contentType,
        zipEntry: http?.zipEntry,
      }),
      raw,
      counter,
      options.maxBytes,
      shown,
      (error) => fail(error, shown),
      finish,
    );
    const result: FetchResult = {
      kind: 'body',
      url,
      status,
      body,
      bytes: () => counter.bytes,
    };
    const etag = headerValue(response.headers, 'etag');
    const lastModified = headerValue(response.headers, 'last-modified');
    if (etag) result.etag = etag;
    if (lastModified) result.lastModified = lastModified;
    if (contentType) result.contentType = contentType;
    return result;
  }
}

/** A response whose host slot and timer stay held until `finish` is called. */
interface HeldResponse {
  response: Dispatcher.ResponseData;
  /** Releases the host slot and stops the timer; calling it again does nothing. */
  finish: () => void;
  /** True when the attempt's timer has fired. */
  timedOut: () => boolean;
  /** Attempts made, the last one included. */
  attempts: number;
}

/**
 * Sends one GET, retrying network errors, 429 and 5xx up to `maxRetries`
 * times. Each attempt takes a slot of the host's concurrency limit and has
 * its own timer. The wait between attempts uses neither.
 */
async function requestWithRetries(
  target: URL,
  headers: Record<string, string>,
  dispatcher: Dispatcher,
  options: FetchOptions,
): Promise<HeldResponse> {
  const maxRetries = options.http?.maxRetries ?? 0;
  const limiter = options.limiter ?? SHARED_HOST_LIMITER;
  const shown = redactUrl(target);
  for (let attempt = 0; ; attempt += 1) {
    const release = await limiter.acquire(target.host);
    const controller = new AbortController();
    let fired = false;
    const timer = setTimeout(() => {
      fired = true;
      controller.abort();
    }, options.timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      release();
    };

    let failure: { reason: string; status?: number; retryAfter?: number; cause?: unknown };
    try {
      const response = await request(target, {
        method: 'GET',
        headers,
        dispatcher,
        signal: controller.signal,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
      });
      const status = response.statusCode;
      if (!isRetriableStatus(status) || attempt >= maxRetries) {
        return { response, finish, timedOut: () => fired, attempts: attempt + 1 };
      }
      discard(response.body);
      failure = {
        reason: `HTTP ${status}`,
        status,
        retryAfter: parseRetryAfter(headerValue(response.headers, 'retry-after')),
      };
    } catch (error) {
      finish();
      if (fired || !isRetriableNetworkError(error) || attempt >= maxRetries) {
        throw toFetchError(error, shown, options, fired);
      }
      failure = { reason: describeNetworkError(error), cause: error };
    }
    finish();

    let delayMs: number;
    if (failure.retryAfter !== undefined) {
      if (failure.retryAfter > MAX_RETRY_AFTER_SECONDS) {
        throw new FetchError(
          'status',
          `GET ${shown} failed: ${failure.reason}, and the server asks to wait ${failure.retryAfter} s (Retry-After), more than the ${MAX_RETRY_AFTER_SECONDS} s a poll waits; the next scheduled poll tries again`,
          { status: failure.status },
        );
      }
      delayMs = failure.retryAfter * 1000;
    } else {
      delayMs = backoffDelayMs(attempt, options.http?.retryDelayMs ?? 1000, options.random);
    }
    options.logger?.warn(
      { url: shown, attempt: attempt + 1, status: failure.status, delayMs, reason: failure.reason },
      'fetch failed; retrying',
    );
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

/** Names the fix for a status caused by the source's auth header or its proxy. */
function hint(status: number, sentAuth: boolean): string {
  if (status === 401 && sentAuth) {
    return '; check the credentials in the environment variables named by auth';
  }
  if (status === 403 && sentAuth) return '; the credentials may not read this feed';
  if (status === 407) {
    return '; the proxy requires authentication: give its URL with user and password through proxyEnv or HTTPS_PROXY';
  }
  return '';
}

function redirectTarget(
  current: URL,
  location: string | undefined,
  status: number,
  redirects: number,
): URL | FetchError {
  const shown = redactUrl(current);
  if (redirects >= MAX_REDIRECTS) {
    return new FetchError('status', `GET ${shown} failed: more than ${MAX_REDIRECTS} redirects`, {
      status,
    });
  }
  if (!location) {
    return new FetchError(
      'status',
      `GET ${shown} failed: HTTP ${status} without a Location header`,
      {
        status,
      },
    );
  }
  let next: URL;
  try {
    next = new URL(location, current);
  } catch (error) {
    return new FetchError(
      'status',
      `GET ${shown} failed: invalid redirect Location "${location}"`,
      {
        status,
        cause: error,
      },
    );
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    return new FetchError(
      'invalid-url',
      `GET ${shown} redirected to ${redactUrl(next)}: only http and https are followed`,
    );
  }
  return next;
}

/**
 * Releases a body that will not be read. Destroying an unfinished undici body
 * emits an abort error, which is expected here, so it is swallowed.
 */
/**
 * Returns a stream of `body` that reads it as fast as it arrives, keeping up
 * to `maxBytes` that the consumer has not read yet. undici 7 stops the
 * process with an AssertionError when a server closes the connection while
 * the response parser is paused by a slow consumer (nodejs/undici#5360,
 * fixed only in undici 8, which needs Node 22). A feed written to a slow
 * disk therefore costs memory instead.
 */
function withoutBackpressure(body: Readable, maxBytes: number): Readable {
  const buffered = new PassThrough({ highWaterMark: maxBytes + 1 });
  // Errors reach the consumer through `buffered`, which the pipeline destroys with them.
  pipeline(body, buffered, () => {});
  return buffered;
}

function discard(body: Readable): void {
  body.on('error', () => {});
  body.destroy();
}

function tooLarge(url: string, maxBytes: number): FetchError {
  return new FetchError(
    'too-large',
    `GET ${url} failed: body larger than the cap of ${maxBytes} bytes; raise maxBytes if the feed is really this big`,
  );
}

/** Counts decoded bytes, enforces the cap, maps errors and releases the raw body however iteration ends. */
async function* limitBody(
  decoded: AsyncIterable<Buffer>,
  raw: Readable,
  counter: { bytes: number },
  maxBytes: number,
  url: string,
  fail: (error: unknown) => FetchError,
  finish: () => void,
): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of decoded) {
      counter.bytes += chunk.length;
      if (counter.bytes > maxBytes) throw tooLarge(url, maxBytes);
      yield chunk;
    }
  } catch (error) {
    throw fail(error);
  } finally {
    finish();
    discard(raw);
  }
}

function toFetchError(
  error: unknown,
  url: string,
  options: FetchOptions,
  timedOut: boolean,
): FetchError {
  if (error instanceof FetchError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = (error as Error | null)?.message ?? String(error);
  if (
    timedOut ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  ) {
    return new FetchError('timeout', `GET ${url} timed out after ${options.timeoutMs} ms`, {
      cause: error,
    });
  }
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new FetchError(
      'decode',
      `GET ${url} failed: the compressed body is corrupt (${message})`,
      {
        cause: error,
      },
    );
  }
  return new FetchError('network', `GET ${url} failed: ${describeNetworkError(error)}`, {
    cause: error,
  });
}

async function fetchFile(url: URL, options: FetchOptions): Promise<FetchResult> {
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch (error) {
    throw new FetchError(
      'invalid-url',
      `invalid file URL "${url.href}": ${(error as Error).message}`,
      { cause: error },
    );
  }

  let resolved: string;
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    resolved = await realpath(path);
    info = await stat(resolved);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') {
      throw new FetchError('not-found', `file ${path} of ${url.href} not found`, { cause: error });
    }
    throw new FetchError('network', `reading ${url.href} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (options.baseDir !== undefined) {
    const base = await realpath(options.baseDir);
    if (!resolved.startsWith(base + sep)) {
      throw new FetchError('invalid-url', `file ${path} is outside the allowed directory ${base}`);
    }
  }
  if (!info.isFile())
    throw new FetchError('not-found', `${path} of ${url.href} is not a regular file`);

  // HTTP dates have whole seconds, so the mtime is compared at that precision.
  const mtimeSeconds = Math.floor(info.mtimeMs / 1000);
  const since = options.lastModified ? Date.parse(options.lastModified) : Number.NaN;
  if (Number.isFinite(since) && mtimeSeconds * 1000 <= since) {
    return { kind: 'not-modified', url: url.href };
  }

  const counter = { bytes: 0 };
  const stream = createReadStream(resolved);
  const body = limitBody(
    decodeBody(stream, undefined, url.href, { zipEntry: options.http?.zipEntry }),
    stream,
    counter,
    options.maxBytes,
    url.href,
    (error) => toFetchError(error, url.href, options, false),
    () => {},
  );
  return {
    kind: 'body',
    url: url.href,
    status: 200,
    lastModified: new Date(mtimeSeconds * 1000).toUTCString(),
    body,
    bytes: () => counter.bytes,
  };
}
