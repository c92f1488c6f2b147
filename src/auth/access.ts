/** Per-collection access: what one caller may do with one collection. */
import type { CollectionAccess, CollectionRecord } from '../store/index.js';

/** A list entry that grants every authenticated principal. */
export const ANY_PRINCIPAL = '*';

export interface Permissions {
  read: boolean;
  write: boolean;
}

/** Returns the access of a collection without explicit grants: public read when `canRead`, no writers. */
export function defaultAccess(collection: CollectionRecord): CollectionAccess {
  return { public: collection.canRead, read: [], write: [] };
}

/**
 * Returns what `principal` (undefined for an anonymous caller) may do with a
 * collection. `canRead`/`canWrite` of the record switch an operation off for
 * everyone; the grants then name who may use it. Anonymous callers never write.
 */
export function permissionsFor(
  collection: CollectionRecord,
  principal: string | undefined,
): Permissions {
  const access = collection.access ?? defaultAccess(collection);
  const granted = (list: readonly string[]): boolean =>
    principal !== undefined && (list.includes(principal) || list.includes(ANY_PRINCIPAL));
  return {
    read: collection.canRead && (access.public || granted(access.read)),
    write: collection.canWrite && granted(access.write),
  };
}

/** The `access` key of a collection file, as the collection schema allows it. */
export interface RawAccess {
  public?: boolean;
  read?: string[];
  write?: string[];
}

/**
 * Resolves the `access` key of a collection file. Without it a collection is
 * public and read-only, so that sample collections work without credentials.
 */
export function resolveAccess(raw: RawAccess | undefined): CollectionAccess {
  return { public: raw?.public ?? true, read: raw?.read ?? [], write: raw?.write ?? [] };
}

/**
 * Checks that every principal named in a collection's grants is defined, so
 * that a misspelt name is an error and not a grant to no one.
 */
export function checkGrantedPrincipals(
  collections: readonly { file: string; access: CollectionAccess }[],
  principalNames: ReadonlySet<string>,
  principalsFile: string | undefined,
  problems: string[],
): void {
  for (const collection of collections) {
    for (const list of ['read', 'write'] as const) {
      for (const name of collection.access[list]) {
        if (name === ANY_PRINCIPAL || principalNames.has(name)) continue;
        problems.push(
          principalsFile === undefined
            ? `${collection.file} /access/${list}: principal ${JSON.stringify(name)} is granted access, but FEEDHUB_PRINCIPALS_FILE is not set; set it to a principals file that defines ${JSON.stringify(name)}`
            : `${collection.file} /access/${list}: principal ${JSON.stringify(name)} is not defined in ${principalsFile}`,
        );
      }
    }
  }
}
