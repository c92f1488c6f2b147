/** Entity tags of rendered views and `If-None-Match` evaluation (RFC 9110, sections 8.8.3 and 13.1.2). */
import { createHash } from 'node:crypto';

/** Returns the strong entity tag of a body: its SHA-256 in base64url, quoted. */
export function strongEtag(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url')}"`;
}

/** Returns the weak form of a strong entity tag, for a content-coded representation. */
export function weakEtag(etag: string): string {
  return etag.startsWith('W/') ? etag : `W/${etag}`;
}

function opaqueTag(etag: string): string {
  return etag.startsWith('W/') ? etag.slice(2) : etag;
}

// entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text
const ENTITY_TAG = /\s*((?:W\/)?"[^"]*")\s*(?:,|$)/y;

/**
 * Returns whether `If-None-Match` matches `etag` by weak comparison, which
 * RFC 9110 prescribes for this header: `*` matches any current
 * representation, otherwise the opaque tags are compared, ignoring `W/`.
 * A header that breaks the grammar matches nothing, so the full body is sent.
 */
export function ifNoneMatchMatches(header: string, etag: string): boolean {
  if (header.trim() === '*') {
    return true;
  }
  const target = opaqueTag(etag);
  ENTITY_TAG.lastIndex = 0;
  let consumed = 0;
  let match: RegExpExecArray | null;
  let found = false;
  while (consumed < header.length && (match = ENTITY_TAG.exec(header)) !== null) {
    if (opaqueTag(match[1]!) === target) {
      found = true;
    }
    consumed = ENTITY_TAG.lastIndex;
  }
  return found && header.slice(consumed).trim() === '';
}
