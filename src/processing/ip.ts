import ipaddr from 'ipaddr.js';

import { invalid, ok, type CanonicalResult } from './value-types.js';

/**
 * One decimal octet without leading zeros. `010` is rejected because
 * inet_aton() and some firewalls read it as octal (8) while others read it as
 * decimal (10), so the list author's intent is ambiguous.
 */
const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const IPV4_PATTERN = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const PREFIX_PATTERN = /^(?:0|[1-9][0-9]{0,2})$/;
const IPV6_CHARS = /^[0-9a-fA-F:.]+$/;
const TWO_POW_32 = 2 ** 32;

/** Returns the IPv4 address as an unsigned 32-bit number, or undefined when `text` is no dotted quad. */
export function parseIpv4(text: string): number | undefined {
  if (!IPV4_PATTERN.test(text)) return undefined;
  let result = 0;
  for (const octet of text.split('.')) result = result * 256 + Number(octet);
  return result;
}

export function formatIpv4(address: number): string {
  return [address >>> 24, (address >>> 16) & 255, (address >>> 8) & 255, address & 255].join('.');
}

function explainIpv4(text: string): string {
  if (/^[0-9.]+$/.test(text) && text.split('.').some((part) => /^0[0-9]/.test(part))) {
    return `invalid IPv4 address "${text}": an octet has a leading zero, which some systems read as octal; write it without leading zeros`;
  }
  return `invalid IPv4 address "${text}": expected four decimal octets 0-255 (dotted quad)`;
}

export function canonicalIpv4(text: string): CanonicalResult {
  const address = parseIpv4(text);
  if (address === undefined) return invalid(explainIpv4(text));
  return ok('ipv4', formatIpv4(address));
}

/** Returns the eight 16-bit groups of an IPv6 address, or an error message. */
function parseIpv6Groups(text: string): number[] | string {
  if (text.includes('%')) {
    return `invalid IPv6 address "${text}": zone ids (%...) are local to one host; remove the zone id`;
  }
  if (!IPV6_CHARS.test(text) || !text.includes(':') || !ipaddr.IPv6.isValid(text)) {
    return `invalid IPv6 address "${text}": expected RFC 4291 text form, e.g. 2001:db8::1`;
  }
  return ipaddr.IPv6.parse(text).parts.slice();
}

function formatIpv6(groups: number[]): string {
  return new ipaddr.IPv6(groups).toRFC5952String();
}

function isIpv4Mapped(groups: number[]): boolean {
  return groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
}

/**
 * Canonicalizes an IPv6 address to RFC 5952 text. An IPv4-mapped address
 * (`::ffff:1.2.3.4`) denotes an IPv4 host, so it becomes that `ipv4` value and
 * merges with sightings of the plain IPv4 address.
 */
export function canonicalIpv6(text: string): CanonicalResult {
  const groups = parseIpv6Groups(text);
  if (typeof groups === 'string') return invalid(groups);
  if (isIpv4Mapped(groups)) {
    const high = groups[6] ?? 0;
    const low = groups[7] ?? 0;
    return ok('ipv4', formatIpv4(high * 65536 + low));
  }
  return ok('ipv6', formatIpv6(groups));
}

function parsePrefix(text: string, max: number, whole: string): number | string {
  if (!PREFIX_PATTERN.test(text) || Number(text) > max) {
    return `invalid CIDR "${whole}": prefix length must be a decimal number 0-${max}`;
  }
  return Number(text);
}

/**
 * Canonicalizes an IPv4 CIDR. Host bits are cleared (`10.0.0.5/8` becomes
 * `10.0.0.0/8`) because blocklists write the network they mean with any
 * member address; `/32` becomes the single address.
 */
