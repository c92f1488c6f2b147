import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';

import { decodeBody } from './decode.js';
import { redactUrl } from './fetch.js';
import { FetchError } from './fetch-error.js';
import {
  backoffDelayMs,
  describeNetworkError,
  dispatcherFor,
  isRetriableNetworkError as isRetriableConnectionError,
  MAX_RETRY_AFTER_SECONDS,
  parseRetryAfter,
  SHARED_HOST_LIMITER,
  TlsFileError,
  type HostLimiter,
  type HttpSettings,
  type HttpTls,
} from './http-client.js';

export { MAX_RETRY_AFTER_SECONDS, parseRetryAfter };

/** The media type of every TAXII 2.1 request and response body (TAXII 2.1, section 1.6.8). */
export const TAXII21_MEDIA_TYPE = 'application/taxii+json;version=2.1';

const ERROR_BODY_BYTES = 4096;

/**
 * Paths of PEM files for mutual TLS, already resolved to absolute paths, the
 * key's passphrase (a secret, never logged) and whether to verify the server.
 */
export type TlsFiles = HttpTls;

export interface TaxiiClientOptions {
  userAgent: string;
  /**
   * Authentication header, TLS files, proxy and retries of the source, as
   * for every other kind; `zipEntry` does not apply. The header is sent with
   * every request of the client. Default: none, and no retries.
   */
  http?: HttpSettings;
  /** Limit of one request, body included, in ms. */
  timeoutMs: number;
  /** Largest decoded response body accepted, in bytes. */
  maxBytes: number;
  /** Per-host concurrency limit. Default: the one the whole process shares. */
  limiter?: HostLimiter;
  logger: Logger;
}

/** A parsed TAXII response body with the text it was parsed from. */
export interface TaxiiResponse {
  url: string;
  body: unknown;
  text: string;
  bytes: number;
  headers: Record<string, string | string[] | undefined>;
}

/** A TAXII request that failed; the message names the URL and what to check. */
export class TaxiiRequestError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TaxiiRequestError';
  }
}

/**
 * A TAXII 2.1 client for one poll: one connection pool (with the client
 * certificate, when configured), GET with retries, and response checks.
 * Close it when the poll ends.
 */
export class TaxiiClient {
  private constructor(
    private readonly options: TaxiiClientOptions,
    private readonly dispatcher: Dispatcher,
  ) {}

  /**
   * Reads the TLS files, when configured, and picks the connection pool. Pools
   * are shared with every fetch of the same settings and kept for later polls.
   * The source's `proxy` applies, else HTTP_PROXY, HTTPS_PROXY and NO_PROXY.
   */
  static async open(options: TaxiiClientOptions): Promise<TaxiiClient> {
    try {
      const { tls, proxy } = options.http ?? {};
      return new TaxiiClient(options, await dispatcherFor(tls, proxy));
    } catch (error) {
      if (error instanceof TlsFileError) {
        throw new TaxiiRequestError(error.message, undefined, { cause: error });
      }
      throw error;
    }
  }

  /** Ends the client's use of the pool; the pool stays open for later polls. */
  async close(): Promise<void> {}

  /**
   * GETs a TAXII resource and parses its JSON body. Retries a 429, a 5xx and
   * network errors up to `maxRetries` times, waiting for `Retry-After` when
   * the server sends one and backing off exponentially otherwise.
   */
  async get(url: string): Promise<TaxiiResponse> {
    const { logger } = this.options;
    const maxRetries = this.options.http?.maxRetries ?? 0;
    for (let attempt = 0; ; attempt += 1) {
      let outcome: TaxiiResponse | RetriableFailure;
      try {
        outcome = await this.getOnce(url);
      } catch (error) {
        const failure = toRequestError(error, url, this.options.timeoutMs);
        if (!isRetriableNetworkError(error)) throw failure;
        outcome = { retriable: true, reason: failure.reason };
      }
      if (!('retriable' in outcome)) return outcome;

      if (attempt >= maxRetries) {
        throw new TaxiiRequestError(
          `GET ${url} failed after ${attempt + 1} attempts: ${outcome.reason}`,
          outcome.status,
        );
      }
      const delayMs = this.retryDelay(url, attempt, outcome);
      logger.warn(
        {
          url: redactUrl(url),
          attempt: attempt + 1,
          status: outcome.status,
          delayMs,
          reason: outcome.reason,
        },
        'TAXII request failed; retrying',
      );
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }

  private retryDelay(url: string, attempt: number, failure: RetriableFailure): number {
    if (failure.retryAfterSeconds !== undefined) {
      if (failure.retryAfterSeconds > MAX_RETRY_AFTER_SECONDS) {
        throw new TaxiiRequestError(
          `GET ${url} failed: ${failure.reason}, and the server asks to wait ${failure.retryAfterSeconds} s (Retry-After), more than the ${MAX_RETRY_AFTER_SECONDS} s a poll waits; the next scheduled poll tries again`,
          failure.status,
        );
      }
      return failure.retryAfterSeconds * 1000;
    }
    return backoffDelayMs(attempt, this.options.http?.retryDelayMs ?? 0);
  }

  private async getOnce(url: string): Promise<TaxiiResponse | RetriableFailure> {
    const headers: Record<string, string> = {
      accept: TAXII21_MEDIA_TYPE,
      'accept-encoding': 'gzip, deflate',
      'user-agent': this.options.userAgent,
    };
    const authHeader = this.options.http?.authHeader;
    if (authHeader) headers[authHeader.name.toLowerCase()] = authHeader.value;

    const limiter = this.options.limiter ?? SHARED_HOST_LIMITER;
    const release = await limiter.acquire(new URL(url).host);
    try {
      return await this.send(url, headers);
    } finally {
      release();
    }
  }

  private async send(
    url: string,
    headers: Record<string, string>,
  ): Promise<TaxiiResponse | RetriableFailure> {
    const { timeoutMs } = this.options;
    const signal = AbortSignal.timeout(timeoutMs);
    const response = await request(url, {
      method: 'GET',
      headers,
      dispatcher: this.dispatcher,
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const status = response.statusCode;
    const header = (name: string) => headerValue(response.headers, name);

    if (status === 429 || status >= 500) {
      const detail = await readErrorDetail(response);
      return {
        retriable: true,
        status,
        reason: `HTTP ${status}${detail}`,
        retryAfterSeconds: parseRetryAfter(header('retry-after')),
      };
    }
    if (status < 200 || status > 299) {
      const detail = await readErrorDetail(response);
      throw new TaxiiRequestError(
        `GET ${url} failed: HTTP ${status}${detail}${hint(status)}`,
        status,
      );
    }

    const contentType = header('content-type');
    if (!isTaxii21MediaType(contentType)) {
      discard(response.body);
      throw new TaxiiRequestError(
        `GET ${url} returned Content-Type ${JSON.stringify(contentType ?? '')}, expected ${TAXII21_MEDIA_TYPE}; check that the URL is a TAXII 2.1 endpoint`,
        status,
      );
    }

    const { text, bytes } = await readText(response, url, this.options.maxBytes);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw new TaxiiRequestError(
        `GET ${url} returned invalid JSON: ${(error as Error).message}`,
        status,
      );
    }
    return { url, body, text, bytes, headers: response.headers };
  }
}

interface RetriableFailure {
  retriable: true;
  reason: string;
  status?: number;
  retryAfterSeconds?: number;
}

function headerValue(
  headers: Record<string, string | string[] | undefined>,
  name: string,
): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Accepts `application/taxii+json` with no `version` parameter or with
 * `version=2.1`. Type, subtype and parameter names are case-insensitive
 * (RFC 9110, section 8.3.1); the parameter value may be quoted.
 */
export function isTaxii21MediaType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const [essence = '', ...params] = contentType.split(';');
  if (essence.trim().toLowerCase() !== 'application/taxii+json') return false;
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    const name = param.slice(0, eq).trim().toLowerCase();
    const value = param
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1');
    if (name === 'version' && value !== '2.1') return false;
  }
  return true;
}

