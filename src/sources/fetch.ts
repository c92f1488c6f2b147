import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { sep } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

import { decodeBody } from './decode.js';
import { FetchError } from './fetch-error.js';

export interface FetchOptions {
  /** ETag of the previous response, sent as If-None-Match. */
  etag?: string;
  /** Last-Modified of the previous response (an HTTP date), sent as If-Modified-Since. */
  lastModified?: string;
  /** Limit in milliseconds for the whole request, body included; also the limit for headers and for each pause in the body. */
  timeoutMs: number;
  /** Limit on the decoded body in bytes; reading stops with `too-large` beyond it. */
  maxBytes: number;
  userAgent: string;
  /** When set, `file://` URLs must point inside this directory. */
  baseDir?: string;
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
 * A user and password in an http(s) URL are sent as HTTP Basic to that
 * origin only, and shown as `***` in error messages.
 * Decompresses gzip, deflate and br bodies. Throws `FetchError`.
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
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  const fail = (error: unknown, url: string): FetchError => {
    clearTimeout(timer);
    return toFetchError(error, url, options, timedOut);
  };

  const headers: Record<string, string> = {
    'user-agent': options.userAgent,
    'accept-encoding': 'gzip, deflate',
  };
  if (options.etag) headers['if-none-match'] = options.etag;
  if (options.lastModified) headers['if-modified-since'] = options.lastModified;

  // Credentials in the URL (RFC 3986 userinfo) go out as HTTP Basic, and only
  // to the origin they were written for: a redirect elsewhere does not get them.
  const basic =
    start.username !== '' || start.password !== ''
      ? `Basic ${Buffer.from(`${decodeUserinfo(start.username)}:${decodeUserinfo(start.password)}`).toString('base64')}`
      : undefined;

  let current = start;
  for (let redirects = 0; ; redirects += 1) {
    let response: Awaited<ReturnType<typeof request>>;
    const target = new URL(current);
    target.username = '';
    target.password = '';
    try {
      response = await request(target, {
        method: 'GET',
        headers:
          basic !== undefined && target.origin === start.origin
            ? { ...headers, authorization: basic }
            : headers,
        signal: controller.signal,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
      });
    } catch (error) {
      throw fail(error, redactUrl(current));
    }

    const status = response.statusCode;
    if (REDIRECT_STATUSES.has(status)) {
      discard(response.body);
      const next = redirectTarget(
        current,
        headerValue(response.headers, 'location'),
        status,
        redirects,
      );
      if (next instanceof FetchError) throw fail(next, redactUrl(current));
      current = next;
      continue;
    }
    if (status === 304) {
      discard(response.body);
      clearTimeout(timer);
      return { kind: 'not-modified', url: current.href };
    }
    if (status < 200 || status > 299) {
      discard(response.body);
      throw fail(
        new FetchError('status', `GET ${redactUrl(current)} failed: HTTP ${status}`, { status }),
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
    const body = limitBody(
      decodeBody(response.body, headerValue(response.headers, 'content-encoding'), shown),
      response.body,
      counter,
      options.maxBytes,
      shown,
      (error) => fail(error, shown),
      () => clearTimeout(timer),
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
    const contentType = headerValue(response.headers, 'content-type');
    if (etag) result.etag = etag;
    if (lastModified) result.lastModified = lastModified;
    if (contentType) result.contentType = contentType;
    return result;
  }
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
  return new FetchError('network', `GET ${url} failed: ${message}`, { cause: error });
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
    decodeBody(stream, undefined, url.href),
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
