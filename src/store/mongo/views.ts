/** Stored views on MongoDB: a head document per view, with large parts in chunks. */
import { randomUUID } from 'node:crypto';

import { Binary, type Collection, type Db } from 'mongodb';

import type { RenderedView } from '../port.js';
import {
  COLLECTIONS,
  compositeKey,
  VIEW_INLINE_BYTES,
  type ViewChunkDoc,
  type ViewDoc,
} from './schema.js';

type Part = 'body' | 'data';

export function bufferOf(binary: Binary): Buffer {
  return Buffer.from(binary.buffer.buffer, binary.buffer.byteOffset, binary.position);
}

export class ViewCollections {
  private readonly heads: Collection<ViewDoc>;
  private readonly chunks: Collection<ViewChunkDoc>;

  constructor(db: Db) {
    this.heads = db.collection<ViewDoc>(COLLECTIONS.views);
    this.chunks = db.collection<ViewChunkDoc>(COLLECTIONS.viewChunks);
  }

  /**
   * Writes the chunks of the new render, then replaces the head, then
   * deletes the chunks of renders older than the one replaced.
   */
  async put(view: RenderedView): Promise<void> {
    const key = compositeKey(view.collectionId, view.name);
    const renderId = randomUUID();
    const previous = await this.heads.findOne({ _id: key }, { projection: { render_id: 1 } });
    const body = await this.writePart(key, renderId, 'body', view.body);
    const data = await this.writePart(key, renderId, 'data', view.data);
    const doc: ViewDoc = {
      _id: key,
      collection_id: view.collectionId,
      name: view.name,
      content_type: view.contentType,
      etag: view.etag,
      render_id: renderId,
      previous_render_id: previous?.render_id,
      body: body.inline,
      body_chunks: body.chunks,
      data: data.inline,
      data_chunks: data.chunks,
      data_etag: view.dataEtag,
      log: view.log,
      rendered_at: view.renderedAt,
      entry_count: view.entryCount,
    };
    await this.heads.replaceOne({ _id: key }, doc, { upsert: true });
    const keep = [renderId, ...(previous ? [previous.render_id] : [])];
    await this.chunks.deleteMany({ view: key, render_id: { $nin: keep } });
  }

  async get(collectionId: string, name: string): Promise<RenderedView | undefined> {
    const key = compositeKey(collectionId, name);
    const doc = await this.heads.findOne({ _id: key }, { projection: { data: 0 } });
    if (doc === null) return undefined;
    return {
      collectionId,
      name,
      contentType: doc.content_type,
      etag: doc.etag,
      body: await this.readPart(doc, 'body'),
      renderedAt: doc.rendered_at,
      entryCount: doc.entry_count,
      data: Buffer.alloc(0),
      dataEtag: doc.data_etag,
      log: doc.log,
    };
  }

  async etag(collectionId: string, name: string): Promise<string | undefined> {
    const doc = await this.heads.findOne(
      { _id: compositeKey(collectionId, name) },
      { projection: { _id: 0, etag: 1 } },
    );
    return doc?.etag;
  }

  async data(
    collectionId: string,
    name: string,
    withoutData: boolean,
  ): Promise<{ etag: string; dataEtag: string; data: Buffer } | undefined> {
    const doc = await this.heads.findOne(
      { _id: compositeKey(collectionId, name) },
      { projection: withoutData ? { body: 0, log: 0, data: 0 } : { body: 0, log: 0 } },
    );
    if (doc === null) return undefined;
    const data = withoutData ? Buffer.alloc(0) : await this.readPart(doc, 'data');
    return { etag: doc.etag, dataEtag: doc.data_etag, data };
  }

  async log(
    collectionId: string,
    name: string,
  ): Promise<{ etag: string; renderedAt: number; log: string } | undefined> {
    const doc = await this.heads.findOne(
      { _id: compositeKey(collectionId, name) },
      { projection: { _id: 0, etag: 1, rendered_at: 1, log: 1 } },
    );
    if (doc === null) return undefined;
    return { etag: doc.etag, renderedAt: doc.rendered_at, log: doc.log };
  }

  private async writePart(
    key: string,
    renderId: string,
    part: Part,
    bytes: Buffer,
  ): Promise<{ inline?: Binary; chunks: number }> {
    if (bytes.length <= VIEW_INLINE_BYTES) return { inline: new Binary(bytes), chunks: 0 };
    let seq = 0;
    for (let offset = 0; offset < bytes.length; offset += VIEW_INLINE_BYTES) {
      await this.chunks.insertOne({
        _id: compositeKey(key, renderId, part, String(seq)),
        view: key,
        render_id: renderId,
        part,
        seq,
        bytes: new Binary(bytes.subarray(offset, offset + VIEW_INLINE_BYTES)),
      });
      seq += 1;
    }
    return { chunks: seq };
  }

  private async readPart(doc: ViewDoc, part: Part): Promise<Buffer> {
    const inline = part === 'body' ? doc.body : doc.data;
    if (inline !== undefined) return bufferOf(inline);
    const expected = part === 'body' ? doc.body_chunks : doc.data_chunks;
    if (expected === 0) return Buffer.alloc(0);
    const chunks = await this.chunks
      .find({ view: doc._id, render_id: doc.render_id, part })
      .sort({ seq: 1 })
      .toArray();
    if (chunks.length !== expected) {
      throw new Error(
        `view ${doc._id} render ${doc.render_id} has ${chunks.length} ${part} chunks of ${expected}`,
      );
    }
    return Buffer.concat(chunks.map((chunk) => bufferOf(chunk.bytes)));
  }
}
