import { Readable, pipeline, type Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, createInflateRaw } from 'node:zlib';

import { FetchError } from './fetch-error.js';

const GZIP_MAGIC = [0x1f, 0x8b];

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

/** Yields the decompressed bytes of a body, reading the raw body only as fast as the caller consumes. */
export async function* decodeBody(
  raw: AsyncIterable<Buffer>,
  contentEncoding: string | undefined,
  url: string,
): AsyncGenerator<Buffer> {
  const iterator = raw[Symbol.asyncIterator]();
  const headChunks: Buffer[] = [];
  let headLength = 0;
  let done = false;
  while (headLength < GZIP_MAGIC.length) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    headChunks.push(next.value);
    headLength += next.value.length;
  }

  const head = Buffer.concat(headChunks);
  async function* rest(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }

  const decoder = pickDecoder(contentEncoding, head, url);
  if (!decoder) {
    yield* rest();
    return;
  }

  const source = Readable.from(rest(), { objectMode: false });
  // pipeline() destroys both streams with the first error, so iteration below rejects with it.
  const decoded = pipeline(source, decoder, () => {});
  try {
    for await (const chunk of decoded) yield chunk as Buffer;
  } finally {
    source.destroy();
    decoder.destroy();
  }
}
