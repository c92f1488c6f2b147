/**
 * Allow-lists: values a collection never publishes. Entries come inline from
 * the collection YAML, from text files, and from built-in lists shipped in
 * `data/`. An IP network that is partly allowed is split, so the rest of it
 * stays blocked.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { RE2JS } from 're2js';

import { canonicalize, detectValueType } from './canonical.js';
import {
  IntervalSet,
  ipInterval,
  ipv4IntervalToValues,
  ipv6IntervalToValues,
  type Ipv4Interval,
  type Ipv6Interval,
  type TypedValue,
} from './ip-intervals.js';
import { hostInterval, urlHost } from './url.js';
import type { ValueType } from './value-types.js';

/** The lists shipped with the hub; `data/NOTICE.md` names their sources. */
export const BUILTIN_ALLOW_LISTS = ['bogons', 'public-dns', 'top-domains'] as const;
export type BuiltinAllowList = (typeof BUILTIN_ALLOW_LISTS)[number];

export interface AllowListSettings {
  /** Built-in lists to include. Default: all of them. */
  builtin: readonly BuiltinAllowList[];
  /** Inline entries, in the syntax of `parseAllowEntry`. */
  entries: readonly string[];
  /** Absolute paths of text files with one entry per line; `#` starts a comment. */
  files: readonly string[];
}

export const DEFAULT_ALLOW_LIST_SETTINGS: AllowListSettings = {
  builtin: BUILTIN_ALLOW_LISTS,
  entries: [],
  files: [],
};

/** The outcome of checking one value against an allow-list. */
export type AllowDecision =
  | { kind: 'keep' }
  | { kind: 'allowed'; entry: string }
  /** Part of an IP network or range is allowed; `rest` is what stays, as canonical values. */
  | { kind: 'split'; rest: TypedValue[]; entry: string };

const KEEP: AllowDecision = { kind: 'keep' };

/** First address of ::ffff:0:0/96, the IPv4-mapped IPv6 addresses. */
const IPV4_MAPPED = 0xffff00000000n;

/** A compiled allow-list. Building it reads the files; checking a value does no I/O. */
export class AllowList {
  private readonly ipv4: IntervalSet<number>;
  private readonly ipv6: IntervalSet<bigint>;
  /** Each IP entry with the text that names it, to say which entry allowed a value. */
  private readonly ipLabels: {
    family: 4 | 6;
    first: number | bigint;
    last: number | bigint;
    label: string;
  }[] = [];
  /** Domains whose subdomains are allowed too. */
  private readonly domainSuffixes = new Set<string>();
  /** Domains allowed only as themselves (the top-domains list). */
  private readonly exactDomains = new Set<string>();
  /** Exact canonical values of any type, e.g. hashes. */
  private readonly exact = new Set<string>();
  private readonly urlPrefixes: string[] = [];
  private readonly patterns: { source: string; pattern: RE2JS }[] = [];

