/** A small LRU of gzip-coded view bodies keyed by entity tag, so each body is compressed once per process. */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);

export class GzipCache {
  private readonly entries = new Map<string, Promise<Buffer>>();
  private totalBytes = 0;
  private readonly sizes = new Map<string, number>();

  /** @param maxBytes upper bound of the compressed bytes kept; the least recently used go first. */
  constructor(private readonly maxBytes: number) {}

  /** Returns the gzip coding of `body`, whose strong entity tag is `etag`. */
  get(etag: string, body: Buffer): Promise<Buffer> {
    const cached = this.entries.get(etag);
    if (cached !== undefined) {
      // Reinsert to mark as most recently used.
      this.entries.delete(etag);
      this.entries.set(etag, cached);
      return cached;
    }
    const pending = gzipAsync(body);
    this.entries.set(etag, pending);
    pending.then(
      (compressed) => this.account(etag, pending, compressed.length),
      () => {
        if (this.entries.get(etag) === pending) {
          this.entries.delete(etag);
        }
      },
    );
    return pending;
  }

  private account(etag: string, entry: Promise<Buffer>, size: number): void {
    // An entry evicted while it was being compressed is not counted.
    if (this.entries.get(etag) !== entry) {
      return;
    }
    this.sizes.set(etag, size);
    this.totalBytes += size;
    for (const oldest of this.entries.keys()) {
      if (this.totalBytes <= this.maxBytes || oldest === etag) {
        break;
      }
      this.entries.delete(oldest);
      this.totalBytes -= this.sizes.get(oldest) ?? 0;
      this.sizes.delete(oldest);
    }
  }
}
