/**
 * Finds the source text of array elements inside a JSON document, so that
 * objects from a TAXII envelope can be stored exactly as the server sent
 * them: re-serialising a parsed object would be allowed to change number
 * formatting and escapes, and a slice never does.
 */

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);

/**
 * Returns the source text of each element of the array under `key` in the
 * top-level JSON object `text`, or undefined when the document has no such
 * key. When the key occurs twice, the last occurrence counts, as in
 * `JSON.parse`. The caller must have checked `text` with `JSON.parse` first:
 * this scanner assumes valid JSON and does not report syntax errors.
 */
export function sliceArrayElements(text: string, key: string): string[] | undefined {
  let found: string[] | undefined;
  let i = skipSpace(text, 0);
  if (text[i] !== '{') return undefined;
  i = skipSpace(text, i + 1);
  if (text[i] === '}') return undefined;

  for (;;) {
    const keyEnd = skipString(text, i);
    const name = JSON.parse(text.slice(i, keyEnd)) as string;
    i = skipSpace(text, keyEnd);
    i = skipSpace(text, i + 1); // the ':'

    if (name === key && text[i] === '[') {
      found = [];
      i = skipSpace(text, i + 1);
      if (text[i] === ']') {
        i += 1;
      } else {
        for (;;) {
          const start = i;
          i = skipValue(text, i);
          found.push(text.slice(start, i));
          i = skipSpace(text, i);
          const separator = text[i];
          i += 1;
          if (separator === ']') break;
          i = skipSpace(text, i);
        }
      }
    } else {
      if (name === key) found = undefined;
      i = skipValue(text, i);
    }

    i = skipSpace(text, i);
    if (text[i] !== ',') return found;
    i = skipSpace(text, i + 1);
  }
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && WHITESPACE.has(text[i]!)) i += 1;
  return i;
}

/** Returns the index just past the string literal that starts at `i`. */
function skipString(text: string, i: number): number {
  i += 1;
  while (i < text.length) {
    const char = text.charCodeAt(i);
    if (char === 0x5c)
      i += 2; // a backslash escapes the next character
    else if (char === 0x22) return i + 1;
    else i += 1;
  }
  return i;
}

/** Returns the index just past the JSON value that starts at `i`. */
function skipValue(text: string, i: number): number {
  const first = text[i];
  if (first === '"') return skipString(text, i);
  if (first !== '{' && first !== '[') {
    // A number or a literal: it ends at a delimiter.
    while (i < text.length && !',}] \t\n\r'.includes(text[i]!)) i += 1;
    return i;
  }
  let depth = 0;
  while (i < text.length) {
    const char = text[i]!;
    if (char === '"') {
      i = skipString(text, i);
      continue;
    }
    if (char === '{' || char === '[') depth += 1;
    else if (char === '}' || char === ']') {
      depth -= 1;
      if (depth === 0) return i + 1;
    }
    i += 1;
  }
  return i;
}
