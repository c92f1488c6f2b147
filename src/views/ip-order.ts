/** Numeric order of the IP entries of an EDL: IPv4 first, then IPv6, by first address then last. */
import ipaddr from 'ipaddr.js';

import { parseIpv4 } from '../processing/index.js';
import type { IndicatorEntry } from '../store/index.js';

interface IpSortKey {
  /** 4 for IPv4, 6 for IPv6. */
  family: number;
  first: bigint;
  last: bigint;
  text: string;
}

function ipv6ToBigInt(text: string): bigint {
  let result = 0n;
  for (const byte of ipaddr.IPv6.parse(text).toByteArray()) {
    result = (result << 8n) | BigInt(byte);
  }
  return result;
}

/** Returns the first and last address of `a`, `a/n` or `a-b`, as numbers of `bits` width. */
function ipBounds(value: string, bits: number, parse: (text: string) => bigint): [bigint, bigint] {
  const dash = value.indexOf('-');
  if (dash > 0) {
    return [parse(value.slice(0, dash)), parse(value.slice(dash + 1))];
  }
  const slash = value.indexOf('/');
  if (slash > 0) {
    const base = parse(value.slice(0, slash));
    const hostBits = BigInt(bits - Number(value.slice(slash + 1)));
    return [base, base | ((1n << hostBits) - 1n)];
  }
  const address = parse(value);
  return [address, address];
}

function parseIpv4BigInt(text: string): bigint {
  const address = parseIpv4(text);
  if (address === undefined) {
    throw new Error(`Stored IPv4 value ${JSON.stringify(text)} is not a dotted quad.`);
  }
  return BigInt(address);
}

function sortKey(entry: IndicatorEntry): IpSortKey {
  const isIpv6 = entry.valueType.startsWith('ipv6');
  const [first, last] = isIpv6
    ? ipBounds(entry.value, 128, ipv6ToBigInt)
    : ipBounds(entry.value, 32, parseIpv4BigInt);
  return { family: isIpv6 ? 6 : 4, first, last, text: entry.value };
}

function compareKeys(a: IpSortKey, b: IpSortKey): number {
  if (a.family !== b.family) {
    return a.family - b.family;
  }
  if (a.first !== b.first) {
    return a.first < b.first ? -1 : 1;
  }
  if (a.last !== b.last) {
    return a.last < b.last ? -1 : 1;
  }
  if (a.text === b.text) {
    return 0;
  }
  return a.text < b.text ? -1 : 1;
}

/** Returns the values of IP entries (addresses, CIDRs, ranges) in EDL order. */
export function sortIpValues(entries: IndicatorEntry[]): string[] {
  return entries
    .map(sortKey)
    .sort(compareKeys)
    .map((key) => key.text);
}
