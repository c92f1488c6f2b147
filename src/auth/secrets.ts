/**
 * Hashed secrets for passwords and API keys: scrypt (RFC 7914) with a random
 * salt, encoded as `scrypt$N=16384,r=8,p=1$<salt>$<hash>` (base64url).
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const PREFIX = 'scrypt';
const KEY_LENGTH = 32;
const SALT_BYTES = 16;
/** Cost parameters of new hashes: about 16 MiB of memory and tens of ms per check. */
const DEFAULT_COST = { N: 16384, r: 8, p: 1 };
/** scrypt needs 128 * N * r bytes; Node's default limit (32 MiB) is too tight for N = 2^15. */
const MAX_MEMORY = 256 * 1024 * 1024;

const ENCODED = /^scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/;

/** API key ids: the part of a bearer token before the dot. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

interface ParsedHash {
  cost: { N: number; r: number; p: number };
  salt: Buffer;
  hash: Buffer;
}

/** Returns the parsed form of an encoded hash, or undefined when it is not one. */
function parseHash(encoded: string): ParsedHash | undefined {
  const match = ENCODED.exec(encoded);
  if (match === null) return undefined;
  const [N, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])];
  // N must be a power of two above 1 (RFC 7914, section 2).
  if (N < 2 || (N & (N - 1)) !== 0 || r < 1 || p < 1 || 128 * N * r > MAX_MEMORY) return undefined;
  const hash = Buffer.from(match[5] as string, 'base64url');
  if (hash.length < 16) return undefined;
  return { cost: { N, r, p }, salt: Buffer.from(match[4] as string, 'base64url'), hash };
}

/** Returns whether `encoded` is a hash that `verifySecret` can check. */
export function isSecretHash(encoded: string): boolean {
  return parseHash(encoded) !== undefined;
}

function derive(
  secret: string,
  salt: Buffer,
  length: number,
  cost: ScryptOptions,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, length, { ...cost, maxmem: MAX_MEMORY }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

/** Hashes a password or API key secret for the principals file. */
export async function hashSecret(secret: string): Promise<string> {
  if (secret === '') throw new Error('the secret is empty; give a non-empty password or key');
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(secret, salt, KEY_LENGTH, DEFAULT_COST);
  const { N, r, p } = DEFAULT_COST;
  return `${PREFIX}$N=${N},r=${r},p=${p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/**
 * Checks a secret against an encoded hash, comparing the derived keys in
 * constant time. An invalid hash never matches.
 */
export async function verifySecret(secret: string, encoded: string): Promise<boolean> {
  const parsed = parseHash(encoded);
  if (parsed === undefined) return false;
  const derived = await derive(secret, parsed.salt, parsed.hash.length, parsed.cost);
  return timingSafeEqual(derived, parsed.hash);
}

/** Creates a new API key: the bearer token to hand out and the hash to store. */
export async function generateApiKey(keyId: string): Promise<{ token: string; hash: string }> {
  if (!KEY_ID_PATTERN.test(keyId)) {
    throw new Error(
      `key id ${JSON.stringify(keyId)} is invalid; use 1 to 64 letters, digits, "_" or "-"`,
    );
  }
  const secret = randomBytes(32).toString('base64url');
  return { token: `${keyId}.${secret}`, hash: await hashSecret(secret) };
}
