import { Readable, pipeline, type Transform } from 'node:stream';
import { TextDecoder } from 'node:util';
import { createBrotliDecompress, createGunzip, createInflate, createInflateRaw } from 'node:zlib';
import { Unzip, UnzipInflate } from 'fflate';

import { FetchError } from './fetch-error.js';

const GZIP_MAGIC = [0x1f, 0x8b];
/** A zip archive starts with a local file header, or with the end record when it is empty. */
const ZIP_MAGICS = [Buffer.from('PK\x03\x04', 'latin1'), Buffer.from('PK\x05\x06', 'latin1')];
/** Raw bytes pushed into the unzipper at a time, which bounds the output of one push to about 16 MiB (deflate expands at most 1032:1). */
const ZIP_PUSH_BYTES = 16 * 1024;

/** Decoding settings of a body besides its Content-Encoding. */
export interface DecodeOptions {
  /** The Content-Type header; its `charset` parameter decides the text encoding when the body has no BOM. */
  contentType?: string;
  /** The entry to read from a zip body; without it the zip must hold one file. */
  zipEntry?: string;
}

function startsWithGzipMagic(head: Buffer): boolean {
  return head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
}

/**
 * Picks the decompressor for a body. Gzip is recognized by its magic bytes
 * whatever the headers state, so a `.gz` file served as plain bytes is
 * decompressed too and a mislabelled plain body is not. `deflate` is zlib
 * format by RFC 9110, but some servers send raw deflate, so a zlib header
 * byte (0x78) decides.
 */
function pickDecoder(
  contentEncoding: string | undefined,
  head: Buffer,
  url: string,
): Transform | undefined {
  if (startsWithGzipMagic(head)) return createGunzip();
  const encoding = (contentEncoding ?? '').trim().toLowerCase();
  if (encoding === '' || encoding === 'identity' || encoding === 'gzip' || encoding === 'x-gzip') {
    return undefined;
  }
  if (encoding === 'deflate') return head[0] === 0x78 ? createInflate() : createInflateRaw();
  if (encoding === 'br') return createBrotliDecompress();
  throw new FetchError(
    'decode',
    `cannot decode ${url}: unsupported Content-Encoding "${contentEncoding}"`,
  );
}

/** Reads the first `length` bytes of a stream (fewer when it is shorter) and returns them with the whole stream. */
async function peek(
  raw: AsyncIterable<Buffer>,
  length: number,
): Promise<{ head: Buffer; all: AsyncGenerator<Buffer> }> {
  const iterator = raw[Symbol.asyncIterator]();
  const headChunks: Buffer[] = [];
  let headLength = 0;
  let done = false;
  while (headLength < length) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    headChunks.push(next.value);
    headLength += next.value.length;
  }
  const head = Buffer.concat(headChunks);
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { head, all: all() };
}

/**
 * Yields the decoded bytes of a body, reading the raw body only as fast as
 * the caller consumes. The steps: the Content-Encoding (or gzip, by its magic
 * bytes) is undone, and a zip archive is unpacked. Then text in UTF-16, or in
 * a charset that the Content-Type names, is converted to UTF-8.
 */
export async function* decodeBody(
  raw: AsyncIterable<Buffer>,
  contentEncoding: string | undefined,
  url: string,
  options: DecodeOptions = {},
): AsyncGenerator<Buffer> {
  const unzipped = unzipIfZip(decompress(raw, contentEncoding, url), url, options.zipEntry);
  yield* toUtf8(unzipped, options.contentType, url);
}

async function* decompress(
  raw: AsyncIterable<Buffer>,
  contentEncoding: string | undefined,
  url: string,
): AsyncGenerator<Buffer> {
  const { head, all } = await peek(raw, GZIP_MAGIC.length);
  const decoder = pickDecoder(contentEncoding, head, url);
  if (!decoder) {
    yield* all;
    return;
  }

  const source = Readable.from(all, { objectMode: false });
  // pipeline() destroys both streams with the first error, so iteration below rejects with it.
  const decoded = pipeline(source, decoder, () => {});
  try {
    for await (const chunk of decoded) yield chunk as Buffer;
  } finally {
    source.destroy();
    decoder.destroy();
  }
}

async function* unzipIfZip(
  body: AsyncIterable<Buffer>,
  url: string,
  zipEntry: string | undefined,
): AsyncGenerator<Buffer> {
  const { head, all } = await peek(body, 4);
  const isZip = ZIP_MAGICS.some((magic) => head.length >= 4 && head.subarray(0, 4).equals(magic));
  if (!isZip) {
    yield* all;
    return;
  }
  yield* unzipEntry(all, url, zipEntry);
}

/**
 * Streams one entry out of a zip archive, reading the local file headers as
 * they arrive (the central directory at the end is not needed). Without
 * `zipEntry` the first file is read and a second file fails the body, since
 * it is unclear which one is the feed.
 */
