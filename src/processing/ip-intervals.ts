/**
 * IP values as inclusive address intervals, and sorted interval sets for
 * containment and subtraction. IPv4 addresses are numbers (0 to 2^32-1) and
 * IPv6 addresses are bigints (0 to 2^128-1), so the IPv4 path, which carries
 * most feed volume, stays on plain numbers.
 */
import ipaddr from 'ipaddr.js';

import { formatIpv4, ipv4RangeToBlocks, parseIpv4 } from './ip.js';
import type { ValueType } from './value-types.js';

export interface Ipv4Interval {
  first: number;
  last: number;
}

export interface Ipv6Interval {
  first: bigint;
  last: bigint;
}

export type IpInterval =
  | { family: 4; first: number; last: number }
  | {
      family: 6;
      first: bigint;
      last: bigint;
    };

const IPV6_BITS = 128n;
const IPV6_MAX = (1n << IPV6_BITS) - 1n;

export function parseIpv6BigInt(text: string): bigint {
  let result = 0n;
  for (const part of ipaddr.IPv6.parse(text).parts) result = (result << 16n) | BigInt(part);
  return result;
}

export function formatIpv6BigInt(address: bigint): string {
  const parts: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n)
    parts.push(Number((address >> shift) & 0xffffn));
  return new ipaddr.IPv6(parts).toRFC5952String();
}

/**
 * Returns the interval of a canonical IP value (`ipv4`, `ipv4-cidr`,
 * `ipv4-range`, `ipv6`, `ipv6-cidr`), or undefined for other types.
 * Throws when `value` is not canonical text of its type.
 */
export function ipInterval(type: ValueType | string, value: string): IpInterval | undefined {
  switch (type) {
    case 'ipv4':
    case 'ipv4-cidr':
    case 'ipv4-range': {
      const interval = ipv4Interval(value);
      return { family: 4, ...interval };
    }
    case 'ipv6':
    case 'ipv6-cidr':
      return { family: 6, ...ipv6Interval(value) };
    default:
      return undefined;
  }
}

/** Returns the interval of `a`, `a/n` or `a-b` in dotted-quad text. */
export function ipv4Interval(value: string): Ipv4Interval {
  const dash = value.indexOf('-');
  if (dash > 0) {
    return {
      first: mustIpv4(value.slice(0, dash), value),
      last: mustIpv4(value.slice(dash + 1), value),
    };
  }
  const slash = value.indexOf('/');
  if (slash > 0) {
    const base = mustIpv4(value.slice(0, slash), value);
    const prefix = Number(value.slice(slash + 1));
    return { first: base, last: base + 2 ** (32 - prefix) - 1 };
  }
  const address = mustIpv4(value, value);
  return { first: address, last: address };
}

/** Returns the interval of `a` or `a/n` in IPv6 text. */
export function ipv6Interval(value: string): Ipv6Interval {
  const slash = value.indexOf('/');
  if (slash > 0) {
    const base = parseIpv6BigInt(value.slice(0, slash));
    const hostBits = IPV6_BITS - BigInt(Number(value.slice(slash + 1)));
    return { first: base, last: base | ((1n << hostBits) - 1n) };
  }
  const address = parseIpv6BigInt(value);
  return { first: address, last: address };
}

function mustIpv4(text: string, whole: string): number {
  const address = parseIpv4(text);
  if (address === undefined) throw new Error(`invalid IPv4 value "${whole}"`);
  return address;
}

/** Returns the prefix length of the widest CIDR block in the interval's exact CIDR cover. */
export function widestIpv4Prefix(interval: Ipv4Interval): number {
  let widest = 32;
  for (const block of ipv4RangeToBlocks(interval.first, interval.last)) {
    widest = Math.min(widest, block.prefix);
  }
  return widest;
}

