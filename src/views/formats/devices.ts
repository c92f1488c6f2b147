/**
 * Device formats: the list files that firewalls, gateways and DNS servers
 * fetch, each written to its vendor's documented rules. An entry that the
 * device cannot take, or that is over a documented limit, is dropped and
 * logged. An entry of a type outside the list (a URL given to an IP list) is
 * skipped silently.
 */
import {
  formatIpv4,
  ipInterval,
  ipv4RangeToCidrs,
  type ValueType,
} from '../../processing/index.js';
import { PLAIN_TEXT, type BuildLog, type FormatOutput, type ViewEntry } from '../model.js';

import { quoteCsvField } from './csv.js';

const IP_TYPES: readonly ValueType[] = ['ipv4', 'ipv4-cidr', 'ipv4-range', 'ipv6', 'ipv6-cidr'];

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

function joinLines(lines: readonly string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/**
 * Counts the lines and bytes of a list file against a device's limits.
 * Bytes are UTF-8 and include the `\n` of each line.
 */
class ListBudget {
  private lineCount = 0;
  private byteCount = 0;

  constructor(
    private readonly maxLines: number,
    private readonly maxBytes: number,
  ) {}

  /** Takes all of `lines` when they fit in what is left, else none. */
  take(lines: readonly string[]): boolean {
    let bytes = 0;
    for (const line of lines) bytes += utf8Length(line) + 1;
    if (this.lineCount + lines.length > this.maxLines || this.byteCount + bytes > this.maxBytes) {
      return false;
    }
    this.lineCount += lines.length;
    this.byteCount += bytes;
    return true;
  }
}

function checkPositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`invalid ${name} ${String(value)}: expected a whole number of 1 or more`);
  }
}

// ---------------------------------------------------------------------------
// FortiGate external threat feed

export type FortigateList = 'ip' | 'domain' | 'url';

export interface FortigateOptions {
  /** Threat feed type: `ip` (IP Address), `domain` (Domain Name) or `url` (FortiGuard Category). */
  list: FortigateList;
  /** Also write `*.name` after each domain, so the feed matches its subdomains. Domain lists only. */
  wildcardSubdomains?: boolean;
  /** Maximum lines per file. Default `FORTIGATE_LIMITS.maxEntries`. */
  maxEntries?: number;
  /** Maximum file size in bytes. Default `FORTIGATE_LIMITS.maxBytes`. */
  maxBytes?: number;
}

/**
 * Per-file limits of a FortiGate threat feed before FortiOS 7.4.4: 10 MB or
 * 128 × 1024 lines, whichever comes first, and 4K characters per line
 * (Fortinet community article 225335). From 7.4.4 the entry limit is set per
 * model range and shared by all feeds of the device ("External resource entry
 * limit enhancements 7.4.4"), so set `maxEntries` to this feed's share there.
 */
export const FORTIGATE_LIMITS = {
  maxEntries: 131_072,
  maxBytes: 10 * 1024 * 1024,
  maxLineBytes: 4096,
} as const;

const FORTIGATE_TYPES: Record<FortigateList, readonly ValueType[]> = {
  ip: IP_TYPES,
  domain: ['domain'],
  url: ['url'],
};

/**
 * Renders a FortiGate external threat feed: one address, CIDR or `a-b` range
 * per line for `ip`, one domain (and `*.domain`) for `domain`, one URL for
 * `url`. URLs keep their scheme, as in Fortinet's own category feed examples
 * (`https://example.com/url`). Entries past the file limits are dropped.
 */
