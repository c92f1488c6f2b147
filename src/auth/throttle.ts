/**
 * Throttling of failed logins: one token bucket per client address and one
 * per principal name. Each failure takes a token; a request whose bucket is
 * empty is rejected before its credentials are checked.
 *
 * NOTE: the buckets live in process memory, so each API process counts on
 * its own and a restart forgets them.
 */

export interface ThrottleOptions {
  /** Failures allowed in a burst. Default 10. */
  capacity?: number;
  /** Time for one token to come back, in ms. Default 6000 (10 failures a minute). */
  refillMs?: number;
  /** Buckets kept before full ones are dropped. Default 10,000. */
  maxBuckets?: number;
  /** Clock in ms; tests pass their own. */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export class LoginThrottle {
  private readonly capacity: number;
  private readonly refillMs: number;
  private readonly maxBuckets: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: ThrottleOptions = {}) {
    this.capacity = options.capacity ?? 10;
    this.refillMs = options.refillMs ?? 6000;
    this.maxBuckets = options.maxBuckets ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Returns the ms until every bucket of `keys` has a token, 0 when they all have one now. */
  retryAfterMs(keys: readonly string[]): number {
    let wait = 0;
    for (const key of keys) {
      const bucket = this.refill(key);
      if (bucket !== undefined && bucket.tokens < 1) {
        wait = Math.max(wait, Math.ceil((1 - bucket.tokens) * this.refillMs));
      }
    }
    return wait;
  }

  /** Takes one token from the bucket of each key. */
  recordFailure(keys: readonly string[]): void {
    const now = this.now();
    for (const key of keys) {
      const bucket = this.refill(key) ?? { tokens: this.capacity, updatedAt: now };
      bucket.tokens = Math.max(0, bucket.tokens - 1);
      this.buckets.set(key, bucket);
    }
    if (this.buckets.size > this.maxBuckets) this.dropFull();
  }

  private refill(key: string): Bucket | undefined {
    const bucket = this.buckets.get(key);
    if (bucket === undefined) return undefined;
    const now = this.now();
    bucket.tokens = Math.min(
      this.capacity,
      bucket.tokens + (now - bucket.updatedAt) / this.refillMs,
    );
    bucket.updatedAt = now;
    return bucket;
  }

  /** Drops the buckets that have refilled, which behave like absent ones. */
  private dropFull(): void {
    for (const key of [...this.buckets.keys()]) {
      const bucket = this.refill(key);
      if (bucket !== undefined && bucket.tokens >= this.capacity) this.buckets.delete(key);
    }
  }
}
