import { canonicalDomain } from './domain.js';
import { canonicalIpv6, formatIpv4, parseIpv4 } from './ip.js';
import { ipInterval, type IpInterval } from './ip-intervals.js';
import { invalid, ok, type CanonicalResult } from './value-types.js';

/** RFC 3986 section 3: scheme "://" authority, then path and query up to the fragment. */
const URL_PATTERN = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^#]*)/;
const WHITESPACE_OR_CONTROL = /[\s\p{Cc}]/u;
const DEFAULT_PORTS: Record<string, string> = { http: '80', https: '443', ftp: '21' };
/** Longer values are rejected as garbage; URLs in feeds are far shorter. */
export const MAX_URL_LENGTH = 8192;

/** Returns true when `text` starts with a URL scheme followed by `://`. */
export function hasUrlScheme(text: string): boolean {
  return /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(text);
}

/**
 * Canonicalizes an http, https or ftp URL: lower-case scheme and host,
 * punycode host (`_` allowed in labels), default port and fragment dropped, an empty path written as
 * `/`. Userinfo, path and query are kept byte for byte (no percent-decoding),
 * because decoding could change what a server receives. A value without a
 * scheme (`example.com/path`, as Palo Alto EDL URL lists write them) is taken
 * as `http://`.
 */
export function canonicalUrl(text: string): CanonicalResult {
  if (text.length > MAX_URL_LENGTH) {
    return invalid(
      `invalid URL "${text.slice(0, 80)}...": longer than ${MAX_URL_LENGTH} characters`,
    );
  }
  if (WHITESPACE_OR_CONTROL.test(text)) {
    return invalid(
      `invalid URL "${text}": contains whitespace or control characters; percent-encode them`,
    );
  }
  const full = hasUrlScheme(text) ? text : `http://${text}`;
  const match = URL_PATTERN.exec(full);
  if (!match) return invalid(`invalid URL "${text}": expected scheme://host/path`);

  const scheme = (match[1] ?? '').toLowerCase();
  const authority = match[2] ?? '';
  const pathAndQuery = match[3] ?? '';
  const defaultPort = DEFAULT_PORTS[scheme];
  if (defaultPort === undefined) {
    return invalid(
      `invalid URL "${text}": scheme "${scheme}" is not supported; use http, https or ftp`,
    );
  }

  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at + 1) : '';
  const hostPort = authority.slice(at + 1);
  const split = splitHostPort(hostPort);
  if (typeof split === 'string') return invalid(`invalid URL "${text}": ${split}`);

  const host = canonicalHost(split.host);
  if ('error' in host) return invalid(`invalid URL "${text}": ${host.error}`);
  const port = split.port === undefined || split.port === defaultPort ? '' : `:${split.port}`;
  const path =
    pathAndQuery === '' || pathAndQuery.startsWith('?') ? `/${pathAndQuery}` : pathAndQuery;
  return ok('url', `${scheme}://${userinfo}${host.host}${port}${path}`);
}

function splitHostPort(hostPort: string): { host: string; port?: string } | string {
  let host = hostPort;
  let portText: string | undefined;
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0) return 'unterminated IPv6 literal';
    host = hostPort.slice(0, close + 1);
    const rest = hostPort.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return 'unexpected text after the IPv6 literal';
    if (rest !== '') portText = rest.slice(1);
  } else {
    const colon = hostPort.lastIndexOf(':');
    if (colon >= 0) {
      host = hostPort.slice(0, colon);
      portText = hostPort.slice(colon + 1);
    }
  }
  if (host === '') return 'missing host';
  if (portText === undefined || portText === '') return { host };
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    return `port "${portText}" is not a number 1-65535`;
  }
  return { host, port: String(Number(portText)) };
}

function canonicalHost(host: string): { host: string } | { error: string } {
  if (host.startsWith('[')) {
    const address = canonicalIpv6(host.slice(1, -1));
    if (!address.ok) return { error: address.reason };
    return { host: address.type === 'ipv4' ? address.value : `[${address.value}]` };
  }
  const ipv4 = parseIpv4(host);
  if (ipv4 !== undefined) return { host: formatIpv4(ipv4) };
  if (/^[0-9.]+$/.test(host))
    return { error: `host "${host}" is not a valid dotted-quad IPv4 address` };
  const domain = canonicalDomain(host, { allowUnderscore: true });
  return domain.ok ? { host: domain.value } : { error: domain.reason };
}

/**
 * Returns the host of a canonical URL as written in it: a domain, a dotted
 * quad, or an IPv6 literal in brackets. Undefined when `url` has no `//`.
 */
export function urlHost(url: string): string | undefined {
  const start = url.indexOf('//');
  if (start < 0) return undefined;
  let end = start + 2;
  while (end < url.length && url[end] !== '/' && url[end] !== '?') end++;
  const authority = url.slice(start + 2, end);
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  if (hostPort.startsWith('[')) return hostPort.slice(0, hostPort.indexOf(']') + 1);
  const colon = hostPort.lastIndexOf(':');
  return colon < 0 ? hostPort : hostPort.slice(0, colon);
}

/** Returns the address interval of a URL host that is an IP literal, else undefined. */
export function hostInterval(host: string): IpInterval | undefined {
  if (host.startsWith('[')) return ipInterval('ipv6', host.slice(1, -1));
  const address = parseIpv4(host);
  return address === undefined ? undefined : { family: 4, first: address, last: address };
}