export function renderFortigate(
  entries: readonly ViewEntry[],
  options: FortigateOptions,
  log: BuildLog,
): FormatOutput {
  const types = FORTIGATE_TYPES[options.list];
  if (types === undefined) {
    throw new Error(`invalid FortiGate list "${String(options.list)}": expected ip, domain or url`);
  }
  const maxEntries = options.maxEntries ?? FORTIGATE_LIMITS.maxEntries;
  const maxBytes = options.maxBytes ?? FORTIGATE_LIMITS.maxBytes;
  checkPositiveInteger('FortiGate maxEntries', maxEntries);
  checkPositiveInteger('FortiGate maxBytes', maxBytes);
  const wildcard = options.list === 'domain' && options.wildcardSubdomains === true;

  const budget = new ListBudget(maxEntries, maxBytes);
  const lines: string[] = [];
  for (const entry of entries) {
    if (!types.includes(entry.type)) continue;
    const entryLines = wildcard ? [entry.value, `*.${entry.value}`] : [entry.value];
    if (entryLines.some((line) => utf8Length(line) > FORTIGATE_LIMITS.maxLineBytes)) {
      log.dropped(
        entry.value,
        `longer than the FortiGate line limit of ${FORTIGATE_LIMITS.maxLineBytes} bytes`,
      );
      continue;
    }
    if (!budget.take(entryLines)) {
      log.dropped(
        entry.value,
        `FortiGate file limit reached (${maxEntries} lines or ${maxBytes} bytes)`,
      );
      continue;
    }
    lines.push(...entryLines);
  }
  return { body: joinLines(lines), contentType: PLAIN_TEXT };
}

// ---------------------------------------------------------------------------
// Check Point custom intelligence feed (CSV in the Check Point format)

export type CheckpointLevel = 'low' | 'medium' | 'high';
export type CheckpointSeverity = CheckpointLevel | 'critical';
/** `AV` is the Anti-Virus blade, `AB` the Anti-Bot blade. */
export type CheckpointProduct = 'AV' | 'AB';

export interface CheckpointCsvOptions {
  /** Severity of every record. Default the confidence level of the entry. */
  severity?: CheckpointSeverity;
  /** Blade of every record. Default `AV` for file hashes and `AB` for network values. */
  product?: CheckpointProduct;
}

export const CHECKPOINT_HEADER = '#Uniq-Name,Value,Type,Confidence,Severity,Product,Comment';

const CHECKPOINT_TYPES: Partial<Record<ValueType, string>> = {
  ipv4: 'IP',
  'ipv4-range': 'IP Range',
  'ipv4-cidr': 'IP Range',
  domain: 'Domain',
  url: 'URL',
  md5: 'MD5',
  sha1: 'SHA1',
  sha256: 'SHA256',
};

/**
 * Maps confidence 0-100 onto low, medium and high with the "None/Low/Med/High"
 * scale of STIX 2.1 confidence: 70-100 high, 30-69 medium, and below 30 low.
 */
export function checkpointLevel(confidence: number): CheckpointLevel {
  if (confidence >= 70) return 'high';
  if (confidence >= 30) return 'medium';
  return 'low';
}

function checkpointComment(entry: ViewEntry): string {
  const parts = [`sources: ${entry.sources.join('; ')}`];
  if (entry.labels.length > 0) parts.push(`labels: ${entry.labels.join('; ')}`);
  parts.push(`tlp: ${entry.tlp}`);
  return parts.join(' / ');
}

/**
 * Renders the Check Point CSV indicator format: a `#` header line, then
 * `Uniq-Name,Value,Type,Confidence,Severity,Product,Comment` records ending
 * in `\n` (Check Point sk132193). Check Point observables are IPv4 only, so
 * an IPv4 CIDR is written as its `first-last` IP Range and IPv6 values are
 * dropped. The record name is the STIX indicator id, which is unique per
 * value.
 */
export function renderCheckpointCsv(
  entries: readonly ViewEntry[],
  options: CheckpointCsvOptions,
  log: BuildLog,
): FormatOutput {
  const lines: string[] = [CHECKPOINT_HEADER];
  for (const entry of entries) {
    if (entry.type === 'ipv6' || entry.type === 'ipv6-cidr') {
      log.dropped(entry.value, 'Check Point IP observables are IPv4 only');
      continue;
    }
    const type = CHECKPOINT_TYPES[entry.type];
    if (type === undefined) continue;

    let value = entry.value;
    if (entry.type === 'ipv4-cidr') {
      const interval = ipInterval(entry.type, entry.value);
      if (interval?.family !== 4) continue;
      value = `${formatIpv4(interval.first)}-${formatIpv4(interval.last)}`;
      log.rewritten(entry.value, value, 'CIDR written as an IP Range');
    }

    const isHash = entry.type === 'md5' || entry.type === 'sha1' || entry.type === 'sha256';
    const confidence = checkpointLevel(entry.confidence);
    const record = [
      entry.indicatorId,
      value,
      type,
      confidence,
      options.severity ?? confidence,
      options.product ?? (isHash ? 'AV' : 'AB'),
      checkpointComment(entry),
    ];
    lines.push(record.map(quoteCsvField).join(','));
  }
  return { body: joinLines(lines), contentType: 'text/csv; charset=utf-8; header=present' };
}

