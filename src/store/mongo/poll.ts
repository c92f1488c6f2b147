import type { Collection, Db } from 'mongodb';

import type {
  ExpireInput,
  ExpireSummary,
  IndicatorChange,
  IndicatorEntry,
  ObjectVersionInput,
  PollResultInput,
  PollResultSummary,
  PutObjectsResult,
  RemoveSightingInput,
  RemoveSightingResult,
  Revocation,
  SightingInput,
  SightingRecord,
  SourceState,
  StreamedPollInput,
  WithdrawalReason,
} from '../port.js';
import { isStreamedPoll } from '../port.js';
import { encodeAttributes } from '../attributes.js';
import { chunks, type ObjectCollection } from './objects.js';
import { MongoPollStage } from './poll-stage.js';
import {
  COLLECTIONS,
  compositeKey,
  type RevocationDoc,
  type SightingDoc,
  type SourceStateDoc,
} from './schema.js';
import {
  sightingId,
  SightingCollection,
  toSightingRecord,
  valueKey,
  type ValueRef,
  type ValueSightings,
} from './sightings.js';

/** New object versions per `put`, and listed values per batch of a poll. */
const BATCH = 1000;

type VersionRanges = Map<string, { first: string; last: string }>;

/**
 * The sighting life cycle (polls, misses, aging) and the source states. The
 * rules are those of the SQLite adapter; this file applies them without a
 * transaction.
 *
 * Every step works the same way: read the sightings it touches, compute the
 * new sightings and every indicator version in memory, then write the
 * versions, then the sightings, then (for a poll) the source state. A poll
 * does this for each batch of 1,000 listed values, then for the values it
 * missed. So:
 * - a builder that throws stops the step before the first write of its
 *   batch. The batches before stay written, and the old source state makes
 *   the scheduler repeat the poll, as after a database failure;
 * - a step interrupted by a database failure leaves versions without their
 *   sightings, or some sightings without the new source state. The old state
 *   (old ETag) makes the scheduler fetch and apply the data again, and the
 *   repeat converges. Versions are idempotent inserts. New sightings are
 *   inserted, or replaced by `_id` if one exists by then. Refreshed ones get
 *   an idempotent `$max`/`$set`, and the others are replaced whole by `_id`.
 *
 * NOTE: not atomic against a database failure midway. Until the repeat runs,
 * readers can see new indicator versions whose sightings are not written
 * (views miss those values), and the repeat may report as `refreshed` what
 * the interrupted poll had `created`. A miss is counted at most once per
 * `seenAt`, but a repeat with a new `seenAt` counts the interrupted poll's
 * misses again, so a sighting can be withdrawn one poll early.
 */
export class PollCollections {
  private readonly sightings: SightingCollection;
  private readonly states: Collection<SourceStateDoc>;
  private readonly revocations: Collection<RevocationDoc>;

  constructor(
    private readonly db: Db,
    private readonly objects: ObjectCollection,
  ) {
    this.sightings = new SightingCollection(db);
    this.states = db.collection<SourceStateDoc>(COLLECTIONS.sourceStates);
    this.revocations = db.collection<RevocationDoc>(COLLECTIONS.revocations);
  }

  /** See `Store.applyUnchangedPoll`. Replaying it after a crash completes it. */
  async applyUnchanged(
    input: PollResultInput & { since: number },
  ): Promise<PollResultSummary | undefined> {
    const { collectionId, sourceId, seenAt, since } = input;
    if (await this.sightings.withdrawnAfter(collectionId, sourceId, since)) return undefined;
    const refreshed = await this.sightings.refreshListed(collectionId, sourceId, seenAt);
    const summary = await this.apply({ ...input, sightings: [] });
    summary.refreshed = refreshed;
    return summary;
  }

