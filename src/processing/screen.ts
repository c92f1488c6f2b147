/**
 * The screen of a collection: its sanity guards, then its allow-list. Polls
 * run every value through it before storing, and views run every entry
 * through it again before rendering, so a value that slipped in before a
 * rule changed still never reaches a view.
 */
import { AllowList, DEFAULT_ALLOW_LIST_SETTINGS, type AllowListSettings } from './allow-list.js';
import {
  DEFAULT_GUARD_SETTINGS,
  GUARD_RULES,
  Guards,
  type GuardRule,
  type GuardSettings,
} from './guards.js';
import type { TypedValue } from './ip-intervals.js';
import type { ValueType } from './value-types.js';

export interface ScreenSettings {
  guards: GuardSettings;
  allowList: AllowListSettings;
}

export const DEFAULT_SCREEN_SETTINGS: ScreenSettings = {
  guards: DEFAULT_GUARD_SETTINGS,
  allowList: DEFAULT_ALLOW_LIST_SETTINGS,
};

/** A value that the screen kept out, with the reason, for run reports. */
export interface ScreenExample {
  value: string;
  reason: string;
}

/** Counts of one screening pass. */
export interface ScreenCounts {
  /** Values that a guard rejected, per rule. */
  refused: Record<GuardRule, number>;
  /** Values that the allow-list removed whole. */
  allowListed: number;
  /** IP networks or ranges that the allow-list split; their remainders are kept. */
  split: number;
  /** A few of the values kept out, for the run report. */
  examples: ScreenExample[];
}

/** What the screen decides about one value. */
export type ScreenVerdict =
  | { kind: 'keep' }
  | { kind: 'refused'; rule: GuardRule }
  | { kind: 'allowed'; entry: string }
  | { kind: 'split'; rest: TypedValue[]; entry: string };

const MAX_EXAMPLES = 5;

export function emptyScreenCounts(): ScreenCounts {
  const refused = Object.fromEntries(GUARD_RULES.map((rule) => [rule, 0])) as Record<
    GuardRule,
    number
  >;
  return { refused, allowListed: 0, split: 0, examples: [] };
}

/** The guards and allow-list of one collection, compiled once. */
export class Screen {
  readonly guards: Guards;
  readonly allowList: AllowList;

  constructor(settings: ScreenSettings) {
    this.guards = new Guards(settings.guards);
    this.allowList = new AllowList(settings.allowList);
  }

  /** Judges one canonical value: guards first, then the allow-list. */
  judge(type: ValueType, value: string): ScreenVerdict {
    const rule = this.guards.check(type, value);
    if (rule !== undefined) return { kind: 'refused', rule };
    return this.allowList.check(type, value);
  }

  /**
   * Returns the values that may be published: refused and allowed values
   * removed, split networks replaced by their remainders. `counts` collects
   * what was removed. Output values are unique when input values are.
   */
  filter<T extends TypedValue>(
    values: readonly T[],
    counts: ScreenCounts,
    copy: (original: T, replacement: TypedValue) => T,
  ): T[] {
    const kept: T[] = [];
    for (const entry of values) {
      const verdict = this.judge(entry.type, entry.value);
      switch (verdict.kind) {
        case 'keep':
          kept.push(entry);
          break;
        case 'refused':
          counts.refused[verdict.rule]++;
          noteExample(counts, entry.value, `refused by the ${verdict.rule} guard`);
          break;
        case 'allowed':
          counts.allowListed++;
          noteExample(counts, entry.value, `allow-listed by ${verdict.entry}`);
          break;
        case 'split':
          counts.split++;
          noteExample(counts, entry.value, `split around allow-listed addresses`);
          for (const part of verdict.rest) kept.push(copy(entry, part));
          break;
      }
    }
    return kept;
  }
}

function noteExample(counts: ScreenCounts, value: string, reason: string): void {
  if (counts.examples.length < MAX_EXAMPLES) counts.examples.push({ value, reason });
}

/** Returns the refused counts that are not zero, for compact reports. */
export function nonZeroRefused(counts: ScreenCounts): Partial<Record<GuardRule, number>> {
  const result: Partial<Record<GuardRule, number>> = {};
  for (const rule of GUARD_RULES) if (counts.refused[rule] > 0) result[rule] = counts.refused[rule];
  return result;
}