// ---------------------------------------------------------------------------
// Cisco Secure Firewall (FMC) Security Intelligence list or feed

/** `network` holds IP addresses and blocks, `dns` domain names, `url` URLs. */
export type CiscoSiList = 'network' | 'dns' | 'url';

export interface CiscoSiOptions {
  list: CiscoSiList;
  /** Comment lines written first, each after `# `. */
  comments?: readonly string[];
  /** Maximum file size in bytes. Default `CISCO_SI_MAX_BYTES`. */
  maxBytes?: number;
}

/**
 * "Each list or feed must be a simple text file no larger than 500MB"
 * (Secure Firewall Management Center, "Custom Lists and Feeds:
 * Requirements"). NOTE: the page does not say whether MB is 10^6 or 2^20
 * bytes, so the smaller reading is used.
 */
export const CISCO_SI_MAX_BYTES = 500_000_000;

const CISCO_TYPES: Record<CiscoSiList, readonly ValueType[]> = {
  network: IP_TYPES,
  dns: ['domain'],
  url: ['url'],
};

/** Returns the lines of one Cisco network list entry, or a reason to drop it. */
function ciscoNetworkLines(entry: ViewEntry, log: BuildLog): string[] | string {
  if (entry.value.endsWith('/0')) {
    return 'Cisco Security Intelligence rejects a /0 netmask';
  }
  if (entry.type !== 'ipv4-range') return [entry.value];
  // The list takes addresses and address blocks only, so a range becomes its exact CIDR cover.
  const cidrs = ipv4RangeToCidrs(entry.value);
  log.rewritten(entry.value, cidrs.join(' '), 'range written as CIDR blocks');
  return cidrs;
}

/**
 * Renders a Cisco Security Intelligence list: one IP address or CIDR, one
 * domain, or one URL per line, with `#` comment lines. IPv4 ranges become
 * CIDR blocks. The system matches subdomains of a listed domain by itself,
 * so no wildcard lines are written.
 */
export function renderCiscoSi(
  entries: readonly ViewEntry[],
  options: CiscoSiOptions,
  log: BuildLog,
): FormatOutput {
  const types = CISCO_TYPES[options.list];
  if (types === undefined) {
    throw new Error(`invalid Cisco list "${String(options.list)}": expected network, dns or url`);
  }
  const maxBytes = options.maxBytes ?? CISCO_SI_MAX_BYTES;
  checkPositiveInteger('Cisco maxBytes', maxBytes);

  const budget = new ListBudget(Number.POSITIVE_INFINITY, maxBytes);
  const lines: string[] = [];
  const comments = (options.comments ?? []).map(
    (comment) => `# ${comment.replace(/\r\n|[\r\n]/g, ' ')}`,
  );
  if (comments.length > 0 && budget.take(comments)) lines.push(...comments);

  for (const entry of entries) {
    if (!types.includes(entry.type)) continue;
    const entryLines = options.list === 'network' ? ciscoNetworkLines(entry, log) : [entry.value];
    if (typeof entryLines === 'string') {
      log.dropped(entry.value, entryLines);
      continue;
    }
    if (!budget.take(entryLines)) {
      log.dropped(entry.value, `Cisco file size limit of ${maxBytes} bytes reached`);
      continue;
    }
    lines.push(...entryLines);
  }
  return { body: joinLines(lines), contentType: PLAIN_TEXT };
}

// ---------------------------------------------------------------------------
// AWS WAF IP set

export type AwsWafScope = 'REGIONAL' | 'CLOUDFRONT';
export type AwsWafIpVersion = 'IPV4' | 'IPV6';

