/**
 * Splits a JSON document into the texts of the elements of one array, or of
 * the member values of one object, while the document is read. A `json`
 * source with `format: elements` applies its expression to each of them, so
 * a large document never has to be parsed, or held, whole.
 */

/** The object keys from the top of the document to the container of the elements. */
export type ElementPath = readonly string[];

/**
 * Parses the `elements` setting: `@` for the top-level value, else object
 * keys joined by dots (`prefixes`, `result.items`). Returns an error message
 * for a path with an empty key.
 */
export function parseElementPath(text: string): ElementPath | string {
  if (text === '@') return [];
  const keys = text.split('.');
  if (keys.some((key) => key === '')) {
    return `${JSON.stringify(text)} is not an element path: write object keys joined by dots, such as result.items, or @ for the top-level value`;
  }
  return keys;
}

/** Formats a path for messages. */
export function formatElementPath(path: ElementPath): string {
  return path.length === 0 ? '@' : path.join('.');
}

/** The tokens that the JSON grammar allows next in a container. */
type Expect = 'value' | 'value-or-close' | 'comma-or-close' | 'key' | 'key-or-close' | 'colon';

interface Frame {
  kind: 'object' | 'array';
  /** Whether the object keys that lead to this container are a prefix of the path. */
  onPath: boolean;
  /** Whether this is the container whose children are the elements. */
  target: boolean;
  expect: Expect;
  /** In an object: the key of the member being read. */
  key: string;
}

/** A handler of each element's text, given undefined for an element longer than the limit. */
export type ElementHandler = (text: string | undefined) => void;

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
/** Characters that may continue a number, `true`, `false` or `null`. */
const SCALAR_CHAR = /[0-9A-Za-z+\-.]/;
const SCALAR = /^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)$/;
const ESCAPED = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);
const HEX = /[0-9A-Fa-f]/;
/** Maximum length of a number or literal; a longer one is invalid. */
const MAX_SCALAR_LENGTH = 1000;

/**
 * Scans a JSON document given in pieces and calls the handler with each
 * element of the container at `path`. It checks the whole document against
 * the JSON grammar as `JSON.parse` does, so `end` reports a document that is
 * not JSON, ends early (a truncated download) or has no container at the
 * path. JSON's structural characters are ASCII, so scanning UTF-16 text is
 * safe.
 * NOTE: a key repeated on the path yields the elements of each occurrence,
 * where `JSON.parse` keeps the last one.
 */
export class JsonElementScanner {
  private readonly stack: Frame[] = [];
  /** The token the top level allows next; `done` once its value has ended. */
  private rootExpect: 'value' | 'done' = 'value';
  private inString = false;
  private escaped = false;
  /** Hex digits still expected after `\u`. */
  private hexLeft = 0;
  /** True while the string being read is an object key. */
  private inKey = false;
  /** Set while a key on the path is read: its text so far. */
  private keyParts: string[] | undefined;
  /** Set while a number or literal is read: its text so far. */
  private scalar: string | undefined;
  /** Set while an element is read: its text so far, undefined once it is too long. */
  private elementParts: string[] | undefined;
  private elementLength = 0;
  private elementOverlong = false;
  /** Depth of the stack at which the element being read started, or -1 while none is. */
  private elementDepth = -1;
  private containerFound = false;
  private scalarAtPath = false;
  /** The first place where the text is not JSON; the scan stops there. */
  private failure: string | undefined;
  private started = false;
  private offset = 0;
  private elements = 0;

  constructor(
    private readonly path: ElementPath,
    private readonly onElement: ElementHandler,
    private readonly maxLength: number,
  ) {}

  /** The number of elements found so far. */
  get count(): number {
    return this.elements;
  }

