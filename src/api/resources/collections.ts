/** Collections, their sources, allow-lists and protected entries. */
import { Document as YamlDocument, parse as parseYaml, visit as visitYaml } from 'yaml';

import { parseAllowEntry } from '../../processing/index.js';
import { RecordConflictError } from '../../store/index.js';
import { audit, isoMicros, nowMicros, type ApiDeps } from '../deps.js';
import {
  changeDefinition,
  checkAliasFree,
  checkGrants,
  checkPaths,
  collectionBody,
  loadDefinition,
  resolveOrFail,
} from '../definitions.js';
import { ApiError, quote } from '../errors.js';
import { decodeCursor, isNumber, isString, pageOf, PAGE_QUERY, encodeCursor } from '../paging.js';
import type { ApiRequest, RouteSpec } from '../route.js';
import { COLLECTION_PARAM, inForce, limitOf } from './common.js';

const SOURCE_PARAM = {
  ...COLLECTION_PARAM,
  source: {
    description: 'Id of the source in the collection.',
    schema: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
  },
};
const REVISION_QUERY = {
  revision: {
    description: 'The revision read before; a different stored revision answers 409.',
    schema: { type: 'integer', minimum: 1 },
  },
};
const LIST_PARAM = {
  ...COLLECTION_PARAM,
  list: {
    description:
      "`allow-list`: values never published; `protected`: the operator's own networks and domains, which the guards refuse.",
    schema: { enum: ['allow-list', 'protected'] },
  },
};

const actor = (request: ApiRequest) => ({ name: request.principal.name, ip: request.ctx.ip });

type Doc = Record<string, unknown>;
type SourceDoc = { id: string } & Doc;

function sourcesOf(document: Doc): SourceDoc[] {
  return (document.sources as SourceDoc[] | undefined) ?? [];
}

function findSource(document: Doc, id: string, alias: string): SourceDoc {
  const source = sourcesOf(document).find((s) => s.id === id);
  if (!source) {
    throw new ApiError(
      404,
      'not_found',
      `source ${quote(id)} does not exist in collection ${quote(alias)}; list them with GET /api/v1/collections/${alias}/sources`,
    );
  }
  return source;
}

type Entry = string | { entry: string; comment?: string };

function listEntries(document: Doc, list: string): Entry[] {
  if (list === 'protected')
    return ((document.guards as Doc | undefined)?.protected as Entry[] | undefined) ?? [];
  return ((document.allowList as Doc | undefined)?.entries as Entry[] | undefined) ?? [];
}

function setListEntries(document: Doc, list: string, entries: Entry[]): void {
  const key = list === 'protected' ? 'guards' : 'allowList';
  const field = list === 'protected' ? 'protected' : 'entries';
  const parent = { ...((document[key] as Doc | undefined) ?? {}) };
  if (entries.length === 0) delete parent[field];
  else parent[field] = entries;
  if (Object.keys(parent).length === 0) delete document[key];
  else document[key] = parent;
}

function entryBody(entry: Entry): Record<string, unknown> {
  const text = typeof entry === 'string' ? entry : entry.entry;
  let matcher = 'exact';
  try {
    matcher = parseAllowEntry(text, 'entry').kind;
  } catch {
    // A stored entry always parses; a file edited by hand may not, and is shown as exact.
  }
  return {
    entry: text,
    matcher,
    ...(typeof entry !== 'string' && entry.comment !== undefined ? { comment: entry.comment } : {}),
  };
}

/** Characters outside the printable set of YAML 1.2 that `yaml` 2.9 writes unescaped. */
const NON_PRINTABLE = /[\u0080-\u0084\u0086-\u009f\ufffe\uffff]/g;

/**
 * Serializes a definition as YAML with printable characters only. `yaml` 2.9
 * writes C1 controls and U+FFFE/U+FFFF unescaped, and PyYAML 6.0 rejects such
 * a file. Strings that contain them are double-quoted, where a `\uXXXX`
 * escape stands for the same character.
 */
