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

interface Frame {
  kind: 'object' | 'array';
  /** Whether the object keys that lead to this container are a prefix of the path. */
  onPath: boolean;
  /** Whether this is the container whose children are the elements. */
  target: boolean;
  /** In an object: whether the next string is a key. */
  expectKey: boolean;
  /** In an object: the key of the member being read. */
  key: string;
}

/** A handler of each element's text, given undefined for an element longer than the limit. */
export type ElementHandler = (text: string | undefined) => void;

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
/** Characters that end a number, `true`, `false` or `null`. */
const SCALAR_END = new Set([' ', '\t', '\n', '\r', ',', ']', '}']);

/**
 * Scans a JSON document given in pieces and calls the handler with each
 * element of the container at `path`. It follows strings and nesting only:
 * each element is checked by the caller's `JSON.parse`, and `end` reports a
 * document that ends early (a truncated download) or has no container at
 * the path. JSON's structural characters are ASCII, so scanning UTF-16
 * text is safe.
 */
export class JsonElementScanner {
  private readonly stack: Frame[] = [];
  private inString = false;
  private escaped = false;
  /** True while the string being read is an object key. */
  private inKey = false;
  /** Set while a key on the path is read: its text so far. */
  private keyParts: string[] | undefined;
  /** True while a number or literal is read. */
  private inScalar = false;
  /** Set while an element is read: its text so far, undefined once it is too long. */
  private elementParts: string[] | undefined;
  private elementLength = 0;
  private elementOverlong = false;
  /** Depth of the stack at which the element being read started, or -1 while none is. */
  private elementDepth = -1;
  private containerFound = false;
  private scalarAtPath = false;
  private rootDone = false;
  private trailing = false;
  /** The first structural problem found outside the elements. */
  private malformed: string | undefined;
  private started = false;
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
    // Where the element and the key being read start in this piece of text.
    let elementFrom = 0;
    let keyFrom = 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (ch === '\\') this.escaped = true;
        else if (ch === '"') this.endString(text, i, elementFrom, keyFrom);
        continue;
      }
      if (this.inScalar) {
        if (!SCALAR_END.has(ch)) continue;
        this.inScalar = false;
        if (this.elementDepth === this.stack.length) {
          this.keep(text.slice(elementFrom, i));
          this.finishElement();
        }
      }
      if (WHITESPACE.has(ch)) continue;
      if (this.rootDone) {
        this.trailing = true;
        continue;
      }

      const top = this.stack[this.stack.length - 1];
      if (top?.kind === 'object' && top.expectKey) {
        if (ch === '}') {
          this.closeContainer(text, i, elementFrom);
        } else if (ch !== '"') {
          this.malformed ??= `expected a key but found ${JSON.stringify(ch)}`;
        } else {
          this.inString = true;
          this.inKey = true;
          top.expectKey = false;
          if (top.onPath) {
            this.keyParts = [];
            keyFrom = i;
          }
        }
        continue;
      }
      if (ch === ':') continue;
      if (ch === ',') {
        if (top?.kind === 'object') top.expectKey = true;
        continue;
      }
      if (ch === '}' || ch === ']') {
        this.closeContainer(text, i, elementFrom);
        continue;
      }

      // A value starts here.
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
          expectKey: ch === '{',
          key: '',
        });
        continue;
      }
      if (atPath) this.scalarAtPath = true;
      if (ch === '"') this.inString = true;
      else this.inScalar = true;
      if (this.stack.length === 0) this.rootDone = true;
    }
    if (this.keyParts !== undefined) this.keyParts.push(text.slice(keyFrom));
    if (this.elementDepth >= 0) this.keep(text.slice(elementFrom));
  }

  /**
   * Ends the document. Returns why the document is unusable, or undefined
   * when it is complete and has a container at the path.
   */
  end(): string | undefined {
    if (this.inScalar) {
      this.inScalar = false;
      this.finishElement();
    }
    if (!this.started) return 'the body is empty';
    if (this.inString || this.stack.length > 0) {
      return 'the JSON ends early, so the body is truncated';
    }
    if (this.malformed !== undefined) return `the body is not valid JSON: ${this.malformed}`;
    if (this.trailing) return 'the body has text after the end of its JSON value';
    const where = formatElementPath(this.path);
    if (!this.containerFound) {
      return this.scalarAtPath
        ? `the value at ${where} is neither an array nor an object; set elements to the path of the list`
        : `the document has no array or object at ${where}; check elements against the feed's current format`;
    }
    return undefined;
  }

  /** Handles the closing quote at `i` of a key or a value string. */
  private endString(text: string, i: number, elementFrom: number, keyFrom: number): void {
    this.inString = false;
    if (this.inKey) {
      this.inKey = false;
      if (this.keyParts !== undefined) {
        this.keyParts.push(text.slice(keyFrom, i + 1));
        const top = this.stack[this.stack.length - 1]!;
        top.key = JSON.parse(this.keyParts.join('')) as string;
        this.keyParts = undefined;
      }
      return;
    }
    if (this.elementDepth === this.stack.length) {
      this.keep(text.slice(elementFrom, i + 1));
      this.finishElement();
    }
  }

  /** Handles the `}` or `]` at `i`. */
  private closeContainer(text: string, i: number, elementFrom: number): void {
    this.stack.pop();
    if (this.elementDepth === this.stack.length) {
      this.keep(text.slice(elementFrom, i + 1));
      this.finishElement();
    }
    if (this.stack.length === 0) this.rootDone = true;
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
