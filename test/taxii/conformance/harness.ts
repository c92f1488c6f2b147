/**
 * Runs a conformance test file against a TAXII server on every store: always
 * on a temporary SQLite file, and on MongoDB when MONGODB_URI is set. In CI
 * (`CI` set) a missing MONGODB_URI fails instead of skipping, as in
 * test/store/mongo.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, it } from '@jest/globals';
import Koa from 'koa';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';

import { createAuthenticator, hashSecret, type PrincipalConfig } from '../../../src/auth/index.js';
import type { CollectionAccess, CollectionRecord, Store } from '../../../src/store/index.js';
import { createMongoStore } from '../../../src/store/mongo/index.js';
import { createSqliteStore } from '../../../src/store/sqlite/index.js';
import { createTaxiiRouter, type TaxiiDeps } from '../../../src/taxii/index.js';

export const TAXII = 'application/taxii+json;version=2.1';
export const STIX = 'application/stix+json;version=2.1';
export const ROOT = '/taxii2/hub/';

/** Test principals: name, password and API key token. */
export const USERS = {
  alice: { password: 'alice-password', token: 'alice-key.alice-secret-value' },
  bob: { password: 'bob-password', token: 'bob-key.bob-secret-value' },
  carol: { password: 'carol-password', token: 'carol-key.carol-secret-value' },
} as const;
export type User = keyof typeof USERS;

/** The collections every server starts with, by role. */
export interface Collections {
  /** Public read; alice writes. */
  open: CollectionRecord;
  /** alice reads and writes; bob reads. Not public. */
  shared: CollectionRecord;
  /** carol writes only (an inbox). */
  inbox: CollectionRecord;
  /** No one may use it. */
  hidden: CollectionRecord;
}

export interface Hub {
  store: Store;
  baseUrl: string;
  collections: Collections;
  /** Creates a fresh collection with these grants (default: alice reads and writes). */
  addCollection(access?: Partial<CollectionAccess>): Promise<CollectionRecord>;
}

export interface HubOptions {
  maxPageSize?: number;
  maxContentLength?: number;
  /** Failed logins allowed per address and principal before 429. Default 1000. */
  throttleCapacity?: number;
}

interface StoreFactory {
  name: string;
  open(): Promise<{ store: Store; cleanup(): Promise<void> }>;
}

let principalsPromise: Promise<PrincipalConfig[]> | undefined;

/** Hashes the test credentials once per test file. */
function principals(): Promise<PrincipalConfig[]> {
  principalsPromise ??= Promise.all(
    (Object.keys(USERS) as User[]).map(async (name) => {
      const [keyId, secret] = USERS[name].token.split('.') as [string, string];
      return {
        name,
        password: await hashSecret(USERS[name].password),
        apiKeys: [{ id: keyId, hash: await hashSecret(secret) }],
      };
    }),
  );
  return principalsPromise;
}