  /**
   * Applies a poll in batches of values: each batch's versions, then its
   * sightings, are written before the next batch is read. A streamed poll
   * is staged in a collection of its own first (see `MongoPollStage`). So
   * the process never keeps its whole list in memory, and nothing is
   * written before `complete` has returned.
   */
  async apply(input: PollResultInput | StreamedPollInput): Promise<PollResultSummary> {
    if (!isStreamedPoll(input)) {
      return this.applyListed(input, chunks(firstListings(input.sightings), BATCH));
    }
    const { sightings, complete, ...rest } = input;
    const stage = MongoPollStage.create(this.db);
    try {
      const counts = await stage.load(sightings);
      const completion = await complete(counts);
      return await this.applyListed({ ...rest, ...completion }, stage.read(BATCH));
    } finally {
      await stage.drop();
    }
  }

  /**
   * Applies the values of `listed`, batch by batch; a value is in one batch
   * only. Then counts the misses of the values not listed, whose sightings
   * the batches left with a `last_seen` before `seenAt`.
   */
  private async applyListed(
    input: Omit<PollResultInput, 'sightings'>,
    listed: Iterable<SightingInput[]> | AsyncIterable<SightingInput[]>,
  ): Promise<PollResultSummary> {
    const { collectionId, sourceId, seenAt, buildVersion } = input;
    const summary: PollResultSummary = {
      created: 0,
      refreshed: 0,
      objects: { added: 0, unchanged: 0, conflicts: [] },
    };
    // The life-cycle counts exist only for callers that use the life cycle.
    if (buildVersion !== undefined || input.missing !== undefined) {
      Object.assign(summary, { reactivated: 0, missed: 0, withdrawn: 0, merged: 0 });
    }

    // Whatever id the caller gave, a revoked value comes back under its successor.
    const current = await this.currentIds(collectionId);
    for await (const batch of listed) {
      const redirected = batch.map((sighting) => {
        const successor = current.get(valueKey(sighting));
        return successor === undefined ? sighting : { ...sighting, indicatorId: successor };
      });
      await this.applyBatch(input, redirected, summary);
    }

    if (input.missing !== undefined) {
      const threshold = Math.max(1, input.missing.withdrawAfter);
      const candidates = (
        await this.sightings.activeOfSource(collectionId, sourceId, { last_seen: { $lt: seenAt } })
      ).filter((doc) => doc.missed_at !== seenAt);

      const counted = candidates.map((doc) => ({
        ...doc,
        missed: doc.missed + 1,
        missed_at: seenAt,
      }));
      const reaching = counted.filter((doc) => doc.missed >= threshold);
      const writes: SightingDoc[] = [];
      for (const doc of counted) {
        if (doc.missed < threshold) {
          count(summary, 'missed');
          writes.push(doc);
        }
      }
      const outcomes = await this.withdrawAll(
        collectionId,
        reaching,
        seenAt,
        'missing',
        buildVersion,
      );
      writes.push(...outcomes.writes);
      for (let i = 0; i < outcomes.merged; i++) count(summary, 'merged');
      for (let i = 0; i < outcomes.deactivated; i++) count(summary, 'withdrawn');
      for (const batch of chunks(outcomes.versions, BATCH)) {
        mergeInto(summary.objects, await this.objects.put(collectionId, batch));
      }
      await this.sightings.write(writes);
    }

    mergeInto(summary.objects, await this.objects.put(collectionId, input.extraObjects));
    await this.putState(input.state);
    return summary;
  }