async function* unzipEntry(
  body: AsyncIterable<Buffer>,
  url: string,
  zipEntry: string | undefined,
): AsyncGenerator<Buffer> {
  const output: Buffer[] = [];
  const names: string[] = [];
  let chosen: string | undefined;
  let finished = false;
  let failure: FetchError | undefined;

  const unzip = new Unzip((file) => {
    if (file.name.endsWith('/')) return; // a directory entry
    names.push(file.name);
    if (zipEntry === undefined && chosen !== undefined) {
      failure ??= new FetchError(
        'decode',
        `the zip archive of ${url} holds more than one file (${chosen}, ${file.name}); set zipEntry to the one to read`,
      );
      return;
    }
    if (zipEntry !== undefined && file.name !== zipEntry) return;
    chosen = file.name;
    file.ondata = (error, data, final) => {
      if (error) {
        failure ??= new FetchError(
          'decode',
          `the zip entry ${file.name} of ${url} is corrupt (${error.message})`,
          { cause: error },
        );
        return;
      }
      if (data.length > 0) output.push(Buffer.from(data));
      if (final) finished = true;
    };
    try {
      file.start();
    } catch (error) {
      failure ??= new FetchError(
        'decode',
        `cannot unpack the zip entry ${file.name} of ${url}: compression method ${file.compression} is not supported; only stored and deflate entries are`,
        { cause: error },
      );
    }
  });
  unzip.register(UnzipInflate);

  const push = (chunk: Uint8Array, final: boolean): void => {
    try {
      unzip.push(chunk, final);
    } catch (error) {
      failure ??= new FetchError(
        'decode',
        `the zip archive of ${url} is corrupt (${(error as Error).message})`,
        { cause: error },
      );
    }
  };

  for await (const chunk of body) {
    for (let start = 0; start < chunk.length; start += ZIP_PUSH_BYTES) {
      push(chunk.subarray(start, start + ZIP_PUSH_BYTES), false);
      if (failure) throw failure;
      while (output.length > 0) yield output.shift()!;
    }
  }
  push(new Uint8Array(0), true);
  if (failure) throw failure;
  while (output.length > 0) yield output.shift()!;

  if (chosen === undefined) {
    const held = names.length === 0 ? 'no file' : `only ${names.join(', ')}`;
    throw new FetchError(
      'decode',
      zipEntry === undefined
        ? `the zip archive of ${url} holds no file`
        : `the zip archive of ${url} has no entry ${JSON.stringify(zipEntry)}; it holds ${held}; fix zipEntry`,
    );
  }
  if (!finished) {
    throw new FetchError(
      'decode',
      `the zip entry ${chosen} of ${url} ends early; the download may be truncated`,
    );
  }
}

/** Returns the `charset` parameter of a Content-Type (RFC 9110, section 8.3.2), lower-cased. */
export function charsetOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  for (const parameter of contentType.split(';').slice(1)) {
    const eq = parameter.indexOf('=');
    if (eq < 0) continue;
    if (parameter.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    const value = parameter
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
    return value === '' ? undefined : value;
  }
  return undefined;
}

const UTF8_LABELS = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii', 'unicode-1-1-utf-8']);

/**
 * Picks the text encoding of a body as the WHATWG Encoding Standard does: a
 * UTF-16 byte order mark wins over the Content-Type charset. UTF-8 (with or
 * without its BOM, which the parsers drop) needs no conversion and returns
 * undefined. A label such as `latin1` or `iso-8859-1` means windows-1252 there.
 */
function sourceEncoding(head: Buffer, contentType: string | undefined, url: string) {
  if (head[0] === 0xff && head[1] === 0xfe) return 'utf-16le';
  if (head[0] === 0xfe && head[1] === 0xff) return 'utf-16be';
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return undefined;
  const charset = charsetOf(contentType);
  if (charset === undefined || UTF8_LABELS.has(charset)) return undefined;
  try {
    new TextDecoder(charset);
  } catch (error) {
    throw new FetchError(
      'decode',
      `cannot decode ${url}: unsupported charset "${charset}" in Content-Type "${contentType}"`,
      { cause: error },
    );
  }
  return charset;
}

async function* toUtf8(
  body: AsyncIterable<Buffer>,
  contentType: string | undefined,
  url: string,
): AsyncGenerator<Buffer> {
  const { head, all } = await peek(body, 3);
  const encoding = sourceEncoding(head, contentType, url);
  if (encoding === undefined) {
    yield* all;
    return;
  }
  // The decoder drops a byte order mark and carries split characters over to the next chunk.
  const decoder = new TextDecoder(encoding);
  for await (const chunk of all) {
    const text = decoder.decode(chunk, { stream: true });
    if (text !== '') yield Buffer.from(text, 'utf8');
  }
  const tail = decoder.decode();
  if (tail !== '') yield Buffer.from(tail, 'utf8');
}
