/**
 * Sanity guards: rules that reject values no blocklist should publish,
 * whatever a source says, because blocking them would cut off whole
 * networks, whole registries of domains, or the operator's own services.
 */
import { parse as parseDomain } from 'tldts';

import { canonicalize, detectValueType } from './canonical.js';
import {
  IntervalSet,
  ipInterval,
  ipv4Interval,
  ipv6Interval,
  ipv6RangeToBlocks,
  widestIpv4Prefix,
  type Ipv4Interval,
  type Ipv6Interval,
} from './ip-intervals.js';
import { hostInterval, urlHost } from './url.js';
import type { ValueType } from './value-types.js';

/** The names of the guard rules, as run reports and metrics count them. */
export const GUARD_RULES = [
  'any-address',
  'prefix-too-wide',
  'public-suffix',
  'wildcard',
  'protected',
] as const;
export type GuardRule = (typeof GUARD_RULES)[number];

export interface GuardSettings {
  /** IPv4 networks wider than this prefix length are rejected. Default 8. */
  minPrefixIpv4: number;
  /** IPv6 networks wider than this prefix length are rejected. Default 32. */
  minPrefixIpv6: number;
  /** Whether domains that are a public suffix (`co.uk`, `github.io`) are rejected. Default true. */
  publicSuffixes: boolean;
  /**
   * The operator's own addresses, networks, ranges and domains (their
   * networks, mail and DNS servers). A value that overlaps one of them, or a
   * domain that is one of them, a subdomain or a parent, is rejected.
   */
  protected: readonly string[];
}

export const DEFAULT_GUARD_SETTINGS: GuardSettings = {
  minPrefixIpv4: 8,
  minPrefixIpv6: 32,
  publicSuffixes: true,
  protected: [],
};

/** Checks values against the guard rules of one collection. */
export class Guards {
  private readonly protectedIpv4: IntervalSet<number>;
  private readonly protectedIpv6: IntervalSet<bigint>;
  private readonly protectedDomains: Set<string>;

  constructor(private readonly settings: GuardSettings) {
    const ipv4: Ipv4Interval[] = [];
    const ipv6: Ipv6Interval[] = [];
    this.protectedDomains = new Set();
    for (const entry of settings.protected) {
      const parsed = canonicalize(detectValueType(entry.trim()), entry);
      if (parsed.ok && parsed.type === 'domain') {
        this.protectedDomains.add(parsed.value);
      } else if (parsed.ok && parsed.type.startsWith('ipv4')) {
        ipv4.push(ipv4Interval(parsed.value));
      } else if (parsed.ok && parsed.type.startsWith('ipv6')) {
        ipv6.push(ipv6Interval(parsed.value));
      } else {
        throw new Error(
          `invalid protected entry ${JSON.stringify(entry)}: expected an IP address, CIDR, range or domain`,
        );
      }
    }
    this.protectedIpv4 = new IntervalSet(ipv4, 1);
    this.protectedIpv6 = new IntervalSet(ipv6, 1n);
  }

  /** Returns the rule that rejects a canonical value, or undefined when every rule passes. */
  check(type: ValueType, value: string): GuardRule | undefined {
    if (value.includes('*')) return 'wildcard';
    switch (type) {
      case 'ipv4':
      case 'ipv4-cidr':
      case 'ipv4-range':
      case 'ipv6':
      case 'ipv6-cidr':
        return this.checkIp(type, value);
      case 'domain':
        return this.checkDomain(value);
      case 'url':
        return this.checkUrl(value);
      default:
        return undefined;
    }
  }

  private checkIp(type: ValueType, value: string): GuardRule | undefined {
    const interval = ipInterval(type, value);
    if (interval === undefined) return undefined;
    if (interval.family === 4) {
      if (interval.first === 0 && interval.last === 2 ** 32 - 1) return 'any-address';
      if (type !== 'ipv4' && widestIpv4Prefix(interval) < this.settings.minPrefixIpv4) {
        return 'prefix-too-wide';
      }
      if (this.protectedIpv4.overlaps(interval.first, interval.last)) return 'protected';
      return undefined;
    }
    if (interval.first === 0n && interval.last === (1n << 128n) - 1n) return 'any-address';
    if (type === 'ipv6-cidr') {
      const widest = Math.min(
        ...ipv6RangeToBlocks(interval.first, interval.last).map((block) => block.prefix),
      );
      if (widest < this.settings.minPrefixIpv6) return 'prefix-too-wide';
    }
    if (this.protectedIpv6.overlaps(interval.first, interval.last)) return 'protected';
    return undefined;
  }

  private checkDomain(domain: string): GuardRule | undefined {
    if (this.settings.publicSuffixes && isPublicSuffix(domain)) return 'public-suffix';
    if (this.isProtectedDomain(domain)) return 'protected';
    return undefined;
  }

  private checkUrl(url: string): GuardRule | undefined {
    const host = urlHost(url);
    if (host === undefined) return undefined;
    const address = hostInterval(host);
    if (address?.family === 4) {
      return this.protectedIpv4.overlaps(address.first, address.last) ? 'protected' : undefined;
    }
    if (address?.family === 6) {
      return this.protectedIpv6.overlaps(address.first, address.last) ? 'protected' : undefined;
    }
    return this.isProtectedDomain(host) ? 'protected' : undefined;
  }

  /** True when `domain` is a protected domain, one of its subdomains, or one of its parents. */
  private isProtectedDomain(domain: string): boolean {
    if (this.protectedDomains.size === 0) return false;
    for (let name = domain; ;) {
      if (this.protectedDomains.has(name)) return true;
      const dot = name.indexOf('.');
      if (dot < 0) break;
      name = name.slice(dot + 1);
    }
    for (const guarded of this.protectedDomains) {
      if (guarded.endsWith(`.${domain}`)) return true;
    }
    return false;
  }
}

/**
 * True when `domain` is a public suffix of the Public Suffix List, ICANN or
 * private section (`co.uk`, `github.io`), or a name under no known suffix
 * with a single label left. The list is the snapshot that the `tldts`
 * package ships.
 */
export function isPublicSuffix(domain: string): boolean {
  const parsed = parseDomain(domain, { allowPrivateDomains: true });
  return parsed.domain === null || parsed.publicSuffix === domain;
}