  /** Applies one batch of distinct listed values: versions first, then sightings. */
  private async applyBatch(
    input: Omit<PollResultInput, 'sightings'>,
    firsts: readonly SightingInput[],
    summary: PollResultSummary,
  ): Promise<void> {
    const { collectionId, sourceId, seenAt, buildVersion } = input;
    const attributesOf = new Map<SightingInput, string | null>(
      firsts.map((sighting) => [sighting, encodeAttributes(sighting.attributes)]),
    );

    // The common case of a re-poll: an active sighting of this source with
    // the same indicator id and attributes only moves last_seen.
    const own = await this.sightings.readByIds(
      firsts.map((sighting) => sightingId(collectionId, sourceId, sighting)),
    );
    const writes: SightingDoc[] = [];
    const inserts: SightingDoc[] = [];
    const touched: string[] = [];
    const slow: SightingInput[] = [];
    for (const sighting of firsts) {
      const doc = own.get(sightingId(collectionId, sourceId, sighting));
      if (
        doc?.withdrawn_at === null &&
        doc.indicator_id === sighting.indicatorId &&
        (doc.attributes ?? null) === attributesOf.get(sighting)
      ) {
        summary.refreshed++;
        touched.push(doc._id);
      } else {
        slow.push(sighting);
      }
    }

    // Everything else needs the value's sightings of every source and
    // whether its indicator exists; no indicator means no source listed it.
    const existing = await this.objects.existingIds(
      collectionId,
      unique(slow.map((sighting) => sighting.indicatorId)),
    );
    const byValue = await this.sightings.readValues(collectionId, slow);
    const ranges =
      buildVersion === undefined
        ? new Map()
        : await this.objects.versionRanges(
            collectionId,
            unique(slow.filter((s) => existing.has(s.indicatorId)).map((s) => s.indicatorId)),
          );
    const versions: ObjectVersionInput[] = [];

    for (const sighting of slow) {
      const values = sightingsOf(byValue, sighting);
      const before = values.get(sourceId);
      const after = listedAgain(
        before ??
          newSighting(
            collectionId,
            sourceId,
            sighting,
            seenAt,
            !existing.has(sighting.indicatorId),
          ),
        sighting.indicatorId,
        attributesOf.get(sighting) ?? null,
        seenAt,
      );
      const othersActive = activeCount(values);
      values.set(sourceId, after);
      (before === undefined ? inserts : writes).push(after);

      if (!existing.has(sighting.indicatorId)) {
        summary.created++;
        versions.push(
          buildVersion === undefined
            ? input.buildIndicator(sighting)
            : buildVersion(change('created', sighting, values, seenAt)),
        );
        continue;
      }
      const ownWasActive = before !== undefined && before.withdrawn_at === null;
      if (ownWasActive || buildVersion === undefined) {
        summary.refreshed++;
        // The sighting's attributes are part of the indicator, so a change needs a version.
        if (ownWasActive && buildVersion !== undefined && before.attributes !== after.attributes) {
          count(summary, 'merged');
          versions.push(buildVersion(change('merged', sighting, values, seenAt, ranges)));
        }
        continue;
      }
      if (othersActive > 0) {
        summary.refreshed++;
        count(summary, 'merged');
        versions.push(buildVersion(change('merged', sighting, values, seenAt, ranges)));
      } else {
        count(summary, 'reactivated');
        versions.push(buildVersion(change('reactivated', sighting, values, seenAt, ranges)));
      }
    }

    for (const batch of chunks(versions, BATCH)) {
      mergeInto(summary.objects, await this.objects.put(collectionId, batch));
    }
    await this.sightings.insert(inserts);
    await this.sightings.touch(touched, seenAt);
    await this.sightings.write(writes);
  }

  /** Expires sightings by the aging rules; see the class comment for what a failure leaves. */
  async expire(input: ExpireInput): Promise<ExpireSummary> {
    const { collectionId, now } = input;
    const candidates: SightingDoc[] = [];
    // A sighting that an earlier rule expires is no candidate for a later one.
    const selected = new Set<string>();
    for (const rule of input.rules) {
      const cutoff = now - rule.maxAgeMicros;
      const field = rule.basis === 'first-seen' ? 'first_seen' : 'last_seen';
      const types = rule.valueTypes === undefined ? undefined : new Set(rule.valueTypes);
      const docs = await this.sightings.activeOfSource(collectionId, rule.sourceId, {
        [field]: { $lte: cutoff },
      });
      for (const doc of docs) {
        if (selected.has(doc._id) || (types !== undefined && !types.has(doc.value_type))) continue;
        selected.add(doc._id);
        candidates.push(doc);
      }
    }

    const outcomes = await this.withdrawAll(
      collectionId,
      candidates,
      now,
      'expired',
      input.buildVersion,
    );
    const summary: ExpireSummary = {
      sightings: candidates.length,
      expired: outcomes.deactivated,
      merged: outcomes.merged,
      objects: { added: 0, unchanged: 0, conflicts: [] },
    };
    for (const batch of chunks(outcomes.versions, BATCH)) {
      mergeInto(summary.objects, await this.objects.put(collectionId, batch));
    }
    await this.sightings.write(outcomes.writes);
    return summary;
  }

