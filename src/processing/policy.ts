/**
 * The processing policy of one collection, compiled once from its config:
 * the screen (guards and allow-list), withdrawal and plausibility rules,
 * aging rules and the sources' profiles for merged indicator versions.
 *
 * Import this module directly; like `versions.ts` it is not in the index.
 */
import { createHash } from 'node:crypto';

import type { AgingRule, ExpireSummary, Store } from '../store/index.js';
import type { ConfidenceRule } from './confidence.js';
import { Screen, type ScreenSettings } from './screen.js';
import { VALUE_TYPES, type ValueType } from './value-types.js';
import { buildHubVersion, type SourceProfile, type VersionContext } from './versions.js';

/** When a value that a source stops listing is withdrawn, and when a poll is believed. */
export interface WithdrawalPolicy {
  /** Consecutive complete polls without a value before it is withdrawn. Default 1. */
  missesBeforeWithdrawal: number;
  /**
   * Largest share (0-1) by which the valid count of a complete poll may fall
   * below the previous complete poll's; a larger fall makes the poll
   * implausible, so it withdraws nothing. Default 0.5.
   */
  maxDrop: number;
}

export const DEFAULT_WITHDRAWAL_POLICY: WithdrawalPolicy = {
  missesBeforeWithdrawal: 1,
  maxDrop: 0.5,
};

/**
 * One source's aging as configured: `never`, an age from the first or last
 * sighting, or a decay model.
 *
 * The decay model is MISP's polynomial one: a value's score falls from the
 * source's confidence `base` as `base * (1 - (t / lifetime) ^ (1 / speed))`,
 * `t` being the time since the last sighting, and the value expires when
 * the score falls below `threshold`. That moment is fixed by the last
 * sighting, `lifetime * (1 - threshold / base) ^ speed` after it, so a new
 * sighting resets the clock and the rule becomes a last-seen age.
 */
export type AgingSpec =
  | { basis: 'never' }
  | { basis: 'first-seen' | 'last-seen'; maxAgeMicros: number }
  | { basis: 'decay'; lifetimeMicros: number; speed: number; threshold: number };

/** Microseconds after the last sighting at which a decaying score falls below its threshold. */
export function decayAgeMicros(
  spec: { lifetimeMicros: number; speed: number; threshold: number },
  base: number,
): number {
  if (base <= spec.threshold) return 0;
  return Math.floor(spec.lifetimeMicros * (1 - spec.threshold / base) ** spec.speed);
}

/** Returns the decayed score of a value seen `ageMicros` ago with confidence `base`, 0 after the lifetime. */
export function decayScore(
  spec: { lifetimeMicros: number; speed: number },
  base: number,
  ageMicros: number,
): number {
  if (ageMicros <= 0) return base;
  if (ageMicros >= spec.lifetimeMicros) return 0;
  return base * (1 - (ageMicros / spec.lifetimeMicros) ** (1 / spec.speed));
}

/** A source's aging per value type; `default` covers the types not listed. */
export interface SourceAging {
  default: AgingSpec;
  byType: Partial<Record<ValueType, AgingSpec>>;
}

export interface ProcessingSource extends SourceProfile {
  aging: SourceAging;
}

export interface ProcessingSettings {
  collectionId: string;
  screen: ScreenSettings;
  withdrawal: WithdrawalPolicy;
  confidenceRule: ConfidenceRule;
  sources: readonly ProcessingSource[];
}

/** A collection's compiled processing policy. */
export class CollectionProcessing {
  readonly collectionId: string;
  /** The guards and allow-list, rebuilt when an allow-list source changes its values. */
  screen: Screen;
  readonly withdrawal: WithdrawalPolicy;
  readonly versions: VersionContext;
  readonly agingRules: AgingRule[];
  /**
   * Digest of the screen settings. A poll whose list and screen are both the
   * same as before keeps the same sightings, so the unchanged-list shortcut
   * checks it. NOTE: allow-list files are named, not read, so a changed
   * file only takes effect on sightings at the next changed list; views
   * screen again at every render, so they apply it at once.
   */
  fingerprint: string;
  private readonly screenSettings: ScreenSettings;
  /** Values of the sources whose role is `allow-list`, by source id. */
  private readonly sourceAllowLists = new Map<string, readonly string[]>();

  constructor(settings: ProcessingSettings) {
    this.collectionId = settings.collectionId;
    this.screenSettings = settings.screen;
    this.fingerprint = screenFingerprint(settings.screen);
    this.screen = new Screen(settings.screen);
    this.withdrawal = settings.withdrawal;
    const sources = new Map(settings.sources.map((source) => [source.id, source] as const));
    this.versions = {
      collectionId: settings.collectionId,
      sources,
      fallback: {
        id: '',
        name: '',
        confidence: 50,
        weight: 1,
        tlp: 'clear',
        indicatorTypes: ['malicious-activity'],
        labels: [],
      },
      confidenceRule: settings.confidenceRule,
    };
    this.agingRules = settings.sources.flatMap((source) =>
      agingRules(source.id, source.aging, source.confidence),
    );
  }