  push(text: string): void {
    if (this.failure !== undefined) return;
    // Where the element and the key being read start in this piece of text.
    let elementFrom = 0;
    let keyFrom = 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      if (this.inString) {
        if (this.hexLeft > 0) {
          if (!HEX.test(ch)) return this.fail('a hex digit of a \\u escape', ch, i);
          this.hexLeft -= 1;
        } else if (this.escaped) {
          this.escaped = false;
          if (ch === 'u') this.hexLeft = 4;
          else if (!ESCAPED.has(ch)) return this.fail('an escape character', ch, i);
        } else if (ch === '\\') {
          this.escaped = true;
        } else if (ch === '"') {
          if (!this.endString(text, i, elementFrom, keyFrom)) return;
        } else if (ch < ' ') {
          return this.fail('a string character', ch, i);
        }
        continue;
      }
      if (this.scalar !== undefined) {
        if (SCALAR_CHAR.test(ch)) {
          this.scalar += ch;
          if (this.scalar.length > MAX_SCALAR_LENGTH) return this.fail('a shorter number', ch, i);
          continue;
        }
        if (!this.endScalar(text, i, elementFrom)) return;
      }
      if (WHITESPACE.has(ch)) continue;

      const top = this.stack[this.stack.length - 1];
      const expect = top === undefined ? this.rootExpect : top.expect;
      if (expect === 'done') return this.fail('the end of the body', ch, i);
      if (expect === 'colon') {
        if (ch !== ':') return this.fail('":"', ch, i);
        top!.expect = 'value';
        continue;
      }
      if (expect === 'comma-or-close') {
        if (ch === ',') {
          top!.expect = top!.kind === 'object' ? 'key' : 'value';
        } else if (ch === (top!.kind === 'object' ? '}' : ']')) {
          this.closeContainer(text, i, elementFrom);
        } else {
          return this.fail(`"," or "${top!.kind === 'object' ? '}' : ']'}"`, ch, i);
        }
        continue;
      }
      if (expect === 'key' || expect === 'key-or-close') {
        if (ch === '}' && expect === 'key-or-close') {
          this.closeContainer(text, i, elementFrom);
        } else if (ch === '"') {
          this.inString = true;
          this.inKey = true;
          if (top!.onPath) {
            this.keyParts = [];
            keyFrom = i;
          }
        } else {
          return this.fail('a key', ch, i);
        }
        continue;
      }
      if (expect === 'value-or-close' && ch === ']') {
        this.closeContainer(text, i, elementFrom);
        continue;
      }

      // A value starts here.
      if (ch !== '{' && ch !== '[' && ch !== '"' && ch !== '-' && !/[0-9tfn]/.test(ch)) {
        return this.fail('a value', ch, i);
      }
      this.started = true;
      if (top?.target === true) {
        this.elementDepth = this.stack.length;
        this.elementParts = [];
        this.elementLength = 0;
        this.elementOverlong = false;
        elementFrom = i;
      }
      const onPath = this.childOnPath(top);
      const atPath = onPath && this.stack.length === this.path.length;
      if (ch === '{' || ch === '[') {
        if (atPath) this.containerFound = true;
        this.stack.push({
          kind: ch === '{' ? 'object' : 'array',
          onPath,
          target: atPath,
          expect: ch === '{' ? 'key-or-close' : 'value-or-close',
          key: '',
        });
        continue;
      }
      if (atPath) this.scalarAtPath = true;
      if (ch === '"') this.inString = true;
      else this.scalar = ch;
    }
    if (this.keyParts !== undefined) this.keyParts.push(text.slice(keyFrom));
    if (this.elementDepth >= 0) this.keep(text.slice(elementFrom));
    this.offset += text.length;
  }

  /**
   * Ends the document. Returns why the document is unusable, or undefined
   * when it is complete JSON and has a container at the path.
   */
  end(): string | undefined {
    if (this.failure !== undefined) return this.failure;
    if (this.scalar !== undefined && !this.endScalar('', 0, 0)) return this.failure;
    if (!this.started) return 'the body is empty';
    if (this.inString || this.stack.length > 0) {
      return 'the JSON ends early, so the body is truncated';
    }
    const where = formatElementPath(this.path);
    if (!this.containerFound) {
      return this.scalarAtPath
        ? `the value at ${where} is neither an array nor an object; set elements to the path of the list`
        : `the document has no array or object at ${where}; check elements against the feed's current format`;
    }
    return undefined;
  }

  /** Records the first place where the text is not JSON; the scan stops there. */
  private fail(expected: string, found: string, i: number): void {
    this.failure = `the body is not valid JSON: expected ${expected} but found ${JSON.stringify(found)} at character ${this.offset + i}`;
  }

  /** Handles the closing quote at `i` of a key or a value string; false when the key is invalid. */
  private endString(text: string, i: number, elementFrom: number, keyFrom: number): boolean {
    this.inString = false;
    if (this.inKey) {
      this.inKey = false;
      const top = this.stack[this.stack.length - 1]!;
      top.expect = 'colon';
      if (this.keyParts !== undefined) {
        this.keyParts.push(text.slice(keyFrom, i + 1));
        const keyText = this.keyParts.join('');
        this.keyParts = undefined;
        try {
          top.key = JSON.parse(keyText) as string;
        } catch {
          this.fail('a valid key', keyText.slice(0, 40), i);
          return false;
        }
      }
      return true;
    }
    if (this.elementDepth === this.stack.length) {
      this.keep(text.slice(elementFrom, i + 1));
      this.finishElement();
    }
    this.valueDone();
    return true;
  }

  /** Checks the number or literal that ends before `i`; false when it is invalid. */
  private endScalar(text: string, i: number, elementFrom: number): boolean {
    const scalar = this.scalar!;
    this.scalar = undefined;
    if (!SCALAR.test(scalar)) {
      this.fail('a number, true, false or null', scalar.slice(0, 40), i - scalar.length);
      return false;
    }
    if (this.elementDepth === this.stack.length) {
      this.keep(text.slice(elementFrom, i));
      this.finishElement();
    }
    this.valueDone();
    return true;
  }

  /** Handles the `}` or `]` at `i`. */
  private closeContainer(text: string, i: number, elementFrom: number): void {
    this.stack.pop();
    if (this.elementDepth === this.stack.length) {
      this.keep(text.slice(elementFrom, i + 1));
      this.finishElement();
    }
    this.valueDone();
  }

  /** Moves on after a value: a comma or the container's end may follow. */
  private valueDone(): void {
    const top = this.stack[this.stack.length - 1];
    if (top === undefined) this.rootExpect = 'done';
    else top.expect = 'comma-or-close';
  }

  /** Returns whether a value that starts inside `parent` lies on the path. */
  private childOnPath(parent: Frame | undefined): boolean {
    if (parent === undefined) return true;
    if (!parent.onPath || parent.kind !== 'object') return false;
    const depth = this.stack.length - 1;
    return depth < this.path.length && this.path[depth] === parent.key;
  }

  private keep(part: string): void {
    if (this.elementParts === undefined) return;
    this.elementLength += part.length;
    if (this.elementLength > this.maxLength) {
      this.elementParts = undefined;
      this.elementOverlong = true;
      return;
    }
    this.elementParts.push(part);
  }

  private finishElement(): void {
    const parts = this.elementParts;
    const overlong = this.elementOverlong;
    this.elementParts = undefined;
    this.elementOverlong = false;
    this.elementDepth = -1;
    if (parts === undefined && !overlong) return;
    this.elements += 1;
    this.onElement(overlong ? undefined : parts!.join(''));
  }
}