  /**
   * Withdraws the given sightings one after the other, in memory, and builds
   * the version each causes: `merged` while another sighting keeps the
   * value active, else `withdrawn` (reason `missing`) or `expired`.
   */
  private async withdrawAll(
    collectionId: string,
    docs: readonly SightingDoc[],
    at: number,
    reason: WithdrawalReason,
    buildVersion: ((change: IndicatorChange) => ObjectVersionInput) | undefined,
  ): Promise<{
    writes: SightingDoc[];
    versions: ObjectVersionInput[];
    merged: number;
    deactivated: number;
  }> {
    const outcome = {
      writes: [] as SightingDoc[],
      versions: [] as ObjectVersionInput[],
      merged: 0,
      deactivated: 0,
    };
    if (docs.length === 0) return outcome;

    const refs = docs.map(refOf);
    const byValue = await this.sightings.readValues(collectionId, refs);
    const ranges =
      buildVersion === undefined
        ? new Map()
        : await this.objects.versionRanges(
            collectionId,
            unique(docs.map((doc) => doc.indicator_id)),
          );

    for (const doc of docs) {
      const values = sightingsOf(byValue, refOf(doc));
      const withdrawn: SightingDoc = { ...doc, withdrawn_at: at, withdrawal_reason: reason };
      values.set(doc.source_id, withdrawn);
      outcome.writes.push(withdrawn);

      const stillActive = activeCount(values) > 0;
      if (stillActive) outcome.merged++;
      else outcome.deactivated++;
      if (buildVersion !== undefined) {
        let kind: IndicatorChange['kind'] = reason === 'missing' ? 'withdrawn' : 'expired';
        if (stillActive) kind = 'merged';
        const sighting = { ...refOf(doc), indicatorId: doc.indicator_id };
        outcome.versions.push(buildVersion(change(kind, sighting, values, at, ranges)));
      }
    }
    return outcome;
  }

  /**
   * See `Store.removeSighting`. Writes the version, then the revocation, then
   * the sightings. A failure after the revocation leaves the sightings on
   * the revoked id until a source lists the value again under its successor.
   */
  async remove(input: RemoveSightingInput): Promise<RemoveSightingResult> {
    const { collectionId, sourceId, valueType, value, at } = input;
    const result: RemoveSightingResult = {
      outcome: 'unknown',
      objects: { added: 0, unchanged: 0, conflicts: [] },
    };
    const ref = { valueType, value };
    const values = (await this.sightings.readValues(collectionId, [ref])).get(valueKey(ref));
    const own = values?.get(sourceId);
    if (values === undefined || own === undefined) return result;

    // A sighting withdrawn before keeps the moment it stopped counting.
    const removed: SightingDoc = {
      ...own,
      withdrawn_at: own.withdrawn_at ?? at,
      withdrawal_reason: 'removed',
    };
    values.set(sourceId, removed);
    const sighting = { ...ref, indicatorId: own.indicator_id };
    const ranges = await this.objects.versionRanges(collectionId, [own.indicator_id]);
    let writes = [removed];
    let version: ObjectVersionInput | undefined;
    result.outcome = 'unchanged';
    if (activeCount(values) > 0) {
      if (own.withdrawn_at === null) {
        result.outcome = 'merged';
        version = input.buildVersion(change('merged', sighting, values, at, ranges));
      }
    } else if (ranges.has(own.indicator_id)) {
      // An id without a version is not revoked, as in the SQLite adapter.
      result.outcome = 'revoked';
      version = input.buildVersion(change('revoked', sighting, values, at, ranges));
      const successorId = input.successorId(own.indicator_id);
      writes = [...values.values()].map((doc) => ({
        ...doc,
        indicator_id: successorId,
        creator: false,
      }));
      result.revocation = { indicatorId: own.indicator_id, revokedAt: at, successorId };
    }

    if (version !== undefined) {
      mergeInto(result.objects, await this.objects.put(collectionId, [version]));
    }
    if (result.revocation !== undefined) {
      const { indicatorId, revokedAt, successorId } = result.revocation;
      const doc: RevocationDoc = {
        _id: compositeKey(collectionId, indicatorId),
        collection_id: collectionId,
        indicator_id: indicatorId,
        value_type: valueType,
        value,
        revoked_at: revokedAt,
        successor_id: successorId,
      };
      await this.revocations.replaceOne({ _id: doc._id }, doc, { upsert: true });
    }
    await this.sightings.write(writes);
    return result;
  }

