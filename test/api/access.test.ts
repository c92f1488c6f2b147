/**
 * The access matrix of every operation of the OpenAPI document for every
 * kind of caller, and bad inputs on every operation that takes a body.
 */
import { jest } from '@jest/globals';

import { FeedServer } from '../helpers/feed-server.js';
import { testStores } from '../helpers/stores.js';
import { call, ipCollectionYaml, startApiHub, userToken, type ApiHub } from './helpers.js';

jest.setTimeout(120_000);

type Role = 'read-only' | 'analyst' | 'admin';
const RANK: Record<Role, number> = { 'read-only': 0, analyst: 1, admin: 2 };

interface Operation {
  method: string;
  path: string;
  role: Role;
  operationId: string;
  body?: Record<string, unknown>;
}

/**
 * Fills path parameters with names that do not exist: the role check comes
 * first, and an allowed call then changes nothing.
 */
function concrete(path: string): string {
  return path
    .replace('{collection}', 'no-such-collection')
    .replace('{source}', 'list')
    .replace('{view}', 'ip')
    .replace('{list}', 'allow-list')
    .replace('{name}', 'nobody-here')
    .replace('{key}', 'fh_none');
}

// Only the first store: the matrix is about the API, not the adapter.
const store = testStores()[0]!;

describe('access matrix and bad inputs', () => {
  const feeds = new FeedServer();
  let api: ApiHub;
  const tokens: Record<string, string | undefined> = {};
  const operations: Operation[] = [];

  beforeAll(async () => {
    await feeds.start();
    feeds.set('/list.txt', { kind: 'body', body: '198.51.100.1\n' });
    api = await startApiHub(store, { 'blocklist.yaml': ipCollectionYaml(feeds.url('/list.txt')) });
    tokens.admin = api.adminToken;
    tokens.analyst = await userToken(api, 'an', 'analyst');
    tokens['read-only'] = await userToken(api, 'ro', 'read-only');
    tokens.partner = api.partnerToken;
    const document = (await (await fetch(`${api.hub.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, Record<string, unknown>>>;
    };
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        operations.push({
          method: method.toUpperCase(),
          path,
          role: op['x-feedhub-role'] as Role,
          operationId: op.operationId as string,
        });
      }
    }
  });

  afterAll(async () => {
    await api.stop();
    await feeds.stop();
  });

  it('covers every operation', () => {
    expect(operations.length).toBeGreaterThanOrEqual(30);
    expect(new Set(operations.map((o) => o.role))).toEqual(
      new Set(['read-only', 'analyst', 'admin']),
    );
  });

  it('anonymous and wrong credentials get 401 everywhere', async () => {
    for (const op of operations) {
      const anonymous = await call(api.hub, op.method, concrete(op.path));
      expect([op.operationId, anonymous.status]).toEqual([op.operationId, 401]);
      expect(anonymous.headers.get('www-authenticate')).toContain('Bearer');
    }
    // A few only: failed logins from one address are throttled (see the last test).
    for (const op of operations.slice(0, 5)) {
      const wrong = await call(api.hub, op.method, concrete(op.path), {
        token: 'root-key.not-the-secret',
      });
      expect([op.operationId, wrong.status]).toEqual([op.operationId, 401]);
    }
  });

  it('each role gets 403 exactly where its rank is too low; a partner everywhere', async () => {
    for (const op of operations) {
      for (const caller of ['read-only', 'analyst', 'admin', 'partner'] as const) {
        const allowed = caller !== 'partner' && RANK[caller] >= RANK[op.role];
        // Writes are sent without a body: an allowed caller gets past the role check and fails validation instead.
        const result = await call(api.hub, op.method, concrete(op.path), { token: tokens[caller] });
        const label = `${caller} ${op.method} ${op.path}`;
        if (allowed)
          expect([label, result.status === 403 || result.status === 401]).toEqual([label, false]);
        else expect([label, result.status]).toEqual([label, 403]);
        expect([label, result.status < 500]).toEqual([label, true]);
        expect(typeof result.json?.code === 'string' || result.status < 300).toBe(true);
      }
    }
  });

  it('bad bodies: wrong types, unknown fields, operators, broken JSON, huge, invalid UTF-8, wrong media type', async () => {
    const post = (path: string, options: Parameters<typeof call>[3]) =>
      call(api.hub, 'POST', path, { token: tokens.admin, ...options });
    const wrongType = await post('/collections/blocklist/manual', { body: { value: 42 } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.json).toMatchObject({ code: 'invalid_body', field: '/value' });
    const unknown = await post('/collections/blocklist/manual', {
      body: { value: '198.51.100.9', colour: 'red' },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.json.message).toContain('colour');
    const operator = await post('/collections/blocklist/manual', { body: { value: { $gt: '' } } });
    expect(operator.status).toBe(400);
    const nameOperator = await post('/principals', { body: { name: { $ne: null }, kind: 'user' } });
    expect(nameOperator.status).toBe(400);
    const keyOperator = await post('/collections/blocklist/entries/allow-list', {
      body: { entry: '10.0.0.0/8', $where: 'x' },
    });
    expect(keyOperator.status).toBe(400);
    const broken = await post('/collections', { raw: '{"id": ', contentType: 'application/json' });
    expect(broken.status).toBe(400);
    expect(broken.json.code).toBe('invalid_body');
    const huge = await post('/collections', {
      raw: `{"title":"${'x'.repeat(2 * 1024 * 1024)}"}`,
      contentType: 'application/json',
    });
    expect(huge.status).toBe(413);
    expect(huge.json.code).toBe('payload_too_large');
    const utf8 = await post('/collections/blocklist/manual/bulk', {
      raw: Buffer.from([0x31, 0x2e, 0x32, 0xff, 0xfe, 0x0a]),
      contentType: 'text/plain',
    });
    expect(utf8.status).toBe(400);
    expect(utf8.json.code).toBe('invalid_encoding');
    const media = await post('/collections/blocklist/manual', {
      raw: 'value=1.2.3.4',
      contentType: 'application/x-www-form-urlencoded',
    });
    expect(media.status).toBe(415);
    const query = await call(api.hub, 'GET', '/collections?limit=0', { token: tokens.admin });
    expect(query.status).toBe(400);
    expect(query.json).toMatchObject({ code: 'invalid_query', field: 'limit' });
    const unknownQuery = await call(api.hub, 'GET', '/collections?colour=red', {
      token: tokens.admin,
    });
    expect(unknownQuery.status).toBe(400);
    const cursor = await call(api.hub, 'GET', '/collections?cursor=bm90LWEtY3Vyc29y', {
      token: tokens.admin,
    });
    expect(cursor.status).toBe(400);
    // Nothing was stored by any of them.
    const entries = await call(api.hub, 'GET', '/collections/blocklist/manual', {
      token: tokens.admin,
    });
    expect([entries.status, entries.text, entries.json?.items]).toEqual([
      200,
      expect.anything(),
      [],
    ]);
  });

  it('unknown paths and methods answer JSON errors', async () => {
    const missing = await call(api.hub, 'GET', '/nothing-here', { token: tokens.admin });
    expect(missing.status).toBe(404);
    expect(missing.json.code).toBe('not_found');
    const method = await call(api.hub, 'PATCH', '/collections', { token: tokens.admin });
    expect(method.status).toBe(405);
    expect(method.headers.get('allow')).toContain('GET');
  });

  it('repeated failed logins are throttled', async () => {
    let last = 0;
    for (let i = 0; i < 30 && last !== 429; i += 1) {
      last = (await call(api.hub, 'GET', '/me', { token: 'fh_guess.wrong-secret' })).status;
    }
    expect(last).toBe(429);
  });

  it('serves the OpenAPI document and a docs page without credentials', async () => {
    const document = await fetch(`${api.hub.url}/api/v1/openapi.json`);
    expect(document.status).toBe(200);
    const body = (await document.json()) as {
      openapi: string;
      components: { schemas: Record<string, unknown> };
    };
    expect(body.openapi).toBe('3.1.0');
    expect(Object.keys(body.components.schemas)).toEqual(
      expect.arrayContaining(['collection', 'collections.Collection', 'common.Error']),
    );
    const page = await fetch(`${api.hub.url}/api/v1/docs`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('createCollection');
  });
});
