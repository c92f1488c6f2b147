/**
 * What a view of a collection is, as the collection YAML declares it: its
 * kind (the output format), which values it lists, in what order, how many
 * at most, the options of its format, and who may fetch it.
 */
import type { ValueType } from '../processing/index.js';
import type { ViewTlp } from './model.js';

export const VIEW_KIND_NAMES = [
  'edl-ip',
  'edl-domain',
  'edl-url',
  'csv',
  'cef',
  'json',
  'stix-bundle',
  'mwg',
  'bluecoat',
  'fortigate',
  'checkpoint',
  'cisco-si',
  'aws-waf',
  'rpz',
] as const;

export type ViewKind = (typeof VIEW_KIND_NAMES)[number];

export function isViewKind(text: string): text is ViewKind {
  return (VIEW_KIND_NAMES as readonly string[]).includes(text);
}

/** Which values a view lists. Every condition must hold; an absent one holds for all. */
export interface ViewFilter {
  /** Value types; absent means the kind's default types. */
  types?: ValueType[];
  /** Lowest confidence listed, inclusive. */
  minConfidence?: number;
  /**
   * Confidence above which values are not listed, exclusive, so that views
   * with `minConfidence: 75` and `belowConfidence: 75` split the values
   * with nothing left out and nothing listed twice.
   */
  belowConfidence?: number;
  /** Source ids; a value is listed when one of its active sources is among them. */
  sources?: string[];
  /** Labels; a value is listed when it carries one of them. */
  labels?: string[];
  /** STIX indicator types; a value is listed when it has one of them. */
  indicatorTypes?: string[];
  /** Most restrictive TLP listed: `green` lists clear and green values only. */
  maxTlp?: ViewTlp;
  /** Only values that a source listed within this many microseconds before the render. */
  seenWithinMicros?: number;
}

export type ViewOrder = 'value' | 'confidence' | 'last-seen' | 'first-seen';

/** Who may fetch a view. A request needs to pass both the network and the credential checks. */
export interface ViewAccess {
  /** Whether a request without credentials may fetch the view. Default true. */
  public: boolean;
  /** Principals that may fetch it; `*` for every authenticated principal. */
  principals: string[];
  /** Credential schemes accepted for `principals`. Default both. */
  methods: ('basic' | 'api-key')[];
  /** Client networks (CIDRs or addresses) allowed; empty allows every address. */
  networks: string[];
}

export const PUBLIC_VIEW_ACCESS: ViewAccess = {
  public: true,
  principals: [],
  methods: ['basic', 'api-key'],
  networks: [],
};

/** A view of a collection, resolved from the YAML with defaults filled in. */
export interface ViewSpec {
  /** The last segment of the view URL, `/feeds/{alias}/{name}`. */
  name: string;
  kind: ViewKind;
  filter: ViewFilter;
  order: ViewOrder;
  descending: boolean;
  /** Largest number of entries; above it the highest-priority entries are kept. */
  maxEntries?: number;
  /** Format options of the kind, as written in the YAML (checked by the schema). */
  options: Record<string, unknown>;
  access: ViewAccess;
}

/** Builds a spec with defaults, for code and tests that need only a name and a kind. */
export function viewSpec(
  name: string,
  kind: ViewKind,
  overrides: Partial<Omit<ViewSpec, 'name' | 'kind'>> = {},
): ViewSpec {
  return {
    name,
    kind,
    filter: {},
    order: 'value',
    descending: false,
    options: {},
    access: PUBLIC_VIEW_ACCESS,
    ...overrides,
  };
}
