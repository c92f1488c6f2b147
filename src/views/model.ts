/**
 * The data that view formats work on: one entry per active value of a
 * collection, with everything a device format may print about it, and the
 * build log that records what a format rewrote or dropped.
 */
import type { ValueType } from '../processing/index.js';

/** TLP level of an entry, from the most open to the most restricted. */
export type ViewTlp = 'clear' | 'green' | 'amber' | 'amber+strict' | 'red';

/** One active value as a view lists it. Times are microseconds since the Unix epoch. */
export interface ViewEntry {
  type: ValueType;
  /** Canonical value: lower-case punycode domains, `a.b.c.d/n` CIDRs, `a-b` IPv4 ranges, full URLs with scheme. */
  value: string;
  /** STIX id of the hub indicator of the value. */
  indicatorId: string;
  /** Merged confidence, 0-100. */
  confidence: number;
  /** Names of the sources that list the value now, sorted. */
  sources: string[];
  /** Union of the sources' labels, sorted. */
  labels: string[];
  /** Union of the sources' STIX indicator types, sorted. */
  indicatorTypes: string[];
  /** The most restrictive TLP of the sources, their sightings and the collection. */
  tlp: ViewTlp;
  firstSeen: number;
  lastSeen: number;
  /** Ports that the sources gave for the value, sorted; absent when none did. */
  ports?: number[];
  /** Malware families that the sources named, sorted; absent when none did. */
  malwareFamilies?: string[];
  /** The description of the most recent sighting that has one. */
  description?: string;
  /** The earliest first-seen time that a source reported itself, as opposed to `firstSeen`, when the hub first saw the value. */
  reportedFirstSeen?: number;
  /** The latest last-seen time that a source reported itself. */
  reportedLastSeen?: number;
}

/** One rewrite or drop of an entry by a format. */
export interface BuildLogEvent {
  action: 'rewritten' | 'dropped';
  /** The entry value before the format touched it. */
  value: string;
  /** The written value, for `rewritten`. */
  result?: string;
  /** Why, in a short sentence, e.g. `port 8080 stripped`. */
  reason: string;
}

/**
 * Collects format events. Keeps a bounded number of examples but counts
 * every event, so a million rewrites cost no memory.
 */
export class BuildLog {
  readonly events: BuildLogEvent[] = [];
  readonly counts = { rewritten: 0, dropped: 0 };

  constructor(readonly maxEvents = 1000) {}

  rewritten(value: string, result: string, reason: string): void {
    this.counts.rewritten += 1;
    if (this.events.length < this.maxEvents) {
      this.events.push({ action: 'rewritten', value, result, reason });
    }
  }

  dropped(value: string, reason: string): void {
    this.counts.dropped += 1;
    if (this.events.length < this.maxEvents) {
      this.events.push({ action: 'dropped', value, reason });
    }
  }
}

/** A rendered body and the media type to send it with. */
export interface FormatOutput {
  body: string;
  contentType: string;
}

export const PLAIN_TEXT = 'text/plain; charset=utf-8';
