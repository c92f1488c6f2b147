/**
 * Reading and changing stored collection definitions: every endpoint that
 * edits a collection, a source, an allow-list or a guard goes through
 * `changeDefinition`, which checks the revision, resolves the result (so a
 * definition that would not load is refused and nothing changes), stores it
 * conditionally, records the change and puts it in force.
 */
import { isAbsolute, resolve, sep } from 'node:path';
import type { DefinitionOrigin as CatalogChangeOrigin } from '../app/catalog.js';
import { RecordConflictError, type AdminRecord } from '../store/index.js';
import type { CollectionConfig } from '../app/config.js';
import { audit, isoMicros, nowMicros, type ApiDeps } from './deps.js';
import { ApiError, quote } from './errors.js';

export interface StoredDefinition {
  record: AdminRecord;
  document: Record<string, unknown>;
  origin: CatalogChangeOrigin;
}

/** Finds the stored definition of a collection by alias or id; 404 when there is none. */
export async function loadDefinition(deps: ApiDeps, aliasOrId: string): Promise<StoredDefinition> {
  const inForce = deps.definitions.find(aliasOrId);
  const id = inForce?.id ?? aliasOrId;
  let record = await deps.store.getRecord('collection', id);
  if (record === undefined && inForce === undefined) {
    // A definition that does not resolve is stored but not in force: find it by alias too.
    let after: string | undefined;
    for (;;) {
      const page = await deps.store.listRecords('collection', {
        limit: 200,
        ...(after ? { after } : {}),
      });
      record = page.items.find(
        (r) => (r.body.document as { alias?: unknown })?.alias === aliasOrId,
      );
      if (record || !page.more || page.items.length === 0) break;
      after = page.items[page.items.length - 1]!.id;
    }
  }
  if (record === undefined) {
    throw new ApiError(
      404,
      'not_found',
      `collection ${quote(aliasOrId)} does not exist; list them with GET /api/v1/collections`,
    );
  }
  return {
    record,
    document: record.body.document as Record<string, unknown>,
    origin: record.body.origin as CatalogChangeOrigin,
  };
}

/** Checks that a revision the client sent is the stored one. */
export function checkRevision(
  stored: AdminRecord,
  expected: number | undefined,
  what: string,
): void {
  if (expected !== undefined && expected !== stored.revision) {
    throw staleRevision(what, expected, stored.revision);
  }
}

export function staleRevision(
  what: string,
  sent: number | undefined,
  current: number | undefined,
): ApiError {
  return new ApiError(
    409,
    'stale_revision',
    current === undefined
      ? `${what} was deleted meanwhile`
      : `${what} is at revision ${current}${sent === undefined ? '' : `, not ${sent}`}: someone changed it meanwhile; read it again and repeat the change`,
    { field: '/revision', ...(current === undefined ? {} : { value: current }) },
  );
}

/** Resolves a definition, turning its problems into a 422 that lists them. */
export function resolveOrFail(deps: ApiDeps, id: string, document: unknown): CollectionConfig {
  const problems: string[] = [];
  const config = deps.definitions.resolve(id, document, problems);
  if (config === undefined || problems.length > 0) {
    const list = problems.length > 0 ? problems : ['the definition does not resolve'];
    throw new ApiError(422, 'unprocessable', `the definition cannot be applied: ${list[0]}`, {
      problems: list.slice(0, 50).map((message) => ({ message })),
    });
  }
  return config;
}

/** Every file path of a definition, by its JSON pointer. */
function filePaths(document: Record<string, unknown>): Map<string, string> {
  const paths = new Map<string, string>();
  const files = (document.allowList as { files?: unknown } | undefined)?.files;
  if (Array.isArray(files))
    files.forEach((file, i) => paths.set(`/allowList/files/${i}`, String(file)));
  const sources = Array.isArray(document.sources)
    ? (document.sources as Record<string, unknown>[])
    : [];
  sources.forEach((source, i) => {
    if (typeof source?.path === 'string') paths.set(`/sources/${i}/path`, source.path);
    const tls = source?.tls as Record<string, unknown> | undefined;
    for (const key of ['certPath', 'keyPath', 'caPath']) {
      if (typeof tls?.[key] === 'string') paths.set(`/sources/${i}/tls/${key}`, tls[key] as string);
    }
  });
  return paths;
}

/**
 * Refuses a file path that a change through the API adds outside the
 * collections directory: the hub would read any file it can, and its name
 * or content would reach the analyst in errors and run reports. Paths the
 * definition had already (a seed file may name fixtures elsewhere) stay.
 */
