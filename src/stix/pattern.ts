import {
  canonicalize,
  ipv4RangeToCidrs,
  valueTypeToStixType,
  type ValueType,
} from '../processing/index.js';

/** A value that a simple pattern compares, with its canonical type. */
export interface PatternValue {
  type: ValueType;
  value: string;
}

/** Object paths of file hashes; STIX quotes path components that contain a hyphen. */
const HASH_PATHS: Record<'md5' | 'sha1' | 'sha256', string> = {
  md5: 'hashes.MD5',
  sha1: "hashes.'SHA-1'",
  sha256: "hashes.'SHA-256'",
};

/** Escapes a string literal per the STIX 2.1 patterning grammar: only `\` and `'` are escaped. */
export function escapePatternString(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
}

function comparison(type: ValueType, value: string): string {
  const objectType = valueTypeToStixType(type);
  const property =
    type === 'md5' || type === 'sha1' || type === 'sha256' ? HASH_PATHS[type] : 'value';
  return `${objectType}:${property} = '${escapePatternString(value)}'`;
}

/**
 * Builds the STIX pattern that matches a canonical value, e.g.
 * `[ipv4-addr:value = '198.51.100.0/24']`. An IPv4 range becomes the ORed
 * CIDRs that cover it inside one observation expression.
 */
export function patternFor(type: ValueType, value: string): string {
  if (type === 'ipv4-range') {
    const parts = ipv4RangeToCidrs(value).map((cidr) => comparison('ipv4', cidr));
    return `[${parts.join(' OR ')}]`;
  }
  return `[${comparison(type, value)}]`;
}

/**
 * Parses a pattern made only of `=` comparisons on the value types that the hub
 * handles (IPv4/IPv6 addresses and CIDRs, domain names, URLs, MD5/SHA-1/SHA-256
 * file hashes), joined with OR inside one observation expression or between
 * observation expressions. Returns the canonical values, or undefined for any
 * other pattern (AND, other operators, qualifiers, other properties) or a
 * value that does not canonicalize.
 * A range built by `patternFor` comes back as its CIDRs.
 */
export function parseSimplePattern(pattern: string): PatternValue[] | undefined {
  const scanner = new Scanner(pattern);
  const values: PatternValue[] = [];
  for (;;) {
    if (!scanner.take('[')) return undefined;
    for (;;) {
      const value = readComparison(scanner);
      if (!value) return undefined;
      values.push(value);
      if (scanner.takeKeyword('OR')) continue;
      if (scanner.take(']')) break;
      return undefined;
    }
    if (scanner.atEnd()) return values;
    if (!scanner.takeKeyword('OR')) return undefined;
  }
}

function readComparison(scanner: Scanner): PatternValue | undefined {
  const objectType = scanner.match(/[a-z0-9-]+/y);
  if (!objectType || !scanner.take(':')) return undefined;

  let hashType: 'md5' | 'sha1' | 'sha256' | undefined;
  if (scanner.match(/hashes\./y)) {
    const key = scanner.peek("'") ? scanner.readString() : scanner.match(/[A-Za-z0-9_-]+/y);
    hashType = hashTypeOf(key);
    if (!hashType) return undefined;
  } else if (!scanner.match(/value(?![A-Za-z0-9_.])/y)) {
    return undefined;
  }

  if (!scanner.take('=')) return undefined;
  const literal = scanner.readString();
  if (literal === undefined) return undefined;
  return canonicalValue(objectType, hashType, literal);
}

function hashTypeOf(key: string | undefined): 'md5' | 'sha1' | 'sha256' | undefined {
  const normalized = key?.toUpperCase().replace(/-/g, '');
  if (normalized === 'MD5') return 'md5';
  if (normalized === 'SHA1') return 'sha1';
  if (normalized === 'SHA256') return 'sha256';
  return undefined;
}

function canonicalValue(
  objectType: string,
  hashType: 'md5' | 'sha1' | 'sha256' | undefined,
  literal: string,
): PatternValue | undefined {
  let type: ValueType;
  if (objectType === 'file' && hashType) type = hashType;
  else if (hashType) return undefined;
  else if (objectType === 'ipv4-addr') type = literal.includes('/') ? 'ipv4-cidr' : 'ipv4';
  else if (objectType === 'ipv6-addr') type = literal.includes('/') ? 'ipv6-cidr' : 'ipv6';
  else if (objectType === 'domain-name') type = 'domain';
  else if (objectType === 'url') type = 'url';
  else return undefined;

  const result = canonicalize(type, literal);
  return result.ok ? { type: result.type, value: result.value } : undefined;
}

/** A cursor over pattern text that skips whitespace between tokens. */
class Scanner {
  private position = 0;

  constructor(private readonly text: string) {}

  private skipSpace(): void {
    while (this.position < this.text.length && /\s/.test(this.text[this.position] ?? '')) {
      this.position += 1;
    }
  }

  atEnd(): boolean {
    this.skipSpace();
    return this.position >= this.text.length;
  }

  peek(token: string): boolean {
    this.skipSpace();
    return this.text.startsWith(token, this.position);
  }

  take(token: string): boolean {
    if (!this.peek(token)) return false;
    this.position += token.length;
    return true;
  }

  /** Takes a keyword in either case, as the grammar allows, when a non-word character follows it. */
  takeKeyword(keyword: string): boolean {
    this.skipSpace();
    const word = this.text.slice(this.position, this.position + keyword.length);
    const next = this.text[this.position + keyword.length] ?? '';
    if (word !== keyword && word !== keyword.toLowerCase()) return false;
    if (/[A-Za-z0-9_]/.test(next)) return false;
    this.position += keyword.length;
    return true;
  }

  /** Matches a sticky regular expression at the cursor and returns the text it matched. */
  match(sticky: RegExp): string | undefined {
    this.skipSpace();
    sticky.lastIndex = this.position;
    const found = sticky.exec(this.text);
    if (!found) return undefined;
    this.position += found[0].length;
    return found[0];
  }

  /** Reads a quoted string literal; only `\\` and `\'` escapes are valid. */
  readString(): string | undefined {
    if (!this.take("'")) return undefined;
    let value = '';
    while (this.position < this.text.length) {
      const char = this.text[this.position] ?? '';
      this.position += 1;
      if (char === "'") return value;
      if (char === '\\') {
        const escaped = this.text[this.position] ?? '';
        if (escaped !== '\\' && escaped !== "'") return undefined;
        value += escaped;
        this.position += 1;
      } else {
        value += char;
      }
    }
    return undefined;
  }
}
