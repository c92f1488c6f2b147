/**
 * Shared parts of every outbound HTTP request of a source: the connection
 * pool (TLS options and proxies), the per-host concurrency limit, retry
 * backoff, and error messages that name the fix.
 */
import { readFile, stat } from 'node:fs/promises';
import { Agent, EnvHttpProxyAgent, ProxyAgent, type Dispatcher } from 'undici';

/** TLS settings of a source. Paths are absolute PEM files; the passphrase is a secret. */
export interface HttpTls {
  certPath?: string;
  keyPath?: string;
  caPath?: string;
  passphrase?: string;
  /** False skips certificate verification (insecure). Default true. */
  verify?: boolean;
}

/** The HTTP settings of a source, resolved from its configuration with secrets read from the environment. */
export interface HttpSettings {
  /** A header sent with every request to the source's own origin, e.g. Authorization; its value is a secret. */
  authHeader?: { name: string; value: string };
  tls?: HttpTls;
  /** Proxy URL for this source; it takes precedence over HTTP_PROXY, HTTPS_PROXY and NO_PROXY. */
  proxy?: string;
  /** Retries of one request after a network error, HTTP 429 or a 5xx. */
  maxRetries: number;
  /** Ceiling of the first retry's random wait in ms; it doubles on each further retry up to MAX_BACKOFF_MS. */
  retryDelayMs: number;
  /** Name of the entry to read from a zip body; without it the zip must hold one file. */
  zipEntry?: string;
}

/** Upper bound of one backoff wait, in ms. */
export const MAX_BACKOFF_MS = 30_000;

/** Retry-After values above this many seconds fail the request instead of stalling the poll. */
export const MAX_RETRY_AFTER_SECONDS = 60;

/** Requests in flight to one host (host and port) at most, over all sources of the process. */
export const DEFAULT_MAX_PER_HOST = 4;

/**
 * Returns the wait before retry number `attempt + 1`, in ms: "full jitter",
 * a uniform random wait between 0 and min(MAX_BACKOFF_MS, base * 2^attempt),
 * so that many sources failing together do not retry in step.
 */
export function backoffDelayMs(
  attempt: number,
  baseMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(baseMs * 2 ** attempt, MAX_BACKOFF_MS);
  return Math.floor(random() * ceiling);
}

/** Parses `Retry-After` (RFC 9110, section 10.2.3): delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** True for HTTP statuses worth a retry: 429 Too Many Requests and every 5xx. */
export function isRetriableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

/** Network error codes worth a retry; TLS and certificate errors are not among them. */
const RETRIABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  const causeCode = (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  return typeof causeCode === 'string' ? causeCode : undefined;
}

/** True for a connection failure that a retry may cure (refused, reset, DNS timeout). */
export function isRetriableNetworkError(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && RETRIABLE_CODES.has(code);
}

/** OpenSSL and Node codes of a certificate that could not be verified. */
const CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Describes a failed connection in words an operator can act on. A
 * certificate that could not be verified names the `tls` keys that fix it.
 */
export function describeNetworkError(error: unknown): string {
  const code = errorCode(error);
  const message = (error as Error | null)?.message ?? String(error);
  if (code !== undefined && CERTIFICATE_CODES.has(code)) {
    return `the server's TLS certificate could not be verified (${code}: ${message}); set tls.caPath to the PEM file of the CA that signed it, or tls.verify: false to skip the check (insecure)`;
  }
  // undici's message when the proxy returns a status other than 200 to CONNECT.
  const tunnel = /^Proxy response \((\d{3})\) !== 200 when HTTP Tunneling$/.exec(message);
  if (tunnel !== null) {
    const fix =
      tunnel[1] === '407'
        ? '; the proxy requires authentication: give its URL with user and password through proxyEnv or HTTPS_PROXY'
        : '';
    return `the proxy refused the tunnel with HTTP ${tunnel[1]}${fix}`;
  }
  return message;
}

/**
 * Limits requests in flight per host, so that sources sharing a host (the
 * feeds of one provider, a MISP feed's event files) never flood it.
 */
export class HostLimiter {
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(readonly maxPerHost: number = DEFAULT_MAX_PER_HOST) {
    if (!Number.isInteger(maxPerHost) || maxPerHost < 1) {
      throw new RangeError(`invalid per-host limit ${maxPerHost}: use a whole number of 1 or more`);
    }
  }