/** Splits an IPv6 interval into the fewest CIDR blocks, in address order. */
export function ipv6RangeToBlocks(first: bigint, last: bigint): { base: bigint; prefix: number }[] {
  const blocks: { base: bigint; prefix: number }[] = [];
  let current = first;
  while (current <= last) {
    let hostBits = 0n;
    while (hostBits < IPV6_BITS && (current & ((1n << (hostBits + 1n)) - 1n)) === 0n) hostBits++;
    while (current + (1n << hostBits) - 1n > last) hostBits--;
    blocks.push({ base: current, prefix: Number(IPV6_BITS - hostBits) });
    if (current + (1n << hostBits) - 1n >= IPV6_MAX) break;
    current += 1n << hostBits;
  }
  return blocks;
}

/** A canonical value with its type, as the remainder of a split produces them. */
export interface TypedValue {
  type: ValueType;
  value: string;
}

/** Writes an IPv4 interval as canonical values: one address, else CIDR blocks. */
export function ipv4IntervalToValues(interval: Ipv4Interval): TypedValue[] {
  return ipv4RangeToBlocks(interval.first, interval.last).map((block) =>
    block.prefix === 32
      ? { type: 'ipv4', value: formatIpv4(block.base) }
      : { type: 'ipv4-cidr', value: `${formatIpv4(block.base)}/${block.prefix}` },
  );
}

/** Writes an IPv6 interval as canonical values: one address, else CIDR blocks. */
export function ipv6IntervalToValues(interval: Ipv6Interval): TypedValue[] {
  return ipv6RangeToBlocks(interval.first, interval.last).map((block) =>
    block.prefix === 128
      ? { type: 'ipv6', value: formatIpv6BigInt(block.base) }
      : { type: 'ipv6-cidr', value: `${formatIpv6BigInt(block.base)}/${block.prefix}` },
  );
}

/**
 * A set of addresses as sorted, disjoint, non-adjacent intervals. Lookups
 * are binary searches, so an allow-list of 60,000 resolvers costs about 16
 * comparisons per value.
 */
export class IntervalSet<T extends number | bigint> {
  private readonly firsts: T[] = [];
  private readonly lasts: T[] = [];

  constructor(intervals: { first: T; last: T }[], one: T) {
    const sorted = [...intervals].sort((a, b) =>
      a.first < b.first ? -1 : a.first > b.first ? 1 : 0,
    );
    for (const interval of sorted) {
      const top = this.lasts.length - 1;
      const previousLast = this.lasts[top];
      // Merge overlapping and adjacent intervals: adjacency means last + 1 === first.
      if (
        previousLast !== undefined &&
        (previousLast as bigint) + (one as bigint) >= (interval.first as bigint)
      ) {
        if (interval.last > previousLast) this.lasts[top] = interval.last;
        continue;
      }
      this.firsts.push(interval.first);
      this.lasts.push(interval.last);
    }
  }

  get size(): number {
    return this.firsts.length;
  }

  /** Index of the first interval whose last address is at or above `address`. */
  private lowerBound(address: T): number {
    let low = 0;
    let high = this.lasts.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.lasts[mid] as T) < address) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Returns true when any address of [first, last] is in the set. */
  overlaps(first: T, last: T): boolean {
    const index = this.lowerBound(first);
    return index < this.firsts.length && (this.firsts[index] as T) <= last;
  }

  /** Returns true when every address of [first, last] is in the set. */
  covers(first: T, last: T): boolean {
    const index = this.lowerBound(first);
    return (
      index < this.firsts.length &&
      (this.firsts[index] as T) <= first &&
      (this.lasts[index] as T) >= last
    );
  }

  /** Returns the parts of [first, last] that are not in the set, in address order. */
  subtract(first: T, last: T, one: T): { first: T; last: T }[] {
    const rest: { first: T; last: T }[] = [];
    let cursor = first;
    let index = this.lowerBound(first);
    while (index < this.firsts.length && (this.firsts[index] as T) <= last) {
      const blockFirst = this.firsts[index] as T;
      const blockLast = this.lasts[index] as T;
      if (blockFirst > cursor) {
        rest.push({ first: cursor, last: ((blockFirst as bigint) - (one as bigint)) as T });
      }
      if (blockLast >= last) return rest;
      cursor = ((blockLast as bigint) + (one as bigint)) as T;
      index++;
    }
    rest.push({ first: cursor, last });
    return rest;
  }
}