  async listRevocations(
    collectionId: string,
    valueType: string,
    value: string,
  ): Promise<Revocation[]> {
    const docs = await this.revocations
      .find({ collection_id: collectionId, value_type: valueType, value })
      .toArray();
    return docs
      .map((doc) => ({
        indicatorId: doc.indicator_id,
        revokedAt: doc.revoked_at,
        successorId: doc.successor_id,
      }))
      .sort((a, b) => a.revokedAt - b.revokedAt || compareText(a.indicatorId, b.indicatorId));
  }

  /**
   * Returns, by successor id, the revoked id of each removed value of the
   * collection: those whose successor has no version yet.
   */
  async removedBySuccessor(collectionId: string): Promise<Map<string, string>> {
    const docs = await this.revocations.find({ collection_id: collectionId }).toArray();
    const listedAgain = await this.objects.existingIds(
      collectionId,
      docs.map((doc) => doc.successor_id),
    );
    return new Map(
      docs
        .filter((doc) => !listedAgain.has(doc.successor_id))
        .map((doc) => [doc.successor_id, doc.indicator_id]),
    );
  }

  /** Returns the current id of each revoked value of the collection, by `valueKey`. */
  private async currentIds(collectionId: string): Promise<Map<string, string>> {
    const docs = await this.revocations.find({ collection_id: collectionId }).toArray();
    const revoked = new Set(docs.map((doc) => doc.indicator_id));
    const current = new Map<string, string>();
    for (const doc of docs) {
      if (!revoked.has(doc.successor_id)) {
        current.set(valueKey({ valueType: doc.value_type, value: doc.value }), doc.successor_id);
      }
    }
    return current;
  }

  async listSightings(
    collectionId: string,
    valueType: string,
    value: string,
  ): Promise<SightingRecord[]> {
    return this.sightings.listRecords(collectionId, { valueType, value });
  }

  async listEntries(collectionId: string, valueTypes?: string[]): Promise<IndicatorEntry[]> {
    return this.sightings.listEntries(collectionId, valueTypes);
  }

  async getState(collectionId: string, sourceId: string): Promise<SourceState | undefined> {
    const doc = await this.states.findOne({ _id: compositeKey(collectionId, sourceId) });
    if (doc === null) return undefined;

    const state: SourceState = { collectionId, sourceId };
    if (doc.etag !== undefined) state.etag = doc.etag;
    if (doc.last_modified !== undefined) state.lastModified = doc.last_modified;
    if (doc.last_success_at !== undefined) state.lastSuccessAt = doc.last_success_at;
    if (doc.last_valid_count !== undefined) state.lastValidCount = doc.last_valid_count;
    if (doc.last_report !== undefined) {
      state.lastReport = JSON.parse(doc.last_report) as Record<string, unknown>;
    }
    if (doc.cursor !== undefined) {
      state.cursor = JSON.parse(doc.cursor) as Record<string, unknown>;
    }
    return state;
  }

  /** Replaces the whole state: fields absent from `state` are removed. */
  async putState(state: SourceState): Promise<void> {
    const doc: SourceStateDoc = {
      _id: compositeKey(state.collectionId, state.sourceId),
      collection_id: state.collectionId,
      source_id: state.sourceId,
    };
    if (state.etag !== undefined) doc.etag = state.etag;
    if (state.lastModified !== undefined) doc.last_modified = state.lastModified;
    if (state.lastSuccessAt !== undefined) doc.last_success_at = state.lastSuccessAt;
    if (state.lastValidCount !== undefined) doc.last_valid_count = state.lastValidCount;
    if (state.lastReport !== undefined) doc.last_report = JSON.stringify(state.lastReport);
    if (state.cursor !== undefined) doc.cursor = JSON.stringify(state.cursor);

    await this.states.replaceOne({ _id: doc._id }, doc, { upsert: true });
  }
}