export interface AwsWafIpSetOptions {
  /** IP set name: 1-128 letters, digits, `_` or `-`. */
  name: string;
  scope: AwsWafScope;
  /** Address family of the set; entries of the other family are left out. */
  ipAddressVersion: AwsWafIpVersion;
  /** Optional description of the set. */
  description?: string;
  /** Maximum addresses per set. Default `AWS_WAF_MAX_ADDRESSES`. */
  maxAddresses?: number;
}

/**
 * "An IP set can hold up to 10,000 IP addresses or IP address ranges", and
 * AWS WAF takes every CIDR prefix except /0 (AWS WAF Developer Guide, "IP set
 * match rule statement").
 */
export const AWS_WAF_MAX_ADDRESSES = 10_000;

const AWS_WAF_NAME = /^[\w-]{1,128}$/;

/** Returns the CIDRs of one entry for an AWS WAF set of `version`, or undefined for the other family. */
function awsWafCidrs(
  entry: ViewEntry,
  version: AwsWafIpVersion,
  log: BuildLog,
): string[] | undefined {
  if (version === 'IPV4') {
    if (entry.type === 'ipv4') return [`${entry.value}/32`];
    if (entry.type === 'ipv4-cidr') return [entry.value];
    if (entry.type === 'ipv4-range') {
      const cidrs = ipv4RangeToCidrs(entry.value);
      log.rewritten(entry.value, cidrs.join(' '), 'range written as CIDR blocks');
      return cidrs;
    }
    return undefined;
  }
  if (entry.type === 'ipv6') return [`${entry.value}/128`];
  if (entry.type === 'ipv6-cidr') return [entry.value];
  return undefined;
}

/**
 * Renders an AWS WAF (v2) IP set as the JSON body of CreateIPSet:
 * `{ Name, Scope, IPAddressVersion, Addresses }`. Single addresses become /32
 * or /128 CIDRs without a log event, because the address is unchanged.
 * Ranges become their exact CIDR cover, duplicates are written once, and
 * addresses past the set limit are dropped.
 */
export function renderAwsWafIpSet(
  entries: readonly ViewEntry[],
  options: AwsWafIpSetOptions,
  log: BuildLog,
): FormatOutput {
  if (!AWS_WAF_NAME.test(options.name)) {
    throw new Error(
      `invalid AWS WAF IP set name "${options.name}": use 1-128 letters, digits, "_" or "-"`,
    );
  }
  if (options.scope !== 'REGIONAL' && options.scope !== 'CLOUDFRONT') {
    throw new Error(
      `invalid AWS WAF scope "${String(options.scope)}": expected REGIONAL or CLOUDFRONT`,
    );
  }
  if (options.ipAddressVersion !== 'IPV4' && options.ipAddressVersion !== 'IPV6') {
    throw new Error(
      `invalid AWS WAF IP address version "${String(options.ipAddressVersion)}": expected IPV4 or IPV6`,
    );
  }
  const maxAddresses = options.maxAddresses ?? AWS_WAF_MAX_ADDRESSES;
  checkPositiveInteger('AWS WAF maxAddresses', maxAddresses);

  const addresses = new Set<string>();
  for (const entry of entries) {
    const cidrs = awsWafCidrs(entry, options.ipAddressVersion, log);
    if (cidrs === undefined) continue;
    if (cidrs.some((cidr) => cidr.endsWith('/0'))) {
      log.dropped(entry.value, 'AWS WAF rejects a /0 prefix');
      continue;
    }
    const added = cidrs.filter((cidr) => !addresses.has(cidr));
    if (addresses.size + added.length > maxAddresses) {
      log.dropped(entry.value, `AWS WAF limit of ${maxAddresses} addresses per IP set reached`);
      continue;
    }
    for (const cidr of added) addresses.add(cidr);
  }

  const document: Record<string, unknown> = {
    Name: options.name,
    Scope: options.scope,
    IPAddressVersion: options.ipAddressVersion,
  };
  if (options.description !== undefined) document['Description'] = options.description;
  document['Addresses'] = [...addresses];
  return { body: `${JSON.stringify(document, null, 2)}\n`, contentType: 'application/json' };
}