function hint(status: number): string {
  if (status === 401) return '; check the credentials in the environment variables of auth';
  if (status === 403) return '; the account may not read this collection';
  if (status === 404) return '; check the URL, the API root and the collection';
  if (status === 406) return `; the server does not serve ${TAXII21_MEDIA_TYPE}`;
  return '';
}

/** Reads a little of an error body: the title and description of a TAXII error, else its start. */
async function readErrorDetail(response: Dispatcher.ResponseData): Promise<string> {
  let text = '';
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      text += chunk.toString('utf8');
      if (text.length >= ERROR_BODY_BYTES) break;
    }
  } catch {
    // The status is the failure. A body that breaks off adds no detail.
  } finally {
    discard(response.body);
  }
  try {
    const error = JSON.parse(text) as { title?: unknown; description?: unknown };
    const parts = [error.title, error.description].filter((part) => typeof part === 'string');
    if (parts.length > 0) return ` (${parts.join(': ')})`;
  } catch {
    // Not a TAXII error resource; show the start of the body instead.
  }
  const start = text.slice(0, 200).replace(/\s+/g, ' ').trim();
  return start ? ` (${JSON.stringify(start)})` : '';
}

async function readText(
  response: Dispatcher.ResponseData,
  url: string,
  maxBytes: number,
): Promise<{ text: string; bytes: number }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  try {
    const encoding = headerValue(response.headers, 'content-encoding');
    for await (const chunk of decodeBody(response.body as AsyncIterable<Buffer>, encoding, url)) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        throw new TaxiiRequestError(
          `GET ${url} failed: body larger than the cap of ${maxBytes} bytes; lower limit or raise maxBytes`,
          response.statusCode,
        );
      }
      chunks.push(chunk);
    }
  } finally {
    discard(response.body);
  }
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)), bytes };
  } catch (error) {
    throw new TaxiiRequestError(
      `GET ${url} returned a body that is not UTF-8`,
      response.statusCode,
      {
        cause: error,
      },
    );
  }
}

function discard(body: Readable | Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}

/** Connection errors and timeouts are retried; a TAXII error or a body that fails to decode is not. */
function isRetriableNetworkError(error: unknown): boolean {
  if (error instanceof TaxiiRequestError) return false;
  if (error instanceof FetchError) return false;
  return isTimeout(error) || isRetriableConnectionError(error);
}

/**
 * True when the request's own time limit fired: `AbortSignal.timeout` aborts
 * with a `TimeoutError`, and undici's header and body timers have their own
 * codes. undici's `AbortError` is not a timeout: it also reports a proxy
 * that refused the CONNECT tunnel.
 */
function isTimeout(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  const code = (error as { code?: unknown } | null)?.code;
  return (
    name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT'
  );
}

/** Maps a thrown error to a `TaxiiRequestError` and a short reason for retry logs. */
function toRequestError(
  error: unknown,
  url: string,
  timeoutMs: number,
): TaxiiRequestError & { reason: string } {
  if (error instanceof TaxiiRequestError) return Object.assign(error, { reason: error.message });
  const timedOut = isTimeout(error);
  const reason = timedOut ? `timed out after ${timeoutMs} ms` : describeNetworkError(error);
  const message = timedOut ? `GET ${url} ${reason}` : `GET ${url} failed: ${reason}`;
  return Object.assign(new TaxiiRequestError(message, undefined, { cause: error }), { reason });
}