/** Builds a sighting that did not exist before; `creator` marks the one that creates the indicator. */
function newSighting(
  collectionId: string,
  sourceId: string,
  sighting: SightingInput,
  seenAt: number,
  creator: boolean,
): SightingDoc {
  // `listedAgain` sets the attributes.
  return {
    _id: sightingId(collectionId, sourceId, sighting),
    collection_id: collectionId,
    source_id: sourceId,
    value_type: sighting.valueType,
    value: sighting.value,
    indicator_id: sighting.indicatorId,
    first_seen: seenAt,
    last_seen: seenAt,
    missed: 0,
    creator,
    withdrawn_at: null,
  };
}

/**
 * Returns a sighting as a poll that lists its value leaves it: active, no
 * misses, last_seen moved forward, the poll's attributes. A withdrawn
 * sighting that comes back starts a new life, so first_seen (and first-seen
 * aging) restarts.
 */
function listedAgain(
  doc: SightingDoc,
  indicatorId: string,
  attributes: string | null,
  seenAt: number,
): SightingDoc {
  const rest: SightingDoc = { ...doc };
  delete rest.withdrawal_reason;
  delete rest.attributes;
  const after: SightingDoc = {
    ...rest,
    indicator_id: indicatorId,
    first_seen: doc.withdrawn_at === null ? doc.first_seen : seenAt,
    last_seen: Math.max(doc.last_seen, seenAt),
    missed: 0,
    withdrawn_at: null,
  };
  if (attributes !== null) after.attributes = attributes;
  return after;
}

function change(
  kind: IndicatorChange['kind'],
  sighting: SightingInput,
  values: ValueSightings,
  at: number,
  ranges?: VersionRanges,
): IndicatorChange {
  const records = [...values.values()]
    .sort((a, b) => compareText(a.source_id, b.source_id))
    .map(toSightingRecord);
  const result: IndicatorChange = {
    kind,
    valueType: sighting.valueType,
    value: sighting.value,
    indicatorId: sighting.indicatorId,
    at,
    sightings: records,
  };
  const range = ranges?.get(sighting.indicatorId);
  if (range?.first) result.firstVersion = range.first;
  if (range?.last) result.lastVersion = range.last;
  return result;
}

/** Compares by UTF-16 code units, which is byte order for ASCII ids. */
function compareText(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

function sightingsOf(byValue: Map<string, ValueSightings>, ref: ValueRef): ValueSightings {
  const key = valueKey(ref);
  let values = byValue.get(key);
  if (values === undefined) {
    values = new Map();
    byValue.set(key, values);
  }
  return values;
}

function activeCount(values: ValueSightings): number {
  let active = 0;
  for (const doc of values.values()) if (doc.withdrawn_at === null) active++;
  return active;
}

function refOf(doc: SightingDoc): ValueRef {
  return { valueType: doc.value_type, value: doc.value };
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}

function mergeInto(total: PutObjectsResult, part: PutObjectsResult): void {
  total.added += part.added;
  total.unchanged += part.unchanged;
  total.conflicts.push(...part.conflicts);
}

/** Returns the first listing of each value, in order. */
function firstListings(sightings: readonly SightingInput[]): SightingInput[] {
  const seen = new Set<string>();
  const firsts: SightingInput[] = [];
  for (const sighting of sightings) {
    const key = valueKey(sighting);
    if (seen.has(key)) continue;
    seen.add(key);
    firsts.push(sighting);
  }
  return firsts;
}

function count(
  summary: PollResultSummary,
  field: 'reactivated' | 'missed' | 'withdrawn' | 'merged',
): void {
  summary[field] = (summary[field] ?? 0) + 1;
}