// ---------------------------------------------------------------------------
// DNS response policy zone (RPZ)

export interface RpzOptions {
  /** Zone name, e.g. `rpz.example.net`. It is written as `$ORIGIN`, so owner names are relative to it. */
  zone: string;
  /**
   * SOA serial, 0 to 2^32-1, for example derived from the render time. It must
   * grow between renders, or secondary servers keep their old copy.
   */
  serial: number;
  /** TTL of the records in seconds, written as `$TTL`. Default 300. */
  ttl?: number;
  /** Also write `*.name CNAME .`, so subdomains are blocked too. Default true. */
  wildcard?: boolean;
  /** Name server of the SOA and NS records. Default `localhost.`. */
  nameServer?: string;
  /** Mailbox of the SOA record in domain form. Default `hostmaster.localhost.`. */
  hostmaster?: string;
}

/** SOA refresh, retry, expire and negative-caching TTL in seconds. */
const RPZ_SOA_TIMERS = '3600 600 604800 300';
const MAX_UINT32 = 4_294_967_295;
/** A domain name is at most 255 octets on the wire, which is 253 characters of text without the final dot. */
const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
const DNS_NAME =
  /^(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?\.?$/i;
/** Owner names are written unquoted, so only characters with no meaning in a zone file pass. */
const RPZ_OWNER = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

function checkDnsName(what: string, name: string): void {
  const labels = name.replace(/\.$/, '').split('.');
  if (!DNS_NAME.test(name) || labels.some((label) => label.length > MAX_LABEL_LENGTH)) {
    throw new Error(
      `invalid RPZ ${what} "${name}": expected a domain name such as rpz.example.net`,
    );
  }
}

function absolute(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

/**
 * Renders a DNS response policy zone for domains: `$TTL`, `$ORIGIN`, SOA and
 * NS records, then `name CNAME .` (answer NXDOMAIN) per domain and, with
 * `wildcard`, `*.name CNAME .` for its subdomains. A domain whose name under
 * the zone would pass 253 characters is dropped.
 */
export function renderRpz(
  entries: readonly ViewEntry[],
  options: RpzOptions,
  log: BuildLog,
): FormatOutput {
  checkDnsName('zone', options.zone);
  const nameServer = options.nameServer ?? 'localhost.';
  const hostmaster = options.hostmaster ?? 'hostmaster.localhost.';
  checkDnsName('name server', nameServer);
  checkDnsName('hostmaster', hostmaster);
  if (!Number.isInteger(options.serial) || options.serial < 0 || options.serial > MAX_UINT32) {
    throw new Error(
      `invalid RPZ serial ${String(options.serial)}: expected a whole number 0-${MAX_UINT32}`,
    );
  }
  const ttl = options.ttl ?? 300;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 2_147_483_647) {
    throw new Error(`invalid RPZ ttl ${String(ttl)}: expected whole seconds 0-2147483647`);
  }
  const wildcard = options.wildcard ?? true;
  const zone = options.zone.replace(/\.$/, '');

  const lines = [
    `$TTL ${ttl}`,
    `$ORIGIN ${zone}.`,
    `@ IN SOA ${absolute(nameServer)} ${absolute(hostmaster)} ${options.serial} ${RPZ_SOA_TIMERS}`,
    `@ IN NS ${absolute(nameServer)}`,
  ];
  for (const entry of entries) {
    if (entry.type !== 'domain') continue;
    if (!RPZ_OWNER.test(entry.value)) {
      log.dropped(entry.value, 'contains characters that are not valid in an RPZ owner name');
      continue;
    }
    const longest = (wildcard ? 2 : 0) + entry.value.length + 1 + zone.length;
    if (longest > MAX_NAME_LENGTH) {
      log.dropped(entry.value, `longer than ${MAX_NAME_LENGTH} characters under the zone ${zone}`);
      continue;
    }
    lines.push(`${entry.value} CNAME .`);
    if (wildcard) lines.push(`*.${entry.value} CNAME .`);
  }
  return { body: joinLines(lines), contentType: 'text/dns' };
}