  constructor(settings: AllowListSettings) {
    const ipv4: Ipv4Interval[] = [];
    const ipv6: Ipv6Interval[] = [];
    const add = (line: string, where: string): void => {
      const entry = parseAllowEntry(line, where);
      switch (entry.kind) {
        case 'ipv4':
          ipv4.push(entry.interval);
          this.ipLabels.push({ family: 4, ...entry.interval, label: line.trim() });
          break;
        case 'ipv6':
          ipv6.push(entry.interval);
          this.ipLabels.push({ family: 6, ...entry.interval, label: line.trim() });
          break;
        case 'domain':
          this.domainSuffixes.add(entry.value);
          break;
        case 'exact':
          this.exact.add(entry.value);
          break;
        case 'url-prefix':
          this.urlPrefixes.push(entry.value);
          break;
        case 'regex':
          this.patterns.push({ source: entry.source, pattern: entry.pattern });
          break;
      }
    };

    for (const name of settings.builtin) {
      if (name === 'top-domains') {
        for (const domain of builtinTopDomains()) this.exactDomains.add(domain);
        continue;
      }
      for (const entry of builtinEntries(name)) {
        const label = `${entry.line} (built-in list ${name})`;
        if (entry.kind === 'ipv4') {
          ipv4.push(entry.interval);
          this.ipLabels.push({ family: 4, ...entry.interval, label });
        } else if (entry.kind === 'ipv6') {
          ipv6.push(entry.interval);
          this.ipLabels.push({ family: 6, ...entry.interval, label });
        } else {
          add(entry.line, `built-in list ${name}`);
        }
      }
    }
    settings.entries.forEach((line) => add(line, 'allowList.entries'));
    for (const file of settings.files) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        throw new Error(`allow-list file ${file} could not be read: ${(error as Error).message}`, {
          cause: error,
        });
      }
      // Errors name the line by number only: the file may not be an allow-list at
      // all, and its content must not reach whoever changed the definition.
      listLines(text).forEach((line, index) => {
        try {
          add(line, `allow-list file ${file}`);
        } catch {
          throw new Error(
            `allow-list file ${file}: entry ${index + 1} (counting non-blank, non-comment lines) is not a valid entry; fix or remove it`,
          );
        }
      });
    }
    this.ipv4 = new IntervalSet(ipv4, 1);
    this.ipv6 = new IntervalSet(ipv6, 1n);
  }

  /** Checks a canonical value; an IP network or range that is partly allowed is split. */
  check(type: ValueType, value: string): AllowDecision {
    if (this.exact.has(value)) return { kind: 'allowed', entry: `exact:${value}` };
    const byType = this.checkByType(type, value);
    if (byType.kind !== 'keep') return byType;
    for (const { source, pattern } of this.patterns) {
      if (pattern.matcher(value).find()) return { kind: 'allowed', entry: `regex:${source}` };
    }
    return KEEP;
  }

  private checkByType(type: ValueType, value: string): AllowDecision {
    switch (type) {
      case 'ipv4':
      case 'ipv4-cidr':
      case 'ipv4-range':
      case 'ipv6':
      case 'ipv6-cidr':
        return this.checkIp(type, value);
      case 'domain':
        if (this.exactDomains.has(value)) return { kind: 'allowed', entry: value };
        return this.checkDomainSuffix(value);
      case 'url':
        return this.checkUrl(value);
      default:
        return KEEP;
    }
  }

  private checkIp(type: ValueType, value: string): AllowDecision {
    const interval = ipInterval(type, value);
    if (interval === undefined) return KEEP;
    if (interval.family === 4) {
      if (!this.ipv4.overlaps(interval.first, interval.last)) return KEEP;
      const entry = this.ipLabel(4, interval.first, interval.last);
      if (this.ipv4.covers(interval.first, interval.last)) return { kind: 'allowed', entry };
      const rest = this.ipv4.subtract(interval.first, interval.last, 1);
      return { kind: 'split', rest: rest.flatMap(ipv4IntervalToValues), entry };
    }
    if (!this.ipv6.overlaps(interval.first, interval.last)) return KEEP;
    const entry = this.ipLabel(6, interval.first, interval.last);
    if (this.ipv6.covers(interval.first, interval.last)) return { kind: 'allowed', entry };
    const rest = this.ipv6.subtract(interval.first, interval.last, 1n);
    return { kind: 'split', rest: rest.flatMap(ipv6IntervalToValues), entry };
  }

  /** Names the first entry that overlaps an interval; a scan, run only for values that are allowed. */
  private ipLabel(family: 4 | 6, first: number | bigint, last: number | bigint): string {
    for (const entry of this.ipLabels) {
      if (entry.family === family && entry.first <= last && first <= entry.last) return entry.label;
    }
    return 'ip';
  }

  private checkDomainSuffix(domain: string): AllowDecision {
    if (this.domainSuffixes.size === 0) return KEEP;
    for (let name = domain; ;) {
      if (this.domainSuffixes.has(name)) return { kind: 'allowed', entry: name };
      const dot = name.indexOf('.');
      if (dot < 0) return KEEP;
      name = name.slice(dot + 1);
    }
  }

  /** A URL is allowed by an allowed prefix, or when its host is an allowed address or domain. */
  private checkUrl(url: string): AllowDecision {
    for (const prefix of this.urlPrefixes) {
      if (url.startsWith(prefix)) return { kind: 'allowed', entry: prefix };
    }
    const host = urlHost(url);
    if (host === undefined) return KEEP;
    const address = hostInterval(host);
    if (address?.family === 4) {
      return this.ipv4.covers(address.first, address.last)
        ? { kind: 'allowed', entry: 'ip' }
        : KEEP;
    }
    if (address?.family === 6) {
      return this.ipv6.covers(address.first, address.last)
        ? { kind: 'allowed', entry: 'ip' }
        : KEEP;
    }
    return this.checkDomainSuffix(host);
  }
}

/** One parsed allow-list entry. */
export type AllowEntry =
  | { kind: 'ipv4'; interval: Ipv4Interval }
  | { kind: 'ipv6'; interval: Ipv6Interval }
  | { kind: 'domain'; value: string }
  | { kind: 'exact'; value: string }
  | { kind: 'url-prefix'; value: string }
  | { kind: 'regex'; source: string; pattern: RE2JS };

/**
 * Parses one allow-list entry:
 * - an IP address, CIDR or IPv4 range: allows every value inside it and
 *   splits every network that overlaps it;
 * - a domain: allows it and all its subdomains, and URLs on those hosts;
 * - a URL: allows every URL that starts with it (after canonicalization);
 * - `exact:VALUE`: allows that one canonical value, e.g. a hash;
 * - `regex:PATTERN`: allows values that the RE2 pattern matches anywhere.
 *   RE2 runs in linear time, so it rejects backreferences and lookarounds.
 * `where` names the origin of the entry in error messages.
 */
