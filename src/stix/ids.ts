import { hash } from 'node:crypto';

import { StixError } from './errors.js';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** STIX 2.1 section 2.9: the namespace for deterministic ids of cyber-observable objects. */
export const STIX_SCO_NAMESPACE = '00abedb4-aa42-466c-9c01-fed23315a9b7';

/**
 * The namespace of ids that this hub derives for the objects it authors
 * (indicators, identities). A fixed random UUID: changing it would change
 * every hub-authored id and duplicate all indicators.
 */
export const HUB_NAMESPACE = '6aa3661f-5454-4a81-b5fd-2735e1ffd4ba';

/**
 * Computes a name-based UUID version 5 (RFC 9562 section 5.5): the SHA-1 of
 * the namespace bytes followed by the UTF-8 name, truncated to 128 bits,
 * with the version and variant bits set.
 */
export function uuidV5(namespace: string, name: string): string {
  const digest = sha1(Buffer.concat([namespaceBytes(namespace), Buffer.from(name, 'utf8')]));
  const bytes = digest.subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;

  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function sha1(data: Buffer): Buffer {
  return hash('sha1', data, 'buffer');
}

/** Namespace bytes by namespace text; the hub uses two namespaces, so this stays tiny. */
const namespaces = new Map<string, Buffer>();

function namespaceBytes(namespace: string): Buffer {
  let bytes = namespaces.get(namespace);
  if (bytes === undefined) {
    const lower = namespace.toLowerCase();
    if (!UUID_PATTERN.test(lower)) throw new StixError(`invalid UUID namespace "${namespace}"`);
    bytes = Buffer.from(lower.replace(/-/g, ''), 'hex');
    // Only valid namespaces are kept, so invalid input cannot grow the map.
    namespaces.set(namespace, bytes);
  }
  return bytes;
}

/** Returns the id of the hub indicator for `pattern` in a collection; the same inputs give the same id. */
export function indicatorId(collectionId: string, pattern: string): string {
  return `indicator--${uuidV5(HUB_NAMESPACE, JSON.stringify(['indicator', collectionId, pattern]))}`;
}

/**
 * Returns the id that a hub indicator takes after `revokedId` is revoked.
 * STIX allows no version after a revocation, so a value listed again needs a
 * new id. Deriving it from the revoked id keeps it the same on every store.
 */
export function successorIndicatorId(collectionId: string, revokedId: string): string {
  return `indicator--${uuidV5(HUB_NAMESPACE, JSON.stringify(['successor', collectionId, revokedId]))}`;
}

// A poll requests the same few identity ids once per value, so they are kept.
const identityIds = new Map<string, string>();
const MAX_IDENTITY_IDS = 10_000;

/** Returns the id of the identity that authors a source's indicators in a collection. */
export function identityId(collectionId: string, sourceId: string): string {
  const key = JSON.stringify(['identity', collectionId, sourceId]);
  let id = identityIds.get(key);
  if (id === undefined) {
    id = `identity--${uuidV5(HUB_NAMESPACE, key)}`;
    if (identityIds.size >= MAX_IDENTITY_IDS) identityIds.clear();
    identityIds.set(key, id);
  }
  return id;
}

/**
 * Returns the deterministic id of a cyber-observable object per STIX 2.1
 * section 2.9: UUIDv5 in the SCO namespace over the JSON of its
 * id-contributing properties. `contributing` must already be in the
 * canonical JSON form (RFC 8785) that the spec requires, e.g.
 * `{"value":"198.51.100.3"}`.
 */
export function observableId(type: string, contributing: string): string {
  return `${type}--${uuidV5(STIX_SCO_NAMESPACE, contributing)}`;
}