export function checkPaths(
  deps: ApiDeps,
  document: Record<string, unknown>,
  previous: Record<string, unknown> | undefined,
): void {
  const root = resolve(deps.definitions.baseDir);
  const kept = new Set(previous === undefined ? [] : filePaths(previous).values());
  for (const [field, path] of filePaths(document)) {
    if (kept.has(path)) continue;
    const absolute = isAbsolute(path) ? resolve(path) : resolve(root, path);
    if (absolute === root || !absolute.startsWith(`${root}${sep}`)) {
      throw new ApiError(
        422,
        'unprocessable',
        `${field}: ${quote(path)} is outside the collections directory; through the API, files must be placed inside it (${root})`,
        { field },
      );
    }
  }
}

/** Checks that every principal a definition grants access to exists. */
export async function checkGrants(deps: ApiDeps, config: CollectionConfig): Promise<void> {
  const names = new Set<string>([...config.access.read, ...config.access.write]);
  for (const view of config.views) for (const name of view.access.principals) names.add(name);
  names.delete('*');
  for (const name of names) {
    if ((await deps.directory.principal(name)) === undefined) {
      throw new ApiError(
        422,
        'unprocessable',
        `principal ${quote(name)} is granted access but does not exist; create it with POST /api/v1/principals or remove the grant`,
        {
          value: name,
        },
      );
    }
  }
}

export interface DefinitionChange {
  /** Revision the client read; undefined to change whatever is stored. */
  expectedRevision?: number;
  /** Changes the document in place; throws an ApiError to refuse. */
  change: (document: Record<string, unknown>) => void;
  action: string;
  targetKind: string;
  targetId: string;
  details?: Record<string, unknown>;
}

/** Applies one change to a stored definition; see the file comment. */
export async function changeDefinition(
  deps: ApiDeps,
  actor: { name: string; ip: string },
  aliasOrId: string,
  change: DefinitionChange,
): Promise<{ record: AdminRecord; config: CollectionConfig }> {
  const stored = await loadDefinition(deps, aliasOrId);
  const label = `collection ${quote(String(stored.document.alias ?? stored.record.id))}`;
  checkRevision(stored.record, change.expectedRevision, label);
  const document = structuredClone(stored.document);
  change.change(document);
  if (document.id !== stored.record.id) {
    throw new ApiError(
      422,
      'unprocessable',
      `a collection's id cannot change (it is ${quote(stored.record.id)}); create a new collection instead`,
      {
        field: '/id',
      },
    );
  }
  checkPaths(deps, document, stored.document);
  const config = resolveOrFail(deps, stored.record.id, document);
  await checkAliasFree(deps, config.alias, stored.record.id);
  await checkGrants(deps, config);
  const at = nowMicros(deps);
  let record: AdminRecord;
  try {
    record = await deps.store.putRecord(
      'collection',
      stored.record.id,
      { document, origin: { kind: 'api', by: actor.name } },
      { at, expectedRevision: stored.record.revision },
    );
  } catch (error) {
    if (error instanceof RecordConflictError)
      throw staleRevision(label, change.expectedRevision, error.currentRevision);
    throw error;
  }
  await audit(deps, {
    at,
    actor: actor.name,
    action: change.action,
    targetKind: change.targetKind,
    targetId: change.targetId,
    collectionId: stored.record.id,
    ip: actor.ip,
    details: { revision: record.revision, ...change.details },
  });
  await deps.definitions.refresh();
  return { record, config };
}

/** 409 when another collection uses the alias. */
export async function checkAliasFree(
  deps: ApiDeps,
  alias: string,
  ownId: string | undefined,
): Promise<void> {
  let after: string | undefined;
  for (;;) {
    const page = await deps.store.listRecords('collection', {
      limit: 200,
      ...(after ? { after } : {}),
    });
    const clash = page.items.find(
      (r) => r.id !== ownId && (r.body.document as { alias?: unknown })?.alias === alias,
    );
    if (clash) {
      throw new ApiError(
        409,
        'already_exists',
        `alias ${quote(alias)} is used by collection ${clash.id}; choose another alias`,
        {
          field: '/alias',
          value: alias,
        },
      );
    }
    if (!page.more || page.items.length === 0) return;
    after = page.items[page.items.length - 1]!.id;
  }
}

/** Returns the API form of a stored definition. */
export function collectionBody(
  record: AdminRecord,
  inForce: CollectionConfig | undefined,
): Record<string, unknown> {
  const document = record.body.document as Record<string, unknown>;
  const origin = record.body.origin as CatalogChangeOrigin;
  return {
    id: record.id,
    alias: String(document.alias),
    title: String(document.title),
    revision: record.revision,
    createdAt: isoMicros(record.createdAt)!,
    updatedAt: isoMicros(record.updatedAt)!,
    origin:
      origin.kind === 'file' ? { kind: 'file', file: origin.file } : { kind: 'api', by: origin.by },
    inForce: inForce !== undefined,
    definition: document,
  };
}
