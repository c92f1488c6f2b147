/**
 * The `manual` kind: the values analysts add by hand, read from the store by
 * a loader the hub supplies. The list is authoritative: a value removed or
 * past its expiry is withdrawn at the next poll, however few remain.
 */
import { createHash } from 'node:crypto';

import type { SourceEntry, SourceKind } from './kinds.js';

/** The cursor key under which the manual kind keeps the digest of the entries it applied. */
const DIGEST_KEY = 'manualDigest';

export interface ManualSettings {
  /** Returns the entries in force now (expired ones left out), in a stable order. */
  load: () => Promise<SourceEntry[]>;
}

export const manualKind: SourceKind = {
  async read(context) {
    const settings = context.source.manual;
    if (settings === undefined) {
      throw new Error(`source ${context.source.id} has kind manual but no entry loader`);
    }
    const entries = await settings.load();
    const digest = createHash('sha256').update(JSON.stringify(entries)).digest('base64url');
    if (context.previous?.cursor?.[DIGEST_KEY] === digest) return { kind: 'not-modified' };
    return {
      kind: 'data',
      entries,
      objects: [],
      stats: { valid: entries.length, invalid: 0 },
      complete: true,
      authoritative: true,
      cursor: { [DIGEST_KEY]: digest },
    };
  },
};