export function parseAllowEntry(text: string, where: string): AllowEntry {
  const line = text.trim();
  if (line.startsWith('regex:')) {
    const source = line.slice('regex:'.length);
    try {
      return { kind: 'regex', source, pattern: RE2JS.compile(source) };
    } catch (error) {
      throw new Error(
        `${where}: invalid allow-list pattern ${JSON.stringify(source)}: ${(error as Error).message}; ` +
          'patterns use RE2 syntax, without backreferences or lookarounds',
        { cause: error },
      );
    }
  }
  const exact = line.startsWith('exact:');
  const body = exact ? line.slice('exact:'.length) : line;
  const parsed = canonicalize(detectValueType(body.trim()), body);
  if (!parsed.ok) {
    throw new Error(`${where}: invalid allow-list entry ${JSON.stringify(text)}: ${parsed.reason}`);
  }
  if (exact) return { kind: 'exact', value: parsed.value };

  const interval = ipInterval(parsed.type, parsed.value);
  if (interval?.family === 4) return { kind: 'ipv4', interval };
  if (interval?.family === 6) {
    // An IPv4-mapped network (::ffff:a.b.c.d/n, n >= 104) allows those IPv4
    // addresses, as a mapped single address already does after canonicalising.
    // Wider ones stay IPv6: the bogons list holds all of ::ffff:0:0/96, which
    // must not become 0.0.0.0/0.
    const mapped = interval.first >= IPV4_MAPPED && interval.last <= IPV4_MAPPED + 0xffffffffn;
    if (mapped && interval.last - interval.first < 1n << 24n) {
      const first = Number(interval.first - IPV4_MAPPED);
      const last = Number(interval.last - IPV4_MAPPED);
      return { kind: 'ipv4', interval: { first, last } };
    }
    return { kind: 'ipv6', interval };
  }
  if (parsed.type === 'domain') return { kind: 'domain', value: parsed.value };
  if (parsed.type === 'url') return { kind: 'url-prefix', value: parsed.value };
  return { kind: 'exact', value: parsed.value };
}

/** Returns the non-blank lines of a list with `#` comments and surrounding space removed. */
function listLines(text: string): string[] {
  const lines: string[] = [];
  for (const raw of text.split('\n')) {
    const hash = raw.indexOf('#');
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line !== '') lines.push(line);
  }
  return lines;
}

const builtinCache = new Map<BuiltinAllowList, string>();

type BuiltinEntry =
  | { kind: 'ipv4'; interval: Ipv4Interval; line: string }
  | { kind: 'ipv6'; interval: Ipv6Interval; line: string }
  | { kind: 'other'; line: string };

// Parsed once per process: each collection's screen is compiled again whenever its definition changes.
const parsedBuiltins = new Map<BuiltinAllowList, BuiltinEntry[]>();
let topDomains: string[] | undefined;

function builtinEntries(name: BuiltinAllowList): BuiltinEntry[] {
  let entries = parsedBuiltins.get(name);
  if (entries === undefined) {
    entries = listLines(readBuiltin(name)).map((line): BuiltinEntry => {
      const entry = parseAllowEntry(line, `built-in list ${name}`);
      if (entry.kind === 'ipv4') return { kind: 'ipv4', interval: entry.interval, line };
      if (entry.kind === 'ipv6') return { kind: 'ipv6', interval: entry.interval, line };
      return { kind: 'other', line };
    });
    parsedBuiltins.set(name, entries);
  }
  return entries;
}

function builtinTopDomains(): string[] {
  if (topDomains === undefined) {
    topDomains = [];
    for (const line of listLines(readBuiltin('top-domains'))) {
      const domain = canonicalize('domain', line);
      if (domain.ok) topDomains.push(domain.value);
    }
  }
  return topDomains;
}

/**
 * Reads a built-in list. The lists sit in `src/processing/data`, which the
 * TypeScript build does not copy, so a build in `dist/processing` looks
 * there through the repository root.
 */
function readBuiltin(name: BuiltinAllowList): string {
  const cached = builtinCache.get(name);
  if (cached !== undefined) return cached;
  const candidates = [
    new URL(`./data/${name}.txt`, import.meta.url),
    new URL(`../../src/processing/data/${name}.txt`, import.meta.url),
  ].map((url) => fileURLToPath(url));
  const path = candidates.find((candidate) => existsSync(candidate));
  if (path === undefined) {
    throw new Error(`built-in allow-list ${name} not found; looked in ${candidates.join(', ')}`);
  }
  const text = readFileSync(path, 'utf8');
  builtinCache.set(name, text);
  return text;
}
