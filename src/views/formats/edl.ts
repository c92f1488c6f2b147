/**
 * External dynamic lists (EDL) of IP addresses and of domains, as firewalls
 * poll them: one entry per line, each line ending in `\n`.
 */
import { formatIpv4, formatIpv6BigInt, type ValueType } from '../../processing/index.js';
import { ipv4Interval, ipv6Interval, ipv6RangeToBlocks } from '../../processing/ip-intervals.js';
import { ipv4RangeToBlocks } from '../../processing/ip.js';
import { PLAIN_TEXT, type BuildLog, type FormatOutput, type ViewEntry } from '../model.js';

/** Options of the IP list. */
export interface IpEdlOptions {
  /** `keep` writes an IPv4 range as `a-b`, `cidr` writes it as the CIDRs that cover it exactly. */
  ranges: 'keep' | 'cidr';
  /**
   * Writes the smallest set of CIDRs that covers exactly the union of all
   * entries, per family. `ranges` has no effect then, because no range is left.
   */
  collapse: boolean;
}

/** Options of the domain list. */
export interface DomainEdlOptions {
  /**
   * `exact` writes `example.com`, which PAN-OS matches against that name only.
   * `wildcard` writes `*.example.com`, which matches its subdomains only.
   * `both` writes both lines, so the name and its subdomains match.
   */
  wildcard: 'exact' | 'wildcard' | 'both';
}

/** One IP list line with the address interval that it covers. */
class IpLine<T extends number | bigint> {
  constructor(
    readonly first: T,
    readonly last: T,
    readonly text: string,
    /** The entry the line comes from. */
    readonly source: ViewEntry,
  ) {}
}

/** Arithmetic of one address family: numbers for IPv4, bigints for IPv6. */
interface Family<T extends number | bigint> {
  one: T;
  /** Orders lines by first address, then last address, then text. */
  compare(a: IpLine<T>, b: IpLine<T>): number;
  /** Returns the fewest CIDR blocks that cover [first, last], in address order. */
  blocks(first: T, last: T): { base: T; prefix: number }[];
  /** Formats a block: a plain address for a single-address block, else `base/prefix`. */
  formatBlock(block: { base: T; prefix: number }): string;
}

const IPV4: Family<number> = {
  one: 1,
  // Subtraction on plain numbers keeps a sort of a million lines fast.
  compare: (a, b) => a.first - b.first || a.last - b.last || compareText(a.text, b.text),
  blocks: ipv4RangeToBlocks,
  formatBlock: (block) =>
    block.prefix === 32 ? formatIpv4(block.base) : `${formatIpv4(block.base)}/${block.prefix}`,
};

const IPV6: Family<bigint> = {
  one: 1n,
  compare: (a, b) => {
    if (a.first !== b.first) return a.first < b.first ? -1 : 1;
    if (a.last !== b.last) return a.last < b.last ? -1 : 1;
    return compareText(a.text, b.text);
  },
  blocks: ipv6RangeToBlocks,
  formatBlock: (block) =>
    block.prefix === 128
      ? formatIpv6BigInt(block.base)
      : `${formatIpv6BigInt(block.base)}/${block.prefix}`,
};

const IPV4_TYPES: ReadonlySet<ValueType> = new Set(['ipv4', 'ipv4-cidr', 'ipv4-range']);
const IPV6_TYPES: ReadonlySet<ValueType> = new Set(['ipv6', 'ipv6-cidr']);

