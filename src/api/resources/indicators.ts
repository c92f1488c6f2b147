/** Manual entries, indicator search and history, views and jobs. */
import { parse as parseCsv } from '../csv-lines.js';
import { detectAndCanonicalize, ipInterval, type ValueType } from '../../processing/index.js';
import type { IpInterval } from '../../processing/ip-intervals.js';
import { parseSimplePattern } from '../../stix/index.js';
import { RecordConflictError } from '../../store/index.js';
import type { CollectionConfig } from '../../app/config.js';
import { manualEntryId, listManualEntries, type ManualEntry } from '../../app/manual.js';
import { audit, isoMicros, nowMicros, type ActiveIndicator, type ApiDeps } from '../deps.js';
import { ApiError, quote } from '../errors.js';
import { decodeCursor, encodeCursor, isString, PAGE_QUERY } from '../paging.js';
import type { RouteSpec } from '../route.js';
import { COLLECTION_PARAM, DURATION_MICROS, futureMicros, inForce, limitOf } from './common.js';

const VIEW_PARAM = {
  ...COLLECTION_PARAM,
  view: {
    description: 'Name of the view.',
    schema: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
  },
};
const VALUE_TYPES = [
  'ipv4',
  'ipv4-cidr',
  'ipv4-range',
  'ipv6',
  'ipv6-cidr',
  'ipv6-range',
  'domain',
  'url',
  'md5',
  'sha1',
  'sha256',
];
/** Largest bulk body: 16 MiB, about 400,000 short lines. */
const BULK_MAX_BYTES = 16 * 1024 * 1024;
const MAX_REJECTED = 1000;

function manualBody(
  entry: ManualEntry,
  createdAt: number,
  updatedAt: number,
  now: number,
): Record<string, unknown> {
  return {
    value: entry.value,
    valueType: entry.valueType,
    ...(entry.expiresAt === undefined ? {} : { expiresAt: isoMicros(entry.expiresAt) }),
    expired: entry.expiresAt !== undefined && entry.expiresAt <= now,
    ...(entry.confidence === undefined ? {} : { confidence: entry.confidence }),
    ...(entry.tlp === undefined ? {} : { tlp: entry.tlp }),
    ...(entry.labels === undefined ? {} : { labels: entry.labels }),
    ...(entry.comment === undefined ? {} : { comment: entry.comment }),
    addedBy: entry.addedBy,
    addedAt: isoMicros(createdAt),
    updatedAt: isoMicros(updatedAt),
  };
}

interface EntryOptions {
  ttl?: string;
  expiresAt?: string;
  confidence?: number;
  tlp?: ManualEntry['tlp'];
  labels?: string[];
  comment?: string;
}

function expiryOf(options: EntryOptions, now: number, field: string): number | undefined {
  if (options.ttl !== undefined && options.expiresAt !== undefined) {
    throw new ApiError(422, 'unprocessable', 'give ttl or expiresAt, not both', { field });
  }
  if (options.ttl !== undefined)
    return now + Number(options.ttl.slice(0, -1)) * DURATION_MICROS[options.ttl.slice(-1)]!;
  if (options.expiresAt !== undefined) return futureMicros(options.expiresAt, now, field);
  return undefined;
}

/** Canonicalises and screens one input; returns the reason it cannot be added, or the value. */
async function checkValue(
  deps: ApiDeps,
  collection: CollectionConfig,
  input: string,
): Promise<{ ok: true; type: ValueType; value: string } | { ok: false; reason: string }> {
  const parsed = detectAndCanonicalize(input.trim());
  if (!parsed.ok)
    return {
      ok: false,
      reason: `not an IP address, network, domain, URL or hash: ${parsed.reason}`,
    };
  const refusal = await deps.operations.judge(collection, parsed.type, parsed.value);
  if (refusal !== undefined)
    return { ok: false, reason: `${refusal}; a value kept out of every view cannot be added` };
  return { ok: true, type: parsed.type, value: parsed.value };
}