export function canonicalIpv4Cidr(text: string): CanonicalResult {
  const slash = text.indexOf('/');
  if (slash < 0) return invalid(`invalid CIDR "${text}": expected address/prefix`);
  const address = parseIpv4(text.slice(0, slash));
  if (address === undefined)
    return invalid(`invalid CIDR "${text}": ${explainIpv4(text.slice(0, slash))}`);
  const prefix = parsePrefix(text.slice(slash + 1), 32, text);
  if (typeof prefix === 'string') return invalid(prefix);

  const size = 2 ** (32 - prefix);
  const network = address - (address % size);
  if (prefix === 32) return ok('ipv4', formatIpv4(network));
  return ok('ipv4-cidr', `${formatIpv4(network)}/${prefix}`);
}

/** Canonicalizes an IPv6 CIDR to its network address in RFC 5952 text; `/128` becomes the address. */
export function canonicalIpv6Cidr(text: string): CanonicalResult {
  const slash = text.indexOf('/');
  if (slash < 0) return invalid(`invalid CIDR "${text}": expected address/prefix`);
  const groups = parseIpv6Groups(text.slice(0, slash));
  if (typeof groups === 'string') return invalid(`invalid CIDR "${text}": ${groups}`);
  const prefix = parsePrefix(text.slice(slash + 1), 128, text);
  if (typeof prefix === 'string') return invalid(prefix);

  const network = groups.map((group, index) => {
    const keep = Math.min(16, Math.max(0, prefix - index * 16));
    const mask = keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
    return group & mask;
  });
  if (prefix === 128) return ok('ipv6', formatIpv6(network));
  return ok('ipv6-cidr', `${formatIpv6(network)}/${prefix}`);
}

/** An IPv4 network as base address (unsigned 32-bit) and prefix length. */
export interface Ipv4Block {
  base: number;
  prefix: number;
}

/** Splits the inclusive address range [start, end] into the fewest CIDR blocks, in address order. */
export function ipv4RangeToBlocks(start: number, end: number): Ipv4Block[] {
  const blocks: Ipv4Block[] = [];
  let current = start;
  while (current <= end) {
    // The largest aligned block starting at `current`, shrunk until it fits the range.
    let size = 1;
    while (size < TWO_POW_32 && current % (size * 2) === 0) size *= 2;
    while (current + size - 1 > end) size /= 2;
    blocks.push({ base: current, prefix: 32 - Math.log2(size) });
    current += size;
  }
  return blocks;
}

export function formatIpv4Block(block: Ipv4Block): string {
  return `${formatIpv4(block.base)}/${block.prefix}`;
}

/** Returns the CIDRs that exactly cover a canonical `ipv4-range` value `a-b`. */
export function ipv4RangeToCidrs(range: string): string[] {
  const [first, last] = range.split('-').map((part) => parseIpv4(part.trim()));
  if (first === undefined || last === undefined) {
    throw new Error(`invalid IPv4 range "${range}": expected first-last dotted quads`);
  }
  return ipv4RangeToBlocks(first, last).map(formatIpv4Block);
}

/**
 * Canonicalizes an IPv4 range `first-last` (spaces around the dash allowed)
 * to `first-last` without spaces. A range of one address becomes `ipv4`, a
 * range that is exactly one CIDR becomes `ipv4-cidr`.
 */
export function canonicalIpv4Range(text: string): CanonicalResult {
  const parts = text.split('-');
  if (parts.length !== 2) return invalid(`invalid IPv4 range "${text}": expected first-last`);
  const firstText = (parts[0] ?? '').trim();
  const lastText = (parts[1] ?? '').trim();
  const first = parseIpv4(firstText);
  if (first === undefined)
    return invalid(`invalid IPv4 range "${text}": ${explainIpv4(firstText)}`);
  const last = parseIpv4(lastText);
  if (last === undefined) return invalid(`invalid IPv4 range "${text}": ${explainIpv4(lastText)}`);
  if (first > last) {
    return invalid(`invalid IPv4 range "${text}": the first address is above the last; swap them`);
  }

  if (first === last) return ok('ipv4', formatIpv4(first));
  const blocks = ipv4RangeToBlocks(first, last);
  const only = blocks.length === 1 ? blocks[0] : undefined;
  if (only) return ok('ipv4-cidr', formatIpv4Block(only));
  return ok('ipv4-range', `${formatIpv4(first)}-${formatIpv4(last)}`);
}