function printableYaml(document: Doc): string {
  const yaml = new YamlDocument(document);
  visitYaml(yaml, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && node.value.search(NON_PRINTABLE) >= 0)
        node.type = 'QUOTE_DOUBLE';
    },
  });
  return yaml
    .toString({ lineWidth: 0 })
    .replace(NON_PRINTABLE, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function collectionRoutes(deps: ApiDeps): RouteSpec[] {
  return [
    {
      operationId: 'listCollections',
      method: 'get',
      path: '/collections',
      summary: 'List collections',
      tag: 'collections',
      role: 'read-only',
      query: PAGE_QUERY,
      responses: {
        200: {
          description: 'A page of collections, by id.',
          schema: 'api/collections#/$defs/CollectionPage',
        },
      },
      async handle(request) {
        const after = decodeCursor(request.query.cursor as string | undefined, isString);
        const page = await deps.store.listRecords('collection', {
          limit: limitOf(request),
          ...(after === undefined ? {} : { after }),
        });
        const items = page.items.map((record) => {
          const body = collectionBody(record, deps.definitions.find(record.id));
          const document = body.definition as Doc;
          return {
            id: body.id,
            alias: body.alias,
            title: body.title,
            revision: body.revision,
            updatedAt: body.updatedAt,
            origin: body.origin,
            inForce: body.inForce,
            sources: sourcesOf(document).map((s) => s.id),
            views: (
              (document.views as { name: string }[] | undefined) ?? [
                { name: 'ip' },
                { name: 'domain' },
                { name: 'url' },
              ]
            ).map((v) => v.name),
          };
        });
        const last = page.items[page.items.length - 1];
        return {
          status: 200,
          body: { items, ...(page.more && last ? { next: encodeCursor(last.id) } : {}) },
        };
      },
    },
    {
      operationId: 'createCollection',
      method: 'post',
      path: '/collections',
      summary: 'Create a collection from a definition',
      description:
        'The body has the form of a collection YAML file. The new collection is in force on return: its sources are scheduled and its views rendered.',
      tag: 'collections',
      role: 'analyst',
      body: { content: { 'application/json': 'collection' } },
      responses: {
        201: {
          description: 'Created.',
          schema: 'api/collections#/$defs/Collection',
          headers: { Location: 'URL of the collection.' },
        },
      },
      errors: [409, 422],
      async handle(request) {
        return createCollection(deps, request, request.body as Doc, false);
      },
    },
    {
      operationId: 'importCollection',
      method: 'post',
      path: '/collections/import',
      summary: 'Create or replace a collection from YAML',
      description:
        'The body is a collection YAML file. With replace=true an existing collection of the same id is replaced.',
      tag: 'collections',
      role: 'analyst',
      query: {
        replace: {
          description: 'Replace a collection of the same id. Default false.',
          schema: { type: 'boolean' },
        },
      },
      body: { content: { 'application/yaml': 'text', 'text/yaml': 'text' } },
      responses: {
        200: { description: 'Replaced.', schema: 'api/collections#/$defs/Collection' },
        201: { description: 'Created.', schema: 'api/collections#/$defs/Collection' },
      },
      errors: [409, 422],
      async handle(request) {
        let document: unknown;
        try {
          document = parseYaml(request.body as string, { uniqueKeys: true });
        } catch (error) {
          throw new ApiError(
            400,
            'invalid_body',
            `the body is not YAML: ${(error as Error).message.split('\n')[0]}`,
          );
        }
        if (document === null || typeof document !== 'object' || Array.isArray(document)) {
          throw new ApiError(
            400,
            'invalid_body',
            'the body must be a YAML mapping: a collection definition',
          );
        }
        return createCollection(deps, request, document as Doc, request.query.replace === true);
      },
    },
    {
      operationId: 'getCollection',
      method: 'get',
      path: '/collections/{collection}',
      summary: 'Read a collection definition',
      tag: 'collections',
      role: 'read-only',
      params: COLLECTION_PARAM,
      responses: {
        200: {
          description: 'The stored definition and its revision.',
          schema: 'api/collections#/$defs/Collection',
          headers: { ETag: 'The revision, quoted.' },
        },
      },
      async handle(request) {
        const stored = await loadDefinition(deps, request.params.collection!);
        return {
          status: 200,
          body: collectionBody(stored.record, deps.definitions.find(stored.record.id)),
          headers: { ETag: `"${stored.record.revision}"` },
        };
      },
    },
    {
      operationId: 'updateCollection',
      method: 'put',
      path: '/collections/{collection}',
      summary: 'Replace a collection definition',
      description:
        'Send the revision you read. The id cannot change; the alias can, when no other collection uses it.',
      tag: 'collections',
      role: 'analyst',
      params: COLLECTION_PARAM,
      body: { content: { 'application/json': 'api/collections#/$defs/CollectionUpdate' } },
      responses: {
        200: { description: 'Updated and in force.', schema: 'api/collections#/$defs/Collection' },
      },
      errors: [409, 422],
      async handle(request) {
        const body = request.body as { revision: number; definition: Doc };
        const { record, config } = await changeDefinition(
          deps,
          actor(request),
          request.params.collection!,
          {
            expectedRevision: body.revision,
            change: (document) => {
              for (const key of Object.keys(document)) delete document[key];
              Object.assign(document, structuredClone(body.definition));
            },
            action: 'collection.update',
            targetKind: 'collection',
            targetId: String(body.definition.id),
          },
        );
        return { status: 200, body: collectionBody(record, config) };
      },
    },
    {
      operationId: 'deleteCollection',
      method: 'delete',
      path: '/collections/{collection}',
      summary: 'Delete a collection and everything stored for it',
      description:
        'Removes the definition, its objects, sightings, views and manual entries. TAXII clients see the collection disappear.',
      tag: 'collections',
      role: 'analyst',
      params: COLLECTION_PARAM,
      query: REVISION_QUERY,
      responses: { 200: { description: 'Deleted.', schema: 'api/common#/$defs/Deleted' } },
      errors: [409],
      async handle(request) {
        const stored = await loadDefinition(deps, request.params.collection!);
        const expected = request.query.revision as number | undefined;
        try {
          const deleted = await deps.store.deleteRecord(
            'collection',
            stored.record.id,
            expected ?? stored.record.revision,
          );
          if (!deleted) throw new RecordConflictError('collection', stored.record.id, undefined);
        } catch (error) {
          if (error instanceof RecordConflictError) {
            throw new ApiError(
              409,
              'stale_revision',
              `collection ${quote(stored.record.id)} is at revision ${error.currentRevision ?? 'none'}, not ${expected ?? stored.record.revision}; read it again`,
              {
                field: 'revision',
              },
            );
          }
          throw error;
        }
        await deps.store.deleteCollection(stored.record.id);
        await audit(deps, {
          actor: request.principal.name,
          action: 'collection.delete',
          targetKind: 'collection',
          targetId: stored.record.id,
          collectionId: stored.record.id,
          ip: request.ctx.ip,
          details: { alias: stored.document.alias, revision: stored.record.revision },
        });
        await deps.definitions.refresh();
        return { status: 200, body: { deleted: stored.record.id } };
      },
    },
    {
      operationId: 'exportCollection',
      method: 'get',
      path: '/collections/{collection}/export',
      summary: 'Export a collection definition as YAML',
      tag: 'collections',
      role: 'read-only',
      params: COLLECTION_PARAM,
      responses: {
        200: {
          description:
            'The definition as a collection YAML file, after a comment line that names the revision.',
          mediaType: 'application/yaml',
          schema: 'collection',
          headers: { 'Content-Disposition': 'attachment, with the alias as the file name.' },
        },
      },
      async handle(request) {
        const stored = await loadDefinition(deps, request.params.collection!);
        const header = `# Collection ${String(stored.document.alias)}, revision ${stored.record.revision}, exported ${new Date(nowMicros(deps) / 1000).toISOString()}\n`;
        return {
          status: 200,
          mediaType: 'application/yaml',
          body: header + printableYaml(stored.document),
          headers: {
            'Content-Disposition': `attachment; filename="${String(stored.document.alias)}.yaml"`,
          },
        };
      },
    },

    // ----------------------------------------------------------------- sources
    {
      operationId: 'listSources',
      method: 'get',
      path: '/collections/{collection}/sources',
      summary: 'List the sources of a collection, with their last run',
      tag: 'sources',
      role: 'read-only',
      params: COLLECTION_PARAM,
      query: PAGE_QUERY,
      responses: {
        200: {
          description: 'A page of sources, in definition order.',
          schema: 'api/collections#/$defs/SourcePage',
        },
      },
      async handle(request) {
        const stored = await loadDefinition(deps, request.params.collection!);
        const after = decodeCursor(request.query.cursor as string | undefined, isNumber);
        const sources = sourcesOf(stored.document).map((source, index) => ({ source, index }));
        const start = after === undefined ? 0 : after + 1;
        const slice = sources.slice(start, start + limitOf(request));
        const items = [];
        for (const { source } of slice)
          items.push(await sourceItem(deps, stored.record.id, stored.record.revision, source));
        const last = slice[slice.length - 1];
        return {
          status: 200,
          body: {
            items,
            ...(last && last.index < sources.length - 1 ? { next: encodeCursor(last.index) } : {}),
          },
        };
      },
    },
    {
      operationId: 'createSource',
      method: 'post',
      path: '/collections/{collection}/sources',
      summary: 'Add a source to a collection',
      description:
        'The source is scheduled at once; its first poll runs as soon as a worker takes it.',
      tag: 'sources',
      role: 'analyst',
      params: COLLECTION_PARAM,
      body: { content: { 'application/json': 'api/collections#/$defs/SourceWrite' } },
      responses: { 201: { description: 'Added.', schema: 'api/collections#/$defs/SourceItem' } },
      errors: [409, 422],
      async handle(request) {
        const body = request.body as { revision?: number; source: SourceDoc };
        const { record, config } = await changeDefinition(
          deps,
          actor(request),
          request.params.collection!,
          {
            ...(body.revision === undefined ? {} : { expectedRevision: body.revision }),
            change: (document) => {
              if (sourcesOf(document).some((s) => s.id === body.source.id)) {
                throw new ApiError(
                  409,
                  'already_exists',
                  `source ${quote(body.source.id)} exists in this collection already; update it with PUT or choose another id`,
                  {
                    field: '/source/id',
                    value: body.source.id,
                  },
                );
              }
              document.sources = [...sourcesOf(document), body.source];
            },
            action: 'source.create',
            targetKind: 'source',
            targetId: `${request.params.collection!}/${body.source.id}`,
          },
        );
        return {
          status: 201,
          body: await sourceItem(deps, config.id, record.revision, body.source),
        };
      },
    },
    {
      operationId: 'getSource',
      method: 'get',
      path: '/collections/{collection}/sources/{source}',
      summary: 'Read a source and its last run',
      tag: 'sources',
      role: 'read-only',
      params: SOURCE_PARAM,
      responses: {
        200: { description: 'The source.', schema: 'api/collections#/$defs/SourceItem' },
      },
      async handle(request) {
        const stored = await loadDefinition(deps, request.params.collection!);
        const source = findSource(
          stored.document,
          request.params.source!,
          request.params.collection!,
        );
        return {
          status: 200,
          body: await sourceItem(deps, stored.record.id, stored.record.revision, source),
        };
      },
    },
    {
      operationId: 'updateSource',
      method: 'put',
      path: '/collections/{collection}/sources/{source}',
      summary: 'Replace a source',
      tag: 'sources',
      role: 'analyst',
      params: SOURCE_PARAM,
      body: { content: { 'application/json': 'api/collections#/$defs/SourceWrite' } },
      responses: { 200: { description: 'Updated.', schema: 'api/collections#/$defs/SourceItem' } },
      errors: [409, 422],
      async handle(request) {
        const body = request.body as { revision?: number; source: SourceDoc };
        const id = request.params.source!;
        if (body.source.id !== id) {
          throw new ApiError(
            422,
            'unprocessable',
            `the body's source id ${quote(body.source.id)} differs from the path's ${quote(id)}; a source's id cannot change (delete it and add a new one)`,
            {
              field: '/source/id',
            },
          );
        }
        const { record, config } = await changeDefinition(
          deps,
          actor(request),
          request.params.collection!,
          {
            ...(body.revision === undefined ? {} : { expectedRevision: body.revision }),
            change: (document) => {
              findSource(document, id, request.params.collection!);
              document.sources = sourcesOf(document).map((s) => (s.id === id ? body.source : s));
            },
            action: 'source.update',
            targetKind: 'source',
            targetId: `${request.params.collection!}/${id}`,
          },
        );
        return {
          status: 200,
          body: await sourceItem(deps, config.id, record.revision, body.source),
        };
      },
    },
    {
      operationId: 'deleteSource',
      method: 'delete',
      path: '/collections/{collection}/sources/{source}',
      summary: 'Remove a source',
      description:
        'Its poll is unscheduled. Values it listed stay until aging or another poll withdraws them.',
      tag: 'sources',
      role: 'analyst',
      params: SOURCE_PARAM,
      query: REVISION_QUERY,
      responses: { 200: { description: 'Removed.', schema: 'api/common#/$defs/Deleted' } },
      errors: [409, 422],
      async handle(request) {
        const id = request.params.source!;
        await changeDefinition(deps, actor(request), request.params.collection!, {
          ...(request.query.revision === undefined
            ? {}
            : { expectedRevision: request.query.revision as number }),
          change: (document) => {
            findSource(document, id, request.params.collection!);
            document.sources = sourcesOf(document).filter((s) => s.id !== id);
          },
          action: 'source.delete',
          targetKind: 'source',
          targetId: `${request.params.collection!}/${id}`,
        });
        return { status: 200, body: { deleted: id } };
      },
    },
    {
      operationId: 'runSource',
      method: 'post',
      path: '/collections/{collection}/sources/{source}/run',
      summary: 'Poll a source now',
      description:
        'The poll runs in the process that answers, whatever its role, and its report is returned once the views are rendered. A failed poll is a report with outcome failed, not an error.',
      tag: 'sources',
      role: 'analyst',
      params: SOURCE_PARAM,
      responses: {
        200: { description: 'Polled.', schema: 'api/collections#/$defs/RunResult' },
      },
      async handle(request) {
        const config = inForce(deps, request.params.collection!);
        const id = request.params.source!;
        if (!config.sources.some((s) => s.id === id))
          findSource(config.document, id, request.params.collection!);
        const report = await deps.operations.runSource(config.id, id);
        await audit(deps, {
          actor: request.principal.name,
          action: 'source.run',
          targetKind: 'source',
          targetId: `${config.id}/${id}`,
          collectionId: config.id,
          ip: request.ctx.ip,
          details: { outcome: report.outcome },
        });
        return { status: 200, body: { status: 'completed', report } };
      },
    },
    {
      operationId: 'listSourceRuns',
      method: 'get',
      path: '/collections/{collection}/sources/{source}/runs',
      summary: 'The run history of a source, newest first',
      tag: 'sources',
      role: 'read-only',
      params: SOURCE_PARAM,
      query: PAGE_QUERY,
      responses: {
        200: { description: 'A page of run reports.', schema: 'api/collections#/$defs/RunPage' },
      },
      async handle(request) {
        const stored = await loadDefinition(deps, request.params.collection!);
        const id = request.params.source!;
        findSource(stored.document, id, request.params.collection!);
        const before = decodeCursor(request.query.cursor as string | undefined, isNumber);
        const page = await deps.store.listAudit({
          action: 'source.poll',
          targetKind: 'source',
          targetId: `${stored.record.id}/${id}`,
          limit: limitOf(request),
          ...(before === undefined ? {} : { beforeSeq: before }),
        });
        const last = page.items[page.items.length - 1];
        return {
          status: 200,
          body: {
            items: page.items.map((item) => ({
              seq: item.seq,
              at: isoMicros(item.at)!,
              report: item.details ?? {},
            })),
            ...(page.more && last ? { next: encodeCursor(last.seq) } : {}),
          },
        };
      },
    },

    // -------------------------------------------------- allow-list and protected
    {
      operationId: 'listEntries',
      method: 'get',
      path: '/collections/{collection}/entries/{list}',
      summary: 'List the inline allow-list or protected entries of a collection',
      description: 'Built-in lists and list files are not included; see the definition.',
      tag: 'allow-lists',
      role: 'read-only',
      params: LIST_PARAM,
      query: PAGE_QUERY,
      responses: {
        200: {
          description: 'A page of entries, in definition order.',
          schema: 'api/collections#/$defs/ListEntryPage',
        },
      },
      async handle(request) {
        const stored = await loadDefinition(deps, request.params.collection!);
        const entries = listEntries(stored.document, request.params.list!).map((entry, index) => ({
          entry,
          index,
        }));
        const after = decodeCursor(request.query.cursor as string | undefined, isNumber);
        const page = pageOf(
          entries,
          (e) => String(e.index).padStart(10, '0'),
          after === undefined ? undefined : String(after).padStart(10, '0'),
          limitOf(request),
        );
        const last = page.items[page.items.length - 1];
        return {
          status: 200,
          body: {
            revision: stored.record.revision,
            items: page.items.map((e) => entryBody(e.entry)),
            ...(page.next !== undefined && last ? { next: encodeCursor(last.index) } : {}),
          },
        };
      },
    },
    {
      operationId: 'addEntry',
      method: 'post',
      path: '/collections/{collection}/entries/{list}',
      summary: 'Add an allow-list or protected entry',
      description:
        'Views are rendered again at once, so an allowed value leaves every view on return.',
      tag: 'allow-lists',
      role: 'analyst',
      params: LIST_PARAM,
      body: { content: { 'application/json': 'api/collections#/$defs/ListEntryWrite' } },
      responses: {
        201: { description: 'Added.', schema: 'api/collections#/$defs/ListEntryResult' },
      },
      errors: [409, 422],
      async handle(request) {
        const body = request.body as { revision?: number; entry: string; comment?: string };
        const list = request.params.list!;
        try {
          parseAllowEntry(body.entry, 'entry');
        } catch (error) {
          throw new ApiError(
            422,
            'unprocessable',
            (error as Error).message.replace(/^entry: /, ''),
            { field: '/entry', value: body.entry },
          );
        }
        const entry: Entry =
          body.comment === undefined
            ? body.entry.trim()
            : { entry: body.entry.trim(), comment: body.comment };
        const { record, config } = await changeDefinition(
          deps,
          actor(request),
          request.params.collection!,
          {
            ...(body.revision === undefined ? {} : { expectedRevision: body.revision }),
            change: (document) => {
              const entries = listEntries(document, list);
              if (
                entries.some((e) => (typeof e === 'string' ? e : e.entry) === body.entry.trim())
              ) {
                throw new ApiError(
                  409,
                  'already_exists',
                  `entry ${quote(body.entry.trim())} is in the ${list} already`,
                  { field: '/entry', value: body.entry },
                );
              }
              setListEntries(document, list, [...entries, entry]);
            },
            action: `${list}.add`,
            targetKind: list,
            targetId: body.entry.trim(),
            details: {
              entry: body.entry.trim(),
              ...(body.comment === undefined ? {} : { comment: body.comment }),
            },
          },
        );
        await deps.operations.renderViews(config.id);
        return { status: 201, body: { revision: record.revision, entry: entryBody(entry) } };
      },
    },
    {
      operationId: 'removeEntry',
      method: 'delete',
      path: '/collections/{collection}/entries/{list}',
      summary: 'Remove an allow-list or protected entry',
      tag: 'allow-lists',
      role: 'analyst',
      params: LIST_PARAM,
      query: {
        // NOTE: POST accepts entries that this parameter cannot carry: from about 1,300 characters
        // outside the BMP (12 bytes each percent-encoded) the request line exceeds Node's 16 KiB limit
        // and Node responds 431, so such an entry can be removed only by replacing the definition.
        entry: {
          description: 'The entry, exactly as listed.',
          schema: { type: 'string', minLength: 1, maxLength: 2000 },
          required: true,
        },
        ...REVISION_QUERY,
      },
      responses: { 200: { description: 'Removed.', schema: 'api/common#/$defs/Deleted' } },
      errors: [409, 422],
      async handle(request) {
        const list = request.params.list!;
        const text = String(request.query.entry);
        const { config } = await changeDefinition(
          deps,
          actor(request),
          request.params.collection!,
          {
            ...(request.query.revision === undefined
              ? {}
              : { expectedRevision: request.query.revision as number }),
            change: (document) => {
              const entries = listEntries(document, list);
              const kept = entries.filter((e) => (typeof e === 'string' ? e : e.entry) !== text);
              if (kept.length === entries.length) {
                throw new ApiError(
                  404,
                  'not_found',
                  `entry ${quote(text)} is not in the ${list}; list the entries with GET`,
                  { field: 'entry' },
                );
              }
              setListEntries(document, list, kept);
            },
            action: `${list}.remove`,
            targetKind: list,
            targetId: text,
            details: { entry: text },
          },
        );
        await deps.operations.renderViews(config.id);
        return { status: 200, body: { deleted: text } };
      },
    },
  ];
}

async function sourceItem(
  deps: ApiDeps,
  collectionId: string,
  revision: number,
  source: SourceDoc,
): Promise<Record<string, unknown>> {
  const state = await deps.store.getSourceState(collectionId, source.id);
  return {
    collection: collectionId,
    revision,
    source,
    ...(state?.lastSuccessAt === undefined
      ? {}
      : { lastSuccessAt: isoMicros(state.lastSuccessAt) }),
    ...(state?.lastValidCount === undefined ? {} : { lastValidCount: state.lastValidCount }),
    ...(state?.lastReport === undefined ? {} : { lastReport: state.lastReport }),
  };
}

async function createCollection(
  deps: ApiDeps,
  request: ApiRequest,
  document: Doc,
  replace: boolean,
): Promise<{ status: number; body: unknown; headers?: Record<string, string> }> {
  const id = String(document.id ?? '');
  const existing = await deps.store.getRecord('collection', id);
  checkPaths(
    deps,
    document,
    existing === undefined ? undefined : (existing.body.document as Record<string, unknown>),
  );
  const config = resolveOrFail(deps, id, document);
  await checkAliasFree(deps, config.alias, id);
  await checkGrants(deps, config);
  if (existing !== undefined && !replace) {
    throw new ApiError(
      409,
      'already_exists',
      `collection ${quote(id)} exists already; change it with PUT /api/v1/collections/${config.alias} or import with replace=true`,
      {
        field: '/id',
        value: id,
      },
    );
  }
  // A poll that ran while a collection of this id was deleted may have left data behind.
  if (existing === undefined) await deps.store.deleteCollection(id);
  const at = nowMicros(deps);
  let record;
  try {
    record = await deps.store.putRecord(
      'collection',
      id,
      { document, origin: { kind: 'api', by: request.principal.name } },
      { at, expectedRevision: existing === undefined ? 'absent' : existing.revision },
    );
  } catch (error) {
    if (error instanceof RecordConflictError) {
      throw new ApiError(
        409,
        'already_exists',
        `collection ${quote(id)} was created or changed meanwhile; read it and repeat`,
        { field: '/id' },
      );
    }
    throw error;
  }
  await audit(deps, {
    at,
    actor: request.principal.name,
    action: existing === undefined ? 'collection.create' : 'collection.import',
    targetKind: 'collection',
    targetId: id,
    collectionId: id,
    ip: request.ctx.ip,
    details: { alias: config.alias, revision: record.revision },
  });
  await deps.definitions.refresh();
  return {
    status: existing === undefined ? 201 : 200,
    body: collectionBody(record, deps.definitions.find(id)),
    ...(existing === undefined
      ? { headers: { Location: `/api/v1/collections/${config.alias}` } }
      : {}),
  };
}