function sqliteFactory(): StoreFactory {
  return {
    name: 'sqlite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'feedhub-conformance-'));
      const store = createSqliteStore({ file: join(dir, 'hub.sqlite') });
      return {
        store,
        async cleanup() {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

function mongoFactory(uri: string): StoreFactory {
  return {
    name: 'mongo',
    async open() {
      const dbName = `feedhub_conformance_${randomUUID().replaceAll('-', '')}`;
      const store = createMongoStore({ uri, dbName });
      return {
        store,
        async cleanup() {
          await store.close();
          const client = new MongoClient(uri);
          try {
            await client.db(dbName).dropDatabase();
          } finally {
            await client.close();
          }
        },
      };
    },
  };
}

function collection(title: string, access: CollectionAccess): CollectionRecord {
  const id = randomUUID();
  return {
    id,
    alias: `c-${id.slice(0, 8)}`,
    title,
    canRead: true,
    canWrite: true,
    mediaTypes: [STIX],
    access,
  };
}

async function startHub(factory: StoreFactory, options: HubOptions) {
  const opened = await factory.open();
  const { store } = opened;
  await store.init();

  const logger = pino({ level: 'silent' });
  const deps: TaxiiDeps = {
    store,
    logger,
    publicUrl: 'https://hub.example.test',
    title: 'Conformance hub',
    apiRootPath: 'hub',
    maxPageSize: options.maxPageSize ?? 100,
    cursorSecret: 'conformance-cursor-secret',
    authenticator: createAuthenticator({
      principals: await principals(),
      logger,
      // Loose by default, so that only the throttling tests hit it.
      throttle: { capacity: options.throttleCapacity ?? 1000 },
    }),
  };
  if (options.maxContentLength !== undefined) deps.maxContentLength = options.maxContentLength;
  const app = new Koa();
  app.use(createTaxiiRouter(deps).routes());
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const { port } = server.address() as AddressInfo;

  const collections: Collections = {
    open: collection('Open', { public: true, read: [], write: ['alice'] }),
    shared: collection('Shared', { public: false, read: ['alice', 'bob'], write: ['alice'] }),
    inbox: collection('Inbox', { public: false, read: [], write: ['carol'] }),
    hidden: collection('Hidden', { public: false, read: [], write: [] }),
  };
  for (const record of Object.values(collections)) await store.upsertCollection(record);

  const hub: Hub = {
    store,
    baseUrl: `http://127.0.0.1:${port}`,
    collections,
    async addCollection(access = {}) {
      const record = collection('Extra', {
        public: access.public ?? false,
        read: access.read ?? ['alice'],
        write: access.write ?? ['alice'],
      });
      await store.upsertCollection(record);
      return record;
    },
  };
  return {
    hub,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await opened.cleanup();
    },
  };
}

/**
 * Defines `body` once per store, each run with its own server and database.
 * `body` receives a getter, because the hub starts in `beforeAll`.
 */
export function describeOnStores(
  title: string,
  body: (hub: () => Hub) => void,
  options: HubOptions = {},
): void {
  const factories = [sqliteFactory()];
  const uri = process.env.MONGODB_URI;
  if (uri !== undefined && uri !== '') {
    factories.push(mongoFactory(uri));
  } else if (process.env.CI !== undefined && process.env.CI !== '') {
    describe(`${title} [mongo]`, () => {
      it('MONGODB_URI is set', () => {
        throw new Error(
          'MONGODB_URI is required in CI: start FerretDB with `.ci/ferretdb.sh start DIR` and export the URI it prints',
        );
      });
    });
  }

  for (const factory of factories) {
    describe(`${title} [${factory.name}]`, () => {
      let started: Awaited<ReturnType<typeof startHub>> | undefined;
      beforeAll(async () => {
        started = await startHub(factory, options);
      });
      afterAll(async () => {
        await started?.close();
      });
      body(() => {
        if (started === undefined) throw new Error('the hub did not start; see beforeAll');
        return started.hub;
      });
    });
  }
}

export interface RequestOptions {
  method?: string;
  /** Credentials: a user by Basic, a user by API key, or raw `Authorization`. */
  as?: User;
  asKey?: User;
  authorization?: string;
  headers?: Record<string, string>;
  body?: string | object;
  contentType?: string;
}

/** Sends one request to the hub; paths are relative to the API root unless they start with `/`. */
export function request(hub: Hub, path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: TAXII, ...options.headers };
  if (options.as !== undefined) {
    const credentials = `${options.as}:${USERS[options.as].password}`;
    headers['Authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
  if (options.asKey !== undefined)
    headers['Authorization'] = `Bearer ${USERS[options.asKey].token}`;
  if (options.authorization !== undefined) headers['Authorization'] = options.authorization;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['Content-Type'] = options.contentType ?? TAXII;
  }
  const url = `${hub.baseUrl}${path.startsWith('/') ? path : ROOT + path}`;
  return fetch(url, {
    method: options.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    body,
  });
}

/** Returns the path of a collection resource relative to the API root. */
export function collectionPath(record: CollectionRecord, rest = ''): string {
  return `collections/${record.id}/${rest}`;
}

let sequence = 0;

/** Builds a valid STIX 2.1 indicator; `modified` defaults to `created`. */
export function indicator(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  sequence += 1;
  const created = (overrides['created'] as string | undefined) ?? '2024-01-01T00:00:00.000Z';
  return {
    type: 'indicator',
    spec_version: '2.1',
    id: `indicator--${randomUUID()}`,
    created,
    modified: created,
    name: `indicator ${sequence}`,
    pattern: `[ipv4-addr:value = '198.51.100.${sequence % 256}']`,
    pattern_type: 'stix',
    valid_from: '2024-01-01T00:00:00Z',
    ...overrides,
  };
}

/** Builds an IPv4 address SCO, which has neither `created` nor `modified`. */
export function ipv4(value: string): Record<string, unknown> {
  return { type: 'ipv4-addr', spec_version: '2.1', id: `ipv4-addr--${randomUUID()}`, value };
}

export interface StatusBody {
  id: string;
  status: string;
  request_timestamp?: string;
  total_count: number;
  success_count: number;
  successes?: { id: string; version: string; message?: string }[];
  failure_count: number;
  failures?: { id: string; version: string; message?: string }[];
  pending_count: number;
  pendings?: unknown[];
}

export interface EnvelopeBody {
  more?: boolean;
  next?: string;
  objects?: Record<string, unknown>[];
}

/** Adds objects to a collection as `as` and returns the status resource. */
export async function addObjects(
  hub: Hub,
  record: CollectionRecord,
  objects: unknown[],
  as: User = 'alice',
): Promise<StatusBody> {
  const response = await request(hub, collectionPath(record, 'objects/'), {
    as,
    body: { objects },
  });
  if (response.status !== 202) {
    throw new Error(`adding objects returned ${response.status}: ${await response.text()}`);
  }
  return (await response.json()) as StatusBody;
}

/** Reads every page of a paged resource and returns the pages. */
export async function readAllPages(
  hub: Hub,
  path: string,
  query: Record<string, string>,
  as: User = 'alice',
): Promise<EnvelopeBody[]> {
  const pages: EnvelopeBody[] = [];
  let next: string | undefined;
  do {
    const params = new URLSearchParams(query);
    if (next !== undefined) params.set('next', next);
    const response = await request(hub, `${path}?${params.toString()}`, { as });
    if (response.status !== 200) throw new Error(`page returned ${response.status}`);
    const page = (await response.json()) as EnvelopeBody;
    pages.push(page);
    next = page.next;
  } while (next !== undefined);
  return pages;
}
