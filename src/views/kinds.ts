/** The kinds of derived views and the entries each one lists. */
import type { ValueType } from '../processing/index.js';
import type { IndicatorEntry } from '../store/index.js';

import { sortIpValues } from './ip-order.js';

/** A view to render for a collection. */
export interface ViewSpec {
  /** The name in the view URL, `/feeds/{alias}/{name}`. */
  name: string;
  kind: ViewKind;
}

export type ViewKind = 'edl-ip' | 'edl-domain' | 'edl-url';

interface ViewKindDefinition {
  valueTypes: ValueType[];
  contentType: string;
  /** Returns the lines of the view, in order. */
  lines(entries: IndicatorEntry[]): string[];
}

const PLAIN_TEXT = 'text/plain; charset=utf-8';

/** Returns the values in code unit order, the same on every platform and locale. */
function sortedValues(entries: IndicatorEntry[]): string[] {
  return entries.map((entry) => entry.value).sort();
}

// External dynamic lists (EDL) as firewalls poll them: one entry per line.
export const VIEW_KINDS: Record<ViewKind, ViewKindDefinition> = {
  'edl-ip': {
    valueTypes: ['ipv4', 'ipv4-cidr', 'ipv4-range', 'ipv6', 'ipv6-cidr'],
    contentType: PLAIN_TEXT,
    lines: sortIpValues,
  },
  'edl-domain': { valueTypes: ['domain'], contentType: PLAIN_TEXT, lines: sortedValues },
  'edl-url': { valueTypes: ['url'], contentType: PLAIN_TEXT, lines: sortedValues },
};

export function isViewKind(text: string): text is ViewKind {
  return Object.hasOwn(VIEW_KINDS, text);
}
