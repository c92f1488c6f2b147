/**
 * URL lists in the entry form of PAN-OS URL external dynamic lists and custom
 * URL categories, as MineMeld's `panosurl` output wrote them: no scheme, the
 * host in lower case, then path and query.
 *
 * Rules from the Palo Alto Networks guidelines for URL category exception
 * lists (PAN-OS 7.1 admin guide, Cloud NGFW for AWS guide): entries omit
 * `http://` and `https://`, are at most 255 characters long, and are split
 * into tokens by the separators `. / ? & = ; +`. A wildcard, `*` (one or more
 * tokens) or `^` (exactly one token), is valid only as a whole token, so
 * `a*b` is invalid.
 */
import { PLAIN_TEXT, type BuildLog, type FormatOutput, type ViewEntry } from '../model.js';

import { joinLines } from './edl.js';

/** Options of the PAN-OS URL list. */
export interface PanosUrlOptions {
  /**
   * PAN-OS entries cannot match a port. `strip` writes the URL without it,
   * `drop` leaves the entry out.
   */
  port: 'strip' | 'drop';
  /**
   * Writes `/` after an entry that is only a host, so it matches that host and
   * its paths only. PAN-OS 10.2 appends it by default and earlier versions
   * only when configured to, so writing it gives the same match on all of them.
   */
  trailingSlash: boolean;
  /**
   * `rewrite` replaces a token that mixes `*` or `^` with other characters
   * by `*`, which matches more URLs. `drop` leaves the entry out.
   */
  invalidWildcards: 'rewrite' | 'drop';
}

/** Maximum length of one PAN-OS URL entry. */
export const PANOS_URL_MAX_LENGTH = 255;

/** RFC 3986 section 3: scheme "://" authority, then path and query up to the fragment. */
const URL_PATTERN = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)([^#]*)/;
/** A token: a maximal run of characters other than the PAN-OS separators `. / ? & = ; +`. */
const TOKEN_PATTERN = /[^./?&=;+]+/g;

/** The parts of a URL that a PAN-OS entry keeps, plus what it removed. */
interface UrlParts {
  host: string;
  port?: string;
  hasUserinfo: boolean;
  /** Path and query, starting with `/` or `?`, or empty. */
  rest: string;
}

/** Splits a canonical URL into host, port and path. Returns undefined when it has no `scheme://authority`. */
export function splitUrl(url: string): UrlParts | undefined {
  const match = URL_PATTERN.exec(url);
  if (match === null) return undefined;
  const authority = match[1] ?? '';
  const at = authority.lastIndexOf('@');
  const hostPort = authority.slice(at + 1);

  let host = hostPort;
  let port: string | undefined;
  // An IPv6 literal contains colons, so the port separator is the colon after `]`.
  const portColon = hostPort.startsWith('[')
    ? hostPort.indexOf(':', hostPort.indexOf(']'))
    : hostPort.lastIndexOf(':');
  if (portColon >= 0) {
    host = hostPort.slice(0, portColon);
    port = hostPort.slice(portColon + 1);
  }
  if (host === '') return undefined;
  return { host: host.toLowerCase(), port, hasUserinfo: at >= 0, rest: match[2] ?? '' };
}

/** Outcome of converting one entry. */
type Conversion = { line: string; rewrites: string[] } | { dropReason: string };

/** Returns the tokens that contain `*` or `^` but are not a lone `*` or `^`. */
function invalidWildcardTokens(text: string): string[] {
  const invalid: string[] = [];
  for (const token of text.match(TOKEN_PATTERN) ?? []) {
    if (token !== '*' && token !== '^' && /[*^]/.test(token)) invalid.push(token);
  }
  return invalid;
}

/** Converts one URL or domain entry to its PAN-OS line, or returns the reason it cannot be one. */
export function convertPanosUrl(entry: ViewEntry, options: PanosUrlOptions): Conversion {
  const rewrites: string[] = [];
  let host: string;
  let rest = '';
  if (entry.type === 'domain') {
    host = entry.value.toLowerCase();
  } else {
    const parts = splitUrl(entry.value);
    if (parts === undefined) return { dropReason: 'not a URL of the form scheme://host/path' };
    host = parts.host;
    rest = parts.rest;
    if (parts.hasUserinfo) rewrites.push('userinfo removed');
    if (parts.port !== undefined && parts.port !== '') {
      if (options.port === 'drop') {
        return { dropReason: `port ${parts.port}: PAN-OS URL entries cannot match a port` };
      }
      rewrites.push(`port ${parts.port} stripped`);
    }
  }

  const hostOnly = rest === '' || rest === '/';
  let line = hostOnly ? host : `${host}${rest}`;
  const invalid = invalidWildcardTokens(line);
  if (invalid.length > 0) {
    const tokens = invalid.map((token) => JSON.stringify(token)).join(', ');
    if (options.invalidWildcards === 'drop') {
      return { dropReason: `token ${tokens}: PAN-OS accepts * and ^ only as a whole token` };
    }
    line = line.replace(TOKEN_PATTERN, (token) =>
      token !== '*' && token !== '^' && /[*^]/.test(token) ? '*' : token,
    );
    rewrites.push(`token ${tokens} replaced by *`);
  }
  if (hostOnly && options.trailingSlash) line += '/';

  // NOTE: the length is counted in UTF-8 bytes, which equals characters for
  // ASCII. For other text it is the stricter of the two readings of the limit.
  const length = Buffer.byteLength(line, 'utf8');
  if (length > PANOS_URL_MAX_LENGTH) {
    // A shorter prefix would match more URLs than the source listed, so the entry is not truncated.
    return {
      dropReason: `${length} characters, over the PAN-OS maximum of ${PANOS_URL_MAX_LENGTH}`,
    };
  }
  return { line, rewrites };
}

/**
 * Renders a PAN-OS URL list from URL and domain entries, in code unit order
 * with duplicate lines written once (`http://` and `https://` forms of one
 * URL give the same line). Other entry types are left out. Logs every entry
 * that it rewrites or drops, with the reason.
 */
export function renderPanosUrlEdl(
  entries: readonly ViewEntry[],
  options: PanosUrlOptions,
  log: BuildLog,
): FormatOutput {
  const lines: string[] = [];
  for (const entry of entries) {
    if (entry.type !== 'url' && entry.type !== 'domain') continue;
    const result = convertPanosUrl(entry, options);
    if ('dropReason' in result) {
      log.dropped(entry.value, result.dropReason);
      continue;
    }
    if (result.rewrites.length > 0) {
      log.rewritten(entry.value, result.line, result.rewrites.join(', '));
    }
    lines.push(result.line);
  }
  lines.sort();

  const unique: string[] = [];
  let previous: string | undefined;
  for (const line of lines) {
    if (line !== previous) unique.push(line);
    previous = line;
  }
  return { body: joinLines(unique), contentType: PLAIN_TEXT };
}