async function putEntry(
  deps: ApiDeps,
  collection: CollectionConfig,
  type: ValueType,
  value: string,
  options: EntryOptions,
  expiresAt: number | undefined,
  actor: string,
  at: number,
): Promise<{ created: boolean; createdAt: number; updatedAt: number; entry: ManualEntry }> {
  const id = manualEntryId(collection.id, type, value);
  const entry: ManualEntry = {
    valueType: type,
    value,
    ...(expiresAt === undefined ? {} : { expiresAt }),
    ...(options.confidence === undefined ? {} : { confidence: options.confidence }),
    ...(options.tlp === undefined ? {} : { tlp: options.tlp }),
    ...(options.labels === undefined ? {} : { labels: [...new Set(options.labels)].sort() }),
    ...(options.comment === undefined ? {} : { comment: options.comment }),
    addedBy: actor,
  };
  for (let attempt = 0; ; attempt += 1) {
    const existing = await deps.store.getRecord('manual-entry', id);
    try {
      const record = await deps.store.putRecord(
        'manual-entry',
        id,
        { ...entry },
        {
          at,
          expectedRevision: existing === undefined ? 'absent' : existing.revision,
        },
      );
      return {
        created: existing === undefined,
        createdAt: record.createdAt,
        updatedAt: record.updatedAt,
        entry,
      };
    } catch (error) {
      // Someone changed the same entry meanwhile: the last write wins, as for a fresh add.
      if (!(error instanceof RecordConflictError) || attempt >= 3) throw error;
    }
  }
}

