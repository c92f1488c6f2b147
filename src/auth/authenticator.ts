/**
 * Authenticates requests with Passport: HTTP Basic for people, API keys
 * for machines. A request without an `Authorization` header is anonymous.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

import { Passport } from 'passport';
import type { Logger } from 'pino';

import { PrincipalDirectory } from './directory.js';
import type { PrincipalConfig } from './principals.js';
import { hashSecret, verifySecret } from './secrets.js';
import {
  BASIC_CHALLENGE,
  BEARER_CHALLENGE,
  BasicStrategy,
  BearerStrategy,
  type AuthenticatedUser,
} from './strategies.js';
import { LoginThrottle, type ThrottleOptions } from './throttle.js';

export type AuthOutcome =
  | { kind: 'anonymous' }
  | { kind: 'principal'; name: string }
  /** Credentials were sent and are invalid; answer 401 with these challenges. */
  | { kind: 'rejected'; challenges: string[] }
  /** Too many failed logins from this address or for this principal. */
  | { kind: 'throttled'; retryAfterSeconds: number };

export interface Authenticator {
  /** Whether any principal can log in; without one, every caller is anonymous. */
  readonly enabled: boolean;
  /** The challenges of a 401 response, one per scheme. */
  readonly challenges: string[];
  authenticate(req: IncomingMessage, res: ServerResponse, clientIp: string): Promise<AuthOutcome>;
}

export interface AuthenticatorOptions {
  /** The principals of the principals file; ignored when `directory` is given. */
  principals?: readonly PrincipalConfig[];
  /** File and stored principals together; built from `principals` when absent. */
  directory?: PrincipalDirectory;
  logger: Logger;
  throttle?: ThrottleOptions;
  /** How long a verified credential skips the scrypt check, in ms. Default 300,000. */
  cacheTtlMs?: number;
}

class ThrottledError extends Error {
  constructor(readonly retryAfterMs: number) {
    super('too many failed logins');
  }
}

const CACHE_SIZE = 1000;

/** Verified credentials, keyed by a SHA-256 of scheme and credentials, so that repeat requests skip scrypt. */
class CredentialCache {
  private readonly entries = new Map<string, { name: string; expiresAt: number }>();

  constructor(private readonly ttlMs: number) {}

  static key(scheme: string, identity: string, secret: string, hash: string): string {
    return createHash('sha256')
      .update(JSON.stringify([scheme, identity, secret, hash]))
      .digest('base64');
  }

  get(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.expiresAt < Date.now()) return undefined;
    return entry.name;
  }

  set(key: string, name: string): void {
    this.entries.delete(key);
    this.entries.set(key, { name, expiresAt: Date.now() + this.ttlMs });
    // Map keeps insertion order, so the first key is the oldest.
    if (this.entries.size > CACHE_SIZE) this.entries.delete(this.entries.keys().next().value!);
  }
}

/** Builds the authenticator of the TAXII routes from the configured principals. */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const { logger } = options;
  const throttle = new LoginThrottle(options.throttle);
  const cache = new CredentialCache(options.cacheTtlMs ?? 300_000);
  const directory =
    options.directory ?? new PrincipalDirectory(undefined, options.principals ?? []);
  // Unknown names are checked against this hash, so that they take as long as known ones.
  const decoy = hashSecret('decoy password that matches nothing');

  async function verify(
    scheme: 'basic' | 'bearer',
    req: IncomingMessage,
    identity: string,
    secret: string,
  ): Promise<string | undefined> {
    const ip = clientIpOf(req);
    const buckets = [`ip:${ip}`, `${scheme}:${identity}`];
    const wait = throttle.retryAfterMs(buckets);
    if (wait > 0) throw new ThrottledError(wait);

    // The entry is looked up on every request, so that a revoked key or a
    // changed password stops working at once; only the scrypt check is cached.
    const entry =
      scheme === 'basic'
        ? { principal: identity, hash: await directory.passwordHash(identity) }
        : await directory.apiKey(identity);
    const cacheKey =
      entry?.hash === undefined
        ? undefined
        : CredentialCache.key(scheme, identity, secret, entry.hash);
    if (cacheKey !== undefined && cache.get(cacheKey) !== undefined) {
      if (scheme === 'bearer') void directory.noteKeyUse(identity).catch(() => undefined);
      return entry!.principal;
    }
    const valid = await verifySecret(secret, entry?.hash ?? (await decoy));
    if (valid && entry?.hash !== undefined && cacheKey !== undefined) {
      cache.set(cacheKey, entry.principal);
      if (scheme === 'bearer') void directory.noteKeyUse(identity).catch(() => undefined);
      return entry.principal;
    }
    throttle.recordFailure(buckets);
    logger.info({ scheme, identity, ip }, 'authentication failed');
    return undefined;
  }

  const passport = new Passport();
  passport.use(new BearerStrategy((req, id, secret) => verify('bearer', req, id, secret)));
  passport.use(new BasicStrategy((req, user, password) => verify('basic', req, user, password)));
  const challenges = [BASIC_CHALLENGE, BEARER_CHALLENGE];

  // Passport reads the client address from the request; the caller knows it better (proxies).
  const ipByRequest = new WeakMap<IncomingMessage, string>();
  const clientIpOf = (req: IncomingMessage): string =>
    ipByRequest.get(req) ?? req.socket.remoteAddress ?? 'unknown';

  return {
    get enabled() {
      return directory.enabled;
    },
    challenges,
    authenticate(req, res, clientIp) {
      if (req.headers.authorization === undefined) return Promise.resolve({ kind: 'anonymous' });
      ipByRequest.set(req, clientIp);
      return new Promise<AuthOutcome>((resolve, reject) => {
        const middleware = passport.authenticate(
          ['bearer', 'basic'],
          { session: false },
          (error: unknown, user: AuthenticatedUser | false) => {
            if (error instanceof ThrottledError) {
              resolve({
                kind: 'throttled',
                retryAfterSeconds: Math.ceil(error.retryAfterMs / 1000),
              });
            } else if (error !== null && error !== undefined) {
              reject(error);
            } else if (user === false) {
              resolve({ kind: 'rejected', challenges });
            } else {
              resolve({ kind: 'principal', name: user.name });
            }
          },
        ) as (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;
        middleware(req, res, (error?: unknown) =>
          error === undefined ? resolve({ kind: 'rejected', challenges }) : reject(error),
        );
      });
    },
  };
}