function compareText(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

function plus<T extends number | bigint>(a: T, b: T): T {
  return ((a as bigint) + (b as bigint)) as T;
}

/**
 * Returns the IPv4 entries that are ranges as one entry per covering CIDR,
 * with the attributes of the range, and every other entry unchanged. A
 * single-address block is written as the address. Logs each range it splits.
 */
export function expandIpv4Ranges(entries: readonly ViewEntry[], log: BuildLog): ViewEntry[] {
  const result: ViewEntry[] = [];
  for (const entry of entries) {
    if (entry.type !== 'ipv4-range') {
      result.push(entry);
      continue;
    }
    const interval = tryInterval(() => ipv4Interval(entry.value), entry, log);
    if (interval === undefined) continue;

    const blocks = IPV4.blocks(interval.first, interval.last);
    const values = blocks.map((block) => IPV4.formatBlock(block));
    log.rewritten(entry.value, values.join(' '), `range written as ${values.length} CIDRs`);
    blocks.forEach((block, index) => {
      const type: ValueType = block.prefix === 32 ? 'ipv4' : 'ipv4-cidr';
      result.push({ ...entry, type, value: values[index] ?? '' });
    });
  }
  return result;
}

/** Runs `parse`, and logs the entry as dropped when its value is not canonical text of its type. */
function tryInterval<R>(parse: () => R, entry: ViewEntry, log: BuildLog): R | undefined {
  try {
    return parse();
  } catch {
    log.dropped(entry.value, `not a canonical ${entry.type} value`);
    return undefined;
  }
}

/**
 * Renders an IP list: IPv4 lines first, then IPv6, each in numeric order of
 * first and then last address, with duplicate lines written once. Entries of
 * other types are left out. See `IpEdlOptions` for ranges and collapse.
 */
export function renderIpEdl(
  entries: readonly ViewEntry[],
  options: IpEdlOptions,
  log: BuildLog,
): FormatOutput {
  const source =
    options.ranges === 'cidr' && !options.collapse ? expandIpv4Ranges(entries, log) : entries;
  const ipv4Lines: IpLine<number>[] = [];
  const ipv6Lines: IpLine<bigint>[] = [];
  for (const entry of source) {
    if (IPV4_TYPES.has(entry.type)) {
      const interval = tryInterval(() => ipv4Interval(entry.value), entry, log);
      if (interval !== undefined) {
        ipv4Lines.push(new IpLine(interval.first, interval.last, entry.value, entry));
      }
    } else if (IPV6_TYPES.has(entry.type)) {
      const interval = tryInterval(() => ipv6Interval(entry.value), entry, log);
      if (interval !== undefined) {
        ipv6Lines.push(new IpLine(interval.first, interval.last, entry.value, entry));
      }
    }
  }

  const lines = options.collapse
    ? [...collapseLines(ipv4Lines, IPV4, log), ...collapseLines(ipv6Lines, IPV6, log)]
    : [...sortedLines(ipv4Lines, IPV4), ...sortedLines(ipv6Lines, IPV6)];
  return { body: joinLines(lines), contentType: PLAIN_TEXT };
}

function sortedLines<T extends number | bigint>(lines: IpLine<T>[], family: Family<T>): string[] {
  lines.sort(family.compare);
  const texts: string[] = [];
  let previous: string | undefined;
  for (const line of lines) {
    if (line.text !== previous) texts.push(line.text);
    previous = line.text;
  }
  return texts;
}

/**
 * Merges overlapping and adjacent intervals and writes each merged interval
 * as its fewest CIDRs. Logs every entry that is not written as it was: a
 * range split into CIDRs, or an entry merged into a larger block.
 */
function collapseLines<T extends number | bigint>(
  lines: IpLine<T>[],
  family: Family<T>,
  log: BuildLog,
): string[] {
  lines.sort(family.compare);
  const output: string[] = [];
  let start = 0;
  while (start < lines.length) {
    const head = lines[start] as IpLine<T>;
    let last = head.last;
    let end = start + 1;
    // The lines are sorted by first address, so the merged interval grows
    // until the next line starts after last + 1.
    while (end < lines.length) {
      const next = lines[end] as IpLine<T>;
      if (next.first > plus(last, family.one)) break;
      if (next.last > last) last = next.last;
      end++;
    }

    const blocks = family.blocks(head.first, last);
    const texts = blocks.map((block) => family.formatBlock(block));
    output.push(...texts);
    logCollapsed(lines.slice(start, end), blocks, texts, last, family, log);
    start = end;
  }
  return output;
}

/**
 * Logs each line of one merged interval that the output does not list as it
 * was. `blocks` are the CIDRs of the merged interval, which ends at `mergedLast`.
 */
function logCollapsed<T extends number | bigint>(
  lines: IpLine<T>[],
  blocks: { base: T; prefix: number }[],
  texts: string[],
  mergedLast: T,
  family: Family<T>,
  log: BuildLog,
): void {
  // The blocks are contiguous, so each one ends where the next one starts.
  const lasts = blocks.map((_block, index) => {
    const next = blocks[index + 1];
    return next === undefined
      ? mergedLast
      : (((next.base as bigint) - (family.one as bigint)) as T);
  });
  let previous: string | undefined;
  for (const line of lines) {
    if (line.text === previous) continue;
    previous = line.text;

    const from = blockIndex(lasts, line.first);
    const to = blockIndex(lasts, line.last);
    const covering = texts.slice(from, to + 1);
    // Exact means the covering blocks are the line's own interval, so nothing was merged into it.
    const exact = blocks[from]?.base === line.first && lasts[to] === line.last;
    if (exact && covering.length === 1 && covering[0] === line.text) continue;
    const reason =
      exact && line.source.type === 'ipv4-range'
        ? `range written as ${covering.length} CIDRs`
        : 'merged with overlapping or adjacent entries';
    log.rewritten(line.text, covering.join(' '), reason);
  }
}

/** Returns the index of the first block whose last address is at or above `address`. */
function blockIndex<T extends number | bigint>(lasts: T[], address: T): number {
  let low = 0;
  let high = lasts.length - 1;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((lasts[mid] as T) < address) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * Renders a domain list in code unit order, which is the same on every
 * platform and locale. Entries of other types are left out.
 */
export function renderDomainEdl(
  entries: readonly ViewEntry[],
  options: DomainEdlOptions,
  _log: BuildLog,
): FormatOutput {
  const domains: string[] = [];
  for (const entry of entries) {
    if (entry.type === 'domain') domains.push(entry.value);
  }
  domains.sort();

  const lines: string[] = [];
  let previous: string | undefined;
  for (const domain of domains) {
    if (domain === previous) continue;
    previous = domain;
    if (options.wildcard !== 'wildcard') lines.push(domain);
    if (options.wildcard !== 'exact') lines.push(`*.${domain}`);
  }
  return { body: joinLines(lines), contentType: PLAIN_TEXT };
}

/** Joins lines so that each ends in `\n`. No lines give an empty body. */
export function joinLines(lines: readonly string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