/** Reads the inputs of a bulk body: one per line (text), a `value` column (CSV), or the simple patterns of a STIX bundle. */
function bulkInputs(
  text: string,
  mediaType: string | undefined,
): { line?: number; input: string; comment?: string }[] {
  if (mediaType === 'application/stix+json' || mediaType === 'application/json') {
    let bundle: unknown;
    try {
      bundle = JSON.parse(text);
    } catch (error) {
      throw new ApiError(400, 'invalid_body', `the body is not JSON: ${(error as Error).message}`);
    }
    const objects = Array.isArray(bundle) ? bundle : (bundle as { objects?: unknown })?.objects;
    if (!Array.isArray(objects)) {
      throw new ApiError(
        400,
        'invalid_body',
        'the body must be a STIX bundle (an object with "objects") or an array of STIX objects',
      );
    }
    const inputs: { input: string; comment?: string }[] = [];
    for (const object of objects as Record<string, unknown>[]) {
      if (object?.type !== 'indicator' || typeof object.pattern !== 'string') continue;
      const values = parseSimplePattern(object.pattern);
      for (const comparison of values ?? []) {
        inputs.push({
          input: comparison.value,
          ...(typeof object.name === 'string' ? { comment: object.name } : {}),
        });
      }
      // A pattern the hub cannot reduce to values is reported, not dropped.
      if (values === undefined) inputs.push({ input: object.pattern });
    }
    return inputs;
  }
  if (mediaType === 'text/csv') {
    const rows = parseCsv(text);
    const header = rows[0]?.map((cell) => cell.trim().toLowerCase()) ?? [];
    const valueColumn = header.indexOf('value');
    if (valueColumn < 0) {
      throw new ApiError(
        400,
        'invalid_body',
        'the CSV needs a header row with a "value" column (and optionally "comment")',
      );
    }
    const commentColumn = header.indexOf('comment');
    return rows.slice(1).flatMap((row, index) => {
      const input = row[valueColumn]?.trim() ?? '';
      if (input === '') return [];
      const comment = commentColumn < 0 ? undefined : row[commentColumn]?.trim();
      return [{ line: index + 2, input, ...(comment ? { comment } : {}) }];
    });
  }
  return text.split(/\r?\n/).flatMap((raw, index) => {
    const line = raw.replace(/#.*$/, '').trim();
    return line === '' ? [] : [{ line: index + 1, input: line }];
  });
}

export function indicatorRoutes(deps: ApiDeps): RouteSpec[] {
  return [
    {
      operationId: 'listManualEntries',
      method: 'get',
      path: '/collections/{collection}/manual',
      summary: 'List the values analysts added by hand',
      tag: 'manual',
      role: 'read-only',
      params: COLLECTION_PARAM,
      query: PAGE_QUERY,
      responses: {
        200: {
          description: 'A page of entries, by type and value.',
          schema: 'api/indicators#/$defs/ManualEntryPage',
        },
      },
      async handle(request) {
        const collection = inForce(deps, request.params.collection!);
        const after = decodeCursor(request.query.cursor as string | undefined, isString);
        const page = await deps.store.listRecords('manual-entry', {
          prefix: `${collection.id}/`,
          limit: limitOf(request),
          ...(after === undefined ? {} : { after }),
        });
        const now = nowMicros(deps);
        const last = page.items[page.items.length - 1];
        return {
          status: 200,
          body: {
            items: page.items.map((r) =>
              manualBody(r.body as unknown as ManualEntry, r.createdAt, r.updatedAt, now),
            ),
            ...(page.more && last ? { next: encodeCursor(last.id) } : {}),
          },
        };
      },
    },
    {
      operationId: 'addManualEntry',
      method: 'post',
      path: '/collections/{collection}/manual',
      summary: 'Add a value by hand, or replace the entry of the same value',
      description:
        'The value is made canonical and checked against the guards and the allow-list; it is published (TAXII and views) before the response. An expired entry leaves every view within a minute.',
      tag: 'manual',
      role: 'analyst',
      params: COLLECTION_PARAM,
      body: { content: { 'application/json': 'api/indicators#/$defs/ManualEntryWrite' } },
      responses: {
        200: {
          description: 'The entry of the same value was replaced.',
          schema: 'api/indicators#/$defs/ManualEntryResult',
        },
        201: { description: 'Added.', schema: 'api/indicators#/$defs/ManualEntryResult' },
      },
      errors: [422],
      async handle(request) {
        const collection = inForce(deps, request.params.collection!);
        const body = request.body as EntryOptions & { value: string };
        const now = nowMicros(deps);
        const expiresAt = expiryOf(body, now, body.ttl !== undefined ? '/ttl' : '/expiresAt');
        const checked = await checkValue(deps, collection, body.value);
        if (!checked.ok)
          throw new ApiError(
            422,
            'unprocessable',
            `value ${quote(body.value)}: ${checked.reason}`,
            { field: '/value', value: body.value },
          );
        const result = await putEntry(
          deps,
          collection,
          checked.type,
          checked.value,
          body,
          expiresAt,
          request.principal.name,
          now,
        );
        await audit(deps, {
          at: now,
          actor: request.principal.name,
          action: result.created ? 'manual-entry.add' : 'manual-entry.replace',
          targetKind: 'manual-entry',
          targetId: `${checked.type}:${checked.value}`,
          collectionId: collection.id,
          ip: request.ctx.ip,
          details: { ...manualBody(result.entry, result.createdAt, result.updatedAt, now) },
        });
        await deps.operations.applyManualEntries(collection.id);
        return {
          status: result.created ? 201 : 200,
          body: {
            entry: manualBody(result.entry, result.createdAt, result.updatedAt, now),
            created: result.created,
          },
        };
      },
    },
    {
      operationId: 'removeManualEntry',
      method: 'delete',
      path: '/collections/{collection}/manual',
      summary: 'Remove a value added by hand',
      description:
        'The value leaves every view before the response, unless another source still lists it. When no source lists it any more, its indicator gets a last version with revoked: true, which TAXII pollers see, and a source that lists the value later brings it back under a new indicator id, as STIX allows no version after a revocation.',
      tag: 'manual',
      role: 'analyst',
      params: COLLECTION_PARAM,
      query: {
        value: {
          description: 'The value, as added or canonical.',
          schema: { type: 'string', minLength: 1, maxLength: 2048 },
          required: true,
        },
      },
      responses: {
        200: { description: 'Removed.', schema: 'api/indicators#/$defs/ManualRemoval' },
      },
      async handle(request) {
        const collection = inForce(deps, request.params.collection!);
        const input = String(request.query.value);
        const parsed = detectAndCanonicalize(input.trim());
        const id = parsed.ok ? manualEntryId(collection.id, parsed.type, parsed.value) : undefined;
        if (id === undefined || !(await deps.store.deleteRecord('manual-entry', id))) {
          throw new ApiError(
            404,
            'not_found',
            `no manual entry for ${quote(input)} in collection ${quote(collection.alias)}; list them with GET`,
            { field: 'value' },
          );
        }
        const canonical = parsed.ok ? `${parsed.type}:${parsed.value}` : input;
        const now = nowMicros(deps);
        // The record is gone first: if this process stops before the
        // removal, the next manual poll withdraws the value as missing.
        const removal = parsed.ok
          ? await deps.operations.removeManualValue(collection, parsed.type, parsed.value, now)
          : undefined;
        await audit(deps, {
          at: now,
          actor: request.principal.name,
          action: 'manual-entry.remove',
          targetKind: 'manual-entry',
          targetId: canonical,
          collectionId: collection.id,
          ip: request.ctx.ip,
          ...(removal?.revocation === undefined
            ? {}
            : { details: { revoked: removal.revocation.indicatorId } }),
        });
        return {
          status: 200,
          body: {
            deleted: canonical,
            ...(removal?.revocation === undefined
              ? {}
              : { revoked: removal.revocation.indicatorId }),
          },
        };
      },
    },
    {
      operationId: 'bulkAddManualEntries',
      method: 'post',
      path: '/collections/{collection}/manual/bulk',
      summary: 'Add many values by hand: a text list, a CSV or a STIX bundle',
      description:
        'text/plain: one value per line, # starts a comment. text/csv: a header row with a value column and an optional comment column. application/stix+json: the simple patterns of the indicators of a bundle. The query parameters apply to every value; inputs that cannot be added are listed with the reason and the others are added.',
      tag: 'manual',
      role: 'analyst',
      params: COLLECTION_PARAM,
      query: {
        ttl: {
          description: 'How long the entries stay, e.g. 30d.',
          schema: { type: 'string', pattern: '^[1-9][0-9]{0,5}[mhd]$' },
        },
        confidence: {
          description: 'Confidence 0-100 of every entry.',
          schema: { type: 'integer', minimum: 0, maximum: 100 },
        },
        tlp: {
          description: 'TLP of every entry.',
          schema: { enum: ['clear', 'green', 'amber', 'amber+strict', 'red'] },
        },
        comment: {
          description: 'Comment of the entries that carry none.',
          schema: { type: 'string', maxLength: 2000 },
        },
      },
      body: {
        content: { 'text/plain': 'text', 'text/csv': 'text', 'application/stix+json': 'text' },
        maxBytes: BULK_MAX_BYTES,
      },
      responses: {
        200: {
          description: 'What was added and what was not.',
          schema: 'api/indicators#/$defs/BulkResult',
        },
      },
      async handle(request) {
        const collection = inForce(deps, request.params.collection!);
        const options = request.query as EntryOptions;
        const now = nowMicros(deps);
        const expiresAt = expiryOf(options, now, 'ttl');
        const inputs = bulkInputs(request.body as string, request.mediaType);
        const rejected: { line?: number; input: string; reason: string }[] = [];
        let added = 0;
        let updated = 0;
        let rejectedCount = 0;
        for (const item of inputs) {
          const checked = await checkValue(deps, collection, item.input);
          if (!checked.ok) {
            rejectedCount += 1;
            if (rejected.length < MAX_REJECTED) {
              rejected.push({
                ...(item.line === undefined ? {} : { line: item.line }),
                input: item.input.slice(0, 300),
                reason: checked.reason,
              });
            }
            continue;
          }
          const result = await putEntry(
            deps,
            collection,
            checked.type,
            checked.value,
            { ...options, ...(item.comment === undefined ? {} : { comment: item.comment }) },
            expiresAt,
            request.principal.name,
            now,
          );
          if (result.created) added += 1;
          else updated += 1;
        }
        await audit(deps, {
          at: now,
          actor: request.principal.name,
          action: 'manual-entry.bulk',
          targetKind: 'manual-entry',
          targetId: collection.alias,
          collectionId: collection.id,
          ip: request.ctx.ip,
          details: {
            total: inputs.length,
            added,
            updated,
            rejected: rejectedCount,
            mediaType: request.mediaType,
          },
        });
        if (added + updated > 0) await deps.operations.applyManualEntries(collection.id);
        return { status: 200, body: { total: inputs.length, added, updated, rejected } };
      },
    },
    {
      operationId: 'searchIndicators',
      method: 'get',
      path: '/collections/{collection}/indicators',
      summary: 'Search the active values of a collection',
      description:
        'Values listed by at least one source now. Use the lookup endpoint for one value in any state, with its history.',
      tag: 'indicators',
      role: 'read-only',
      params: COLLECTION_PARAM,
      query: {
        ...PAGE_QUERY,
        type: {
          description: 'Value types.',
          schema: { type: 'array', items: { enum: VALUE_TYPES }, maxItems: 11 },
        },
        value: {
          description: 'Values containing this text (case-insensitive).',
          schema: { type: 'string', minLength: 1, maxLength: 2048 },
        },
        contains: {
          description:
            'An IP address or network: values that contain it or lie inside it (CIDR containment both ways).',
          schema: { type: 'string', minLength: 2, maxLength: 100 },
        },
        source: {
          description:
            'Values listed by this source, by its id (`manual` for values added by hand).',
          schema: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
        },
        minConfidence: {
          description: 'Merged confidence at least this.',
          schema: { type: 'integer', minimum: 0, maximum: 100 },
        },
        seenSince: {
          description: 'Last seen at or after this instant.',
          schema: { type: 'string', format: 'date-time' },
        },
        seenBefore: {
          description: 'Last seen before this instant.',
          schema: { type: 'string', format: 'date-time' },
        },
        state: {
          description:
            'active (default): listed by a source now; withdrawn: every source stopped listing it; expired: aged out; removed: an analyst removed it and its indicator is revoked; inactive: any of the three. Inactive values carry no confidence.',
          schema: { enum: ['active', 'withdrawn', 'expired', 'removed', 'inactive'] },
        },
      },
      responses: {
        200: {
          description: 'A page of values, by type then value.',
          schema: 'api/indicators#/$defs/IndicatorPage',
        },
      },
      async handle(request) {
        const collection = inForce(deps, request.params.collection!);
        const q = request.query as Record<string, unknown>;
        const after = decodeCursor(q.cursor as string | undefined, isString);
        let containment: IpInterval | undefined;
        if (q.contains !== undefined) {
          const parsed = detectAndCanonicalize(String(q.contains));
          const interval = parsed.ok ? ipInterval(parsed.type, parsed.value) : undefined;
          if (interval === undefined) {
            throw new ApiError(
              400,
              'invalid_query',
              `query parameter "contains" = ${quote(q.contains)} is not an IP address, network or range`,
              { field: 'contains' },
            );
          }
          containment = interval;
        }
        const text = q.value === undefined ? undefined : String(q.value).toLowerCase();
        const since =
          q.seenSince === undefined ? undefined : Date.parse(String(q.seenSince)) * 1000;
        const before =
          q.seenBefore === undefined ? undefined : Date.parse(String(q.seenBefore)) * 1000;
        const types = q.type as string[] | undefined;
        const searched =
          containment !== undefined
            ? (types ?? VALUE_TYPES).filter((t) =>
                t.startsWith(containment!.family === 4 ? 'ipv4' : 'ipv6'),
              )
            : types;
        const state = (q.state as string | undefined) ?? 'active';
        const all: (ActiveIndicator & { state?: string; withdrawnAt?: number })[] =
          state === 'active'
            ? await deps.operations.activeIndicators(collection, searched)
            : (await deps.store.listInactiveIndicators(collection.id, searched))
                .map((entry) => ({
                  ...entry,
                  // A value with no active source has no merged confidence.
                  confidence: -1,
                  state: entry.reason === 'missing' ? 'withdrawn' : entry.reason,
                }))
                .filter((entry) => state === 'inactive' || entry.state === state);
        const limit = limitOf(request);
        const items: Record<string, unknown>[] = [];
        let more = false;
        for (const entry of all) {
          const key = `${entry.valueType}\u0000${entry.value}`;
          if (after !== undefined && key <= after) continue;
          if (text !== undefined && !entry.value.toLowerCase().includes(text)) continue;
          if (q.source !== undefined && !entry.sources.includes(String(q.source))) continue;
          if (q.minConfidence !== undefined && entry.confidence < Number(q.minConfidence)) continue;
          if (since !== undefined && entry.lastSeen < since) continue;
          if (before !== undefined && entry.lastSeen >= before) continue;
          if (containment !== undefined) {
            const interval = ipInterval(entry.valueType as ValueType, entry.value);
            if (interval === undefined || interval.family !== containment.family) continue;
            // Numbers of one family compare with numbers, bigints with bigints.
            const [a, b] = [interval, containment] as [
              { first: number; last: number },
              { first: number; last: number },
            ];
            const nested =
              (a.first <= b.first && b.last <= a.last) || (b.first <= a.first && a.last <= b.last);
            if (!nested) continue;
          }
          if (items.length === limit) {
            more = true;
            break;
          }
          items.push({
            valueType: entry.valueType,
            value: entry.value,
            indicatorId: entry.indicatorId,
            firstSeen: isoMicros(entry.firstSeen),
            lastSeen: isoMicros(entry.lastSeen),
            sources: entry.sources,
            state: entry.state ?? 'active',
            ...(entry.confidence < 0 ? {} : { confidence: entry.confidence }),
            ...(entry.withdrawnAt === undefined
              ? {}
              : { withdrawnAt: isoMicros(entry.withdrawnAt) }),
            ...(entry.tlp === undefined ? {} : { tlp: entry.tlp }),
            ...(entry.labels === undefined ? {} : { labels: entry.labels }),
          });
        }
        const last = items[items.length - 1];
        return {
          status: 200,
          body: {
            items,
            ...(more && last
              ? { next: encodeCursor(`${String(last.valueType)}\u0000${String(last.value)}`) }
              : {}),
          },
        };
      },
    },
    {
      operationId: 'lookupIndicator',
      method: 'get',
      path: '/collections/{collection}/indicators/lookup',
      summary: 'One value: its sources, state, versions and why each view lists it or not',
      tag: 'indicators',
      role: 'read-only',
      params: COLLECTION_PARAM,
      query: {
        value: {
          description: 'The value, in any form the hub reads.',
          schema: { type: 'string', minLength: 1, maxLength: 2048 },
          required: true,
        },
      },
      responses: {
        200: {
          description: 'The explanation and the stored versions.',
          schema: 'api/indicators#/$defs/IndicatorDetail',
        },
      },
      async handle(request) {
        const collection = inForce(deps, request.params.collection!);
        const explanation = await deps.operations.explain(collection, String(request.query.value));
        const sightings = (explanation.sightings as { indicatorId: string }[] | undefined) ?? [];
        const revocations =
          (explanation.revocations as { indicatorId: string }[] | undefined) ?? [];
        // The revoked indicators first, oldest first, then the current one.
        const ids = [
          ...new Set([
            ...revocations.map((r) => r.indicatorId),
            ...sightings.slice(0, 1).map((s) => s.indicatorId),
          ]),
        ];
        const versions: unknown[] = [];
        for (const indicatorId of ids) {
          const page = await deps.store.queryObjects({
            collectionId: collection.id,
            ids: [indicatorId],
            versions: [{ kind: 'all' }],
            limit: 1000,
          });
          for (const item of page.items) versions.push(JSON.parse(item.json));
        }
        return { status: 200, body: { explanation, versions } };
      },
    },
    {
      operationId: 'listViews',
      method: 'get',
      path: '/collections/{collection}/views',
      summary: 'The views of a collection and their last render',
      tag: 'views',
      role: 'read-only',
      params: COLLECTION_PARAM,
      responses: {
        200: {
          description: 'The views, in definition order.',
          schema: 'api/indicators#/$defs/ViewList',
        },
      },
      async handle(request) {
        const collection = inForce(deps, request.params.collection!);
        return { status: 200, body: { items: await viewItems(deps, collection) } };
      },
    },
    {
      operationId: 'getViewBuildLog',
      method: 'get',
      path: '/collections/{collection}/views/{view}/build-log',
      summary: "The last render's counts and every rewrite and drop",
      tag: 'views',
      role: 'read-only',
      params: VIEW_PARAM,
      responses: {
        200: { description: 'The build log.', schema: 'api/indicators#/$defs/BuildLog' },
      },
      async handle(request) {
        const collection = inForce(deps, request.params.collection!);
        const name = request.params.view!;
        if (!collection.views.some((v) => v.name === name)) {
          throw new ApiError(
            404,
            'not_found',
            `view ${quote(name)} does not exist in collection ${quote(collection.alias)}`,
          );
        }
        const stored = await deps.store.getViewLog(collection.id, name);
        if (stored === undefined)
          throw new ApiError(
            404,
            'not_found',
            `view ${quote(name)} has not been rendered yet; render it with POST .../views/render`,
          );
        return {
          status: 200,
          body: {
            view: name,
            renderedAt: isoMicros(stored.renderedAt),
            etag: stored.etag,
            log: JSON.parse(stored.log) as unknown,
          },
        };
      },
    },
    {
      operationId: 'renderViews',
      method: 'post',
      path: '/collections/{collection}/views/render',
      summary: 'Render the views of a collection now',
      tag: 'views',
      role: 'analyst',
      params: COLLECTION_PARAM,
      responses: {
        200: { description: 'Rendered and stored.', schema: 'api/indicators#/$defs/RenderResult' },
      },
      async handle(request) {
        const collection = inForce(deps, request.params.collection!);
        await deps.operations.renderViews(collection.id);
        await audit(deps, {
          actor: request.principal.name,
          action: 'views.render',
          targetKind: 'collection',
          targetId: collection.id,
          collectionId: collection.id,
          ip: request.ctx.ip,
        });
        return { status: 200, body: { views: { items: await viewItems(deps, collection) } } };
      },
    },
    {
      operationId: 'listJobs',
      method: 'get',
      path: '/jobs',
      summary: 'Scheduled polls: last and next run, failures',
      tag: 'jobs',
      role: 'read-only',
      responses: {
        200: { description: 'Every scheduled poll.', schema: 'api/indicators#/$defs/JobList' },
      },
      async handle() {
        const jobs = await deps.operations.listJobs();
        const items = [];
        for (const job of jobs) {
          const collection = deps.definitions.find(job.collectionId);
          const state = await deps.store.getSourceState(job.collectionId, job.sourceId);
          const iso = (date: Date | null | undefined) => (date ? date.toISOString() : undefined);
          items.push({
            collection: collection?.alias ?? job.collectionId,
            collectionId: job.collectionId,
            source: job.sourceId,
            intervalSeconds: job.intervalSeconds,
            ...(iso(job.nextRunAt) ? { nextRunAt: iso(job.nextRunAt) } : {}),
            ...(iso(job.lastRunAt) ? { lastRunAt: iso(job.lastRunAt) } : {}),
            ...(iso(job.lastFinishedAt) ? { lastFinishedAt: iso(job.lastFinishedAt) } : {}),
            ...(iso(job.failedAt) ? { failedAt: iso(job.failedAt) } : {}),
            ...(job.failReason ? { failReason: job.failReason } : {}),
            running: job.locked,
            ...(typeof state?.lastReport?.outcome === 'string'
              ? { lastOutcome: state.lastReport.outcome }
              : {}),
          });
        }
        return { status: 200, body: { items } };
      },
    },
  ];
}

async function viewItems(
  deps: ApiDeps,
  collection: CollectionConfig,
): Promise<Record<string, unknown>[]> {
  const items = [];
  for (const view of collection.views) {
    const log = await deps.store.getViewLog(collection.id, view.name);
    items.push({
      name: view.name,
      kind: view.kind,
      url: `${deps.publicUrl}/feeds/${collection.alias}/${view.name}`,
      public: view.access.public,
      ...(log === undefined ? {} : { renderedAt: isoMicros(log.renderedAt), etag: log.etag }),
    });
  }
  return items;
}

export { listManualEntries };