  /**
   * Sets the values that an allow-list source lists now and rebuilds the
   * screen when they changed. Returns whether they changed.
   */
  setSourceAllowList(sourceId: string, values: readonly string[]): boolean {
    const before = this.sourceAllowLists.get(sourceId) ?? [];
    if (before.length === values.length && before.every((value, i) => value === values[i])) {
      return false;
    }
    if (values.length === 0) this.sourceAllowLists.delete(sourceId);
    else this.sourceAllowLists.set(sourceId, [...values]);
    const extra = [...this.sourceAllowLists.entries()]
      .sort(([a], [b]) => compareCodeUnits(a, b))
      .flatMap(([, list]) => list);
    const settings: ScreenSettings = {
      ...this.screenSettings,
      allowList: {
        ...this.screenSettings.allowList,
        entries: [...this.screenSettings.allowList.entries, ...extra],
      },
    };
    this.screen = new Screen(settings);
    this.fingerprint = screenFingerprint(settings);
    return true;
  }

  /**
   * Expires the sightings that the aging rules have aged out at `now`
   * (micros) and stores the versions this causes. Idempotent.
   */
  async age(store: Store, now: number): Promise<ExpireSummary | undefined> {
    if (this.agingRules.length === 0) return undefined;
    return store.expireSightings({
      collectionId: this.collectionId,
      now,
      rules: this.agingRules,
      buildVersion: (change) => buildHubVersion(change, this.versions),
    });
  }
}

/**
 * Turns one source's aging spec into store rules, one per distinct spec. A
 * decay model becomes a last-seen age computed from `confidence`, the
 * source's score at its last sighting.
 */
export function agingRules(sourceId: string, aging: SourceAging, confidence = 100): AgingRule[] {
  const rules: AgingRule[] = [];
  const listed = Object.keys(aging.byType) as ValueType[];
  const push = (spec: AgingSpec, valueTypes: string[] | undefined): void => {
    if (spec.basis === 'never') return;
    if (valueTypes !== undefined && valueTypes.length === 0) return;
    const rule: AgingRule =
      spec.basis === 'decay'
        ? { sourceId, basis: 'last-seen', maxAgeMicros: decayAgeMicros(spec, confidence) }
        : { sourceId, basis: spec.basis, maxAgeMicros: spec.maxAgeMicros };
    if (valueTypes !== undefined) rule.valueTypes = valueTypes;
    rules.push(rule);
  };
  push(
    aging.default,
    listed.length === 0 ? undefined : VALUE_TYPES.filter((type) => !listed.includes(type)),
  );
  for (const type of listed) {
    const spec = aging.byType[type];
    if (spec) push(spec, [type]);
  }
  return rules;
}

const MICROS_PER_SECOND = 1_000_000;
const SECONDS_PER_UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

const DECAY =
  /^decay\(\s*lifetime\s*=\s*([1-9][0-9]{0,6})([smhd])\s*,\s*speed\s*=\s*([0-9]+(?:\.[0-9]+)?)\s*,\s*threshold\s*=\s*([0-9]{1,3})\s*\)$/;

/**
 * Parses `never`, `first_seen+30d`, `last_seen+12h` (units s, m, h, d) or
 * `decay(lifetime=30d, speed=2, threshold=30)`.
 */
export function parseAgingSpec(text: string): AgingSpec {
  if (text === 'never') return { basis: 'never' };
  const decay = DECAY.exec(text);
  if (decay) {
    const speed = Number(decay[3]);
    const threshold = Number(decay[4]);
    if (speed <= 0 || threshold > 100) {
      throw new Error(
        `invalid aging ${JSON.stringify(text)}: speed must be above 0 and threshold 0 to 100`,
      );
    }
    return {
      basis: 'decay',
      lifetimeMicros:
        Number(decay[1]) * (SECONDS_PER_UNIT[decay[2] ?? ''] ?? Number.NaN) * MICROS_PER_SECOND,
      speed,
      threshold,
    };
  }
  const match = /^(first_seen|last_seen)\+([1-9][0-9]{0,6})([smhd])$/.exec(text);
  if (!match) {
    throw new Error(
      `invalid aging ${JSON.stringify(text)}: expected never, first_seen+DURATION, last_seen+DURATION or decay(lifetime=DURATION, speed=N, threshold=N), e.g. last_seen+30d`,
    );
  }
  const seconds = Number(match[2]) * (SECONDS_PER_UNIT[match[3] ?? ''] ?? Number.NaN);
  return {
    basis: match[1] === 'first_seen' ? 'first-seen' : 'last-seen',
    maxAgeMicros: seconds * MICROS_PER_SECOND,
  };
}

export const NO_AGING: SourceAging = { default: { basis: 'never' }, byType: {} };

function screenFingerprint(settings: ScreenSettings): string {
  return createHash('sha256').update(JSON.stringify(settings)).digest('base64url').slice(0, 16);
}

/** Compares two strings by UTF-16 code units, the same on every platform and locale. */
function compareCodeUnits(a: string, b: string): number {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}
