import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';

import Koa from 'koa';
import { pino } from 'pino';

import type { CollectionRecord, ObjectVersionInput, Store } from '../../src/store/index.js';
import { createSqliteStore } from '../../src/store/sqlite/index.js';
import { createTaxiiRouter } from '../../src/taxii/index.js';

export const CURSOR_SECRET = 'test-cursor-secret';

export interface TaxiiFixture {
  store: Store;
  baseUrl: string;
  close(): Promise<void>;
}

/** Opens a store on a fresh temp file and serves the TAXII router on 127.0.0.1. */
export async function startTaxii(options: { maxPageSize?: number } = {}): Promise<TaxiiFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'feedhub-taxii-'));
  const store = createSqliteStore({ file: join(dir, 'hub.sqlite') });
  await store.init();

  const router = createTaxiiRouter({
    store,
    logger: pino({ level: 'silent' }),
    publicUrl: 'https://hub.example.test/',
    title: 'Test hub',
    description: 'Hub under test',
    apiRootPath: 'hub',
    maxPageSize: options.maxPageSize ?? 1000,
    cursorSecret: CURSOR_SECRET,
  });
  const app = new Koa();
  app.use(router.routes());

  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const { port } = server.address() as AddressInfo;

  return {
    store,
    baseUrl: `http://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function buildCollection(overrides: Partial<CollectionRecord> = {}): CollectionRecord {
  return {
    id: randomUUID(),
    alias: `c-${randomUUID().slice(0, 8)}`,
    title: 'Test collection',
    canRead: true,
    canWrite: false,
    mediaTypes: ['application/stix+json;version=2.1'],
    ...overrides,
  };
}

let counter = 0;

/** Builds an indicator version; `modified` is a STIX timestamp and sets the version key. */
export function buildObject(
  overrides: { id?: string; type?: string; modified?: string; specVersion?: string } = {},
): ObjectVersionInput {
  counter += 1;
  const type = overrides.type ?? 'indicator';
  const id = overrides.id ?? `${type}--${randomUUID()}`;
  const modified = overrides.modified ?? '2024-01-02T03:04:05.000Z';
  const specVersion = overrides.specVersion ?? '2.1';
  const object = {
    type,
    spec_version: specVersion,
    id,
    created: '2024-01-01T00:00:00.000Z',
    modified,
    name: `object ${counter}`,
    pattern: `[ipv4-addr:value = '10.0.${Math.floor(counter / 256) % 256}.${counter % 256}']`,
    pattern_type: 'stix',
    valid_from: '2024-01-01T00:00:00Z',
  };
  return { id, type, version: toKey(modified), specVersion, json: JSON.stringify(object) };
}

/** The six-digit version key of a millisecond STIX timestamp. */
function toKey(timestamp: string): string {
  return timestamp.replace(/\.(\d{3})Z$/, '.$1000Z');
}

export const TAXII = 'application/taxii+json;version=2.1';

export interface ErrorBody {
  title: string;
  description?: string;
  error_code?: string;
  http_status: string;
}

/** Reads a TAXII error resource. */
export async function readError(response: Response): Promise<ErrorBody> {
  return (await response.json()) as ErrorBody;
}
