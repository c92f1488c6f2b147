/**
 * A small CEF reader for tests, written apart from the renderer so a round
 * trip checks the escaping rules instead of mirroring them. Header fields are
 * split on unescaped `|`. In the extension, a key is the word before an
 * unescaped `=`, and its value runs to the space before the next key.
 */

export interface ParsedCef {
  version: string;
  vendor: string;
  product: string;
  deviceVersion: string;
  signatureId: string;
  name: string;
  severity: string;
  extensions: Map<string, string>;
}

const HEADER_FIELDS = 7;

/** Splits the header into its seven fields and returns them with the rest of the line. */
function splitHeader(line: string): { fields: string[]; rest: string } {
  const fields: string[] = [];
  let current = '';
  let index = 0;
  while (index < line.length && fields.length < HEADER_FIELDS) {
    const char = line[index] as string;
    if (char === '\\' && index + 1 < line.length) {
      const next = line[index + 1] as string;
      if (next !== '\\' && next !== '|') {
        throw new Error(`invalid CEF header escape "\\${next}" at ${index}`);
      }
      current += next;
      index += 2;
      continue;
    }
    if (char === '|') {
      fields.push(current);
      current = '';
    } else {
      current += char;
    }
    index += 1;
  }
  if (fields.length < HEADER_FIELDS) {
    throw new Error(
      `invalid CEF line: expected ${HEADER_FIELDS} header fields, found ${fields.length}`,
    );
  }
  return { fields, rest: line.slice(index) };
}

function unescapeExtension(text: string): string {
  return text.replace(/\\(.)/g, (_match, char: string) => {
    if (char === 'n') return '\n';
    if (char === 'r') return '\r';
    if (char === '\\' || char === '=') return char;
    throw new Error(`invalid CEF extension escape "\\${char}"`);
  });
}

/** Returns true when the character at `index` follows an odd number of backslashes. */
function isEscaped(text: string, index: number): boolean {
  let count = 0;
  for (let at = index - 1; at >= 0 && text[at] === '\\'; at--) count++;
  return count % 2 === 1;
}

function parseExtensions(text: string): Map<string, string> {
  // Each key starts the text or follows a space, and ends at an unescaped `=`.
  const keys: { key: string; start: number; valueStart: number }[] = [];
  for (let index = 0; index < text.length; index++) {
    if (text[index] !== '=' || isEscaped(text, index)) continue;
    let start = index;
    while (start > 0 && /[A-Za-z0-9_]/.test(text[start - 1] as string)) start--;
    if (start === index || (start > 0 && text[start - 1] !== ' ')) {
      throw new Error(`invalid CEF extension: "=" at ${index} follows no key`);
    }
    keys.push({ key: text.slice(start, index), start, valueStart: index + 1 });
  }

  const result = new Map<string, string>();
  keys.forEach((current, position) => {
    const next = keys[position + 1];
    // The separator is the one space before the next key.
    const valueEnd = next === undefined ? text.length : next.start - 1;
    if (result.has(current.key)) throw new Error(`duplicate CEF key "${current.key}"`);
    result.set(current.key, unescapeExtension(text.slice(current.valueStart, valueEnd)));
  });
  return result;
}

/** Parses one CEF line (without syslog prefix or line end). Throws on malformed input. */
export function parseCefLine(line: string): ParsedCef {
  const { fields, rest } = splitHeader(line);
  const [version, vendor, product, deviceVersion, signatureId, name, severity] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (!version.startsWith('CEF:')) throw new Error(`invalid CEF line: starts with "${version}"`);
  return {
    version: version.slice('CEF:'.length),
    vendor,
    product,
    deviceVersion,
    signatureId,
    name,
    severity,
    extensions: parseExtensions(rest),
  };
}