  /** Waits for a free slot of `host` and returns the function that releases it; releasing twice is harmless. */
  async acquire(host: string): Promise<() => void> {
    const count = this.active.get(host) ?? 0;
    if (count < this.maxPerHost) {
      this.active.set(host, count + 1);
    } else {
      // The releasing request hands its slot over, so the count stays as it is.
      await new Promise<void>((resolve) => {
        const queue = this.waiting.get(host) ?? [];
        queue.push(resolve);
        this.waiting.set(host, queue);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release(host);
    };
  }

  /** Requests in flight to `host`. */
  inFlight(host: string): number {
    return this.active.get(host) ?? 0;
  }

  private release(host: string): void {
    const next = this.waiting.get(host)?.shift();
    if (next !== undefined) {
      next();
      return;
    }
    this.waiting.delete(host);
    const count = (this.active.get(host) ?? 1) - 1;
    if (count <= 0) this.active.delete(host);
    else this.active.set(host, count);
  }
}

/** The limiter that every fetch of the process shares unless a caller passes its own. */
export const SHARED_HOST_LIMITER = new HostLimiter();

/** A TLS file could not be read; the message names the key that points to it. */
export class TlsFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TlsFileError';
  }
}

const PROXY_VARIABLES = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy'];
const NO_PROXY_VARIABLES = ['NO_PROXY', 'no_proxy'];

const dispatchers = new Map<string, Promise<Dispatcher>>();

/**
 * Returns the connection pool for a source's TLS and proxy settings, built
 * once per distinct setting and reused by later polls. A per-source `proxy`
 * wins; otherwise HTTP_PROXY, HTTPS_PROXY and NO_PROXY of the environment
 * apply (undici's EnvHttpProxyAgent). The TLS files are read again when
 * their modification time changes, so a renewed certificate needs no restart.
 */
export async function dispatcherFor(
  tls: HttpTls | undefined,
  proxy: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Dispatcher> {
  const envProxy = [...PROXY_VARIABLES, ...NO_PROXY_VARIABLES].map((name) => env[name] ?? '');
  const usesEnvProxy = proxy === undefined && PROXY_VARIABLES.some((name) => env[name]);
  const files = await Promise.all(
    [tls?.certPath, tls?.keyPath, tls?.caPath].map((path) => modifiedAt(path)),
  );
  const key = JSON.stringify([tls ?? null, proxy ?? null, usesEnvProxy ? envProxy : null, files]);
  let dispatcher = dispatchers.get(key);
  if (dispatcher === undefined) {
    dispatcher = buildDispatcher(tls, proxy, usesEnvProxy);
    dispatchers.set(key, dispatcher);
    // A failed build (an unreadable file) is not cached, so the next poll reads the files again.
    dispatcher.catch(() => dispatchers.delete(key));
  }
  return dispatcher;
}

async function modifiedAt(path: string | undefined): Promise<number | null> {
  if (path === undefined) return null;
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return null;
  }
}

async function buildDispatcher(
  tls: HttpTls | undefined,
  proxy: string | undefined,
  usesEnvProxy: boolean,
): Promise<Dispatcher> {
  const connect = await tlsOptions(tls);
  if (proxy !== undefined) return new ProxyAgent({ uri: proxy, requestTls: connect });
  if (usesEnvProxy) return new EnvHttpProxyAgent({ connect, requestTls: connect });
  return new Agent({ connect });
}

async function tlsOptions(tls: HttpTls | undefined): Promise<Record<string, unknown>> {
  const options: Record<string, unknown> = {};
  if (tls === undefined) return options;
  if (tls.certPath) options.cert = await readPem(tls.certPath, 'tls.certPath');
  if (tls.keyPath) options.key = await readPem(tls.keyPath, 'tls.keyPath');
  if (tls.caPath) options.ca = await readPem(tls.caPath, 'tls.caPath');
  if (tls.passphrase !== undefined) options.passphrase = tls.passphrase;
  if (tls.verify === false) options.rejectUnauthorized = false;
  return options;
}

async function readPem(path: string, key: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new TlsFileError(
      `reading ${key} ${path} failed: ${(error as Error).message}; fix ${key} of the source`,
      { cause: error },
    );
  }
}

/** Closes every cached connection pool; for tests and shutdown. */
export async function closeDispatchers(): Promise<void> {
  const all = [...dispatchers.values()];
  dispatchers.clear();
  await Promise.all(
    all.map(async (pending) => {
      try {
        await (await pending).close();
      } catch {
        // A pool whose build failed has nothing to close.
      }
    }),
  );
}
