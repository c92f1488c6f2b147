/**
 * Principals and API keys kept in the store, created through the REST API,
 * beside those of the principals file. Lookups are cached for a second, so
 * a revoked key or a disabled principal stops working on every process
 * within that time.
 */
import type { Store } from '../store/index.js';
import type { PrincipalConfig } from './principals.js';
import type { PrincipalKind, Role } from './roles.js';

/** The body of a `principal` record. */
export interface StoredPrincipal {
  kind: PrincipalKind;
  /** Role on the REST API; users only. */
  role?: Role;
  displayName?: string;
  /** scrypt hash of the HTTP Basic password. */
  password?: string;
  disabled?: boolean;
}

/** The body of an `api-key` record; its id is the key id, the part of the token before the dot. */
export interface StoredApiKey {
  principal: string;
  /** scrypt hash of the part of the token after the dot. */
  hash: string;
  label?: string;
  /** Micros; absent means the key does not expire. */
  expiresAt?: number;
  /** Micros. */
  lastUsedAt?: number;
  /** Micros at which the key was revoked; a revoked key is kept for the record and never accepted. */
  revokedAt?: number;
}

/** A principal as the rest of the hub uses it, from the file or the store. */
export interface PrincipalInfo {
  name: string;
  kind: PrincipalKind;
  role?: Role;
  /** `file`: the principals file, read-only through the API; `store`: created through the API. */
  origin: 'file' | 'store';
  disabled: boolean;
}

const LOOKUP_TTL_MS = 1000;
/** A key's last use is written at most this often, so that a busy client costs few writes. */
const LAST_USE_WRITE_MS = 60_000;

export class PrincipalDirectory {
  private readonly filePrincipals = new Map<string, PrincipalConfig>();
  private readonly fileKeys = new Map<string, { principal: string; hash: string }>();
  private readonly cache = new Map<string, { value: unknown; expiresAt: number }>();
  private readonly lastUseWritten = new Map<string, number>();
  private storeHasPrincipals = false;

  constructor(
    private readonly store: Store | undefined,
    principals: readonly PrincipalConfig[],
  ) {
    for (const principal of principals) {
      this.filePrincipals.set(principal.name, principal);
      for (const key of principal.apiKeys) {
        this.fileKeys.set(key.id, { principal: principal.name, hash: key.hash });
      }
    }
  }

  /** Whether anyone can log in at all. */
  get enabled(): boolean {
    return this.filePrincipals.size > 0 || this.storeHasPrincipals;
  }

  /** Reads whether the store contains any principal. Call it at start and after changes. */
  async refreshEnabled(): Promise<void> {
    if (this.store === undefined) return;
    const page = await this.store.listRecords('principal', { limit: 1 });
    this.storeHasPrincipals = page.items.length > 0;
  }

  /** Forgets cached lookups, after a change made by this process. */
  invalidate(): void {
    this.cache.clear();
  }

  fileNames(): string[] {
    return [...this.filePrincipals.keys()];
  }

  async principal(name: string): Promise<PrincipalInfo | undefined> {
    const file = this.filePrincipals.get(name);
    if (file) {
      return {
        name,
        kind: file.role === undefined ? 'partner' : 'user',
        ...(file.role === undefined ? {} : { role: file.role }),
        origin: 'file',
        disabled: false,
      };
    }
    const stored = await this.storedPrincipal(name);
    if (stored === undefined) return undefined;
    return {
      name,
      kind: stored.kind,
      ...(stored.role === undefined ? {} : { role: stored.role }),
      origin: 'store',
      disabled: stored.disabled === true,
    };
  }

  /** Returns the hash to check an HTTP Basic password against, when the principal may log in. */
  async passwordHash(name: string): Promise<string | undefined> {
    const file = this.filePrincipals.get(name);
    if (file) return file.password;
    const stored = await this.storedPrincipal(name);
    if (stored === undefined || stored.disabled === true) return undefined;
    return stored.password;
  }

  /** Returns the principal and hash of an API key, when the key may be used now. */
  async apiKey(
    id: string,
    now = Date.now() * 1000,
  ): Promise<{ principal: string; hash: string } | undefined> {
    const file = this.fileKeys.get(id);
    if (file) return file;
    if (this.store === undefined) return undefined;
    const key = await this.cached(`key:${id}`, async () => {
      const record = await this.store!.getRecord('api-key', id);
      return record?.body as StoredApiKey | undefined;
    });
    if (key === undefined || key.revokedAt !== undefined) return undefined;
    if (key.expiresAt !== undefined && key.expiresAt <= now) return undefined;
    const owner = await this.storedPrincipal(key.principal);
    if (owner === undefined || owner.disabled === true) return undefined;
    return { principal: key.principal, hash: key.hash };
  }

  /** Records that a stored key was used, at most once a minute per key and process. Callers ignore its failures. */
  async noteKeyUse(id: string, at = Date.now() * 1000): Promise<void> {
    if (this.store === undefined || this.fileKeys.has(id)) return;
    const last = this.lastUseWritten.get(id) ?? 0;
    if (at / 1000 - last < LAST_USE_WRITE_MS) return;
    this.lastUseWritten.set(id, at / 1000);
    const record = await this.store.getRecord('api-key', id);
    if (record === undefined) return;
    await this.store.putRecord(
      'api-key',
      id,
      { ...record.body, lastUsedAt: at },
      {
        at: record.updatedAt,
        expectedRevision: record.revision,
      },
    );
  }

  private async storedPrincipal(name: string): Promise<StoredPrincipal | undefined> {
    if (this.store === undefined) return undefined;
    return this.cached(`principal:${name}`, async () => {
      const record = await this.store!.getRecord('principal', name);
      return record?.body as StoredPrincipal | undefined;
    });
  }

  private async cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    const hit = this.cache.get(key);
    if (hit !== undefined && hit.expiresAt > Date.now()) return hit.value as T;
    const value = await load();
    this.cache.set(key, { value, expiresAt: Date.now() + LOOKUP_TTL_MS });
    if (this.cache.size > 10_000) this.cache.delete(this.cache.keys().next().value!);
    return value;
  }
}
