import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/app/config.js';
import { createLogger } from '../../src/app/logger.js';
import { SOURCE_KINDS, type ReadContext, type ReadResult } from '../../src/sources/index.js';
import type { Taxii21Settings } from '../../src/sources/index.js';
import type { HttpSettings } from '../../src/sources/http-client.js';
import type { SourceSettings } from '../../src/sources/kinds.js';

const TAXII = 'application/taxii+json;version=2.1';
const COLLECTION = '52892447-4d7e-4f70-b94d-d7f22742ff63';

type Handler = (
  req: IncomingMessage,
  url: URL,
) => { status: number; headers?: Record<string, string>; body: string };

/** A scripted TAXII server on 127.0.0.1; each test sets the handler and reads the request log. */
class ScriptedServer {
  handler: Handler = () => ({ status: 404, body: '' });
  readonly requests: { url: URL; authorization?: string; accept?: string }[] = [];
  private server?: Server;
  base = '';

  async start(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', this.base);
      this.requests.push({
        url,
        authorization: req.headers.authorization,
        accept: req.headers.accept,
      });
      const reply = this.handler(req, url);
      res.writeHead(reply.status, { 'content-type': TAXII, ...reply.headers }).end(reply.body);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }
}

function indicator(n: number, pattern: string, extra: Record<string, unknown> = {}): string {
  const id = `indicator--00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  return JSON.stringify({
    type: 'indicator',
    spec_version: '2.1',
    id,
    created: '2024-01-02T03:04:05.123456Z',
    modified: '2024-01-02T03:04:05.123456Z',
    pattern,
    pattern_type: 'stix',
    valid_from: '2024-01-02T03:04:05Z',
    ...extra,
  });
}

function settings(
  server: ScriptedServer,
  overrides: Partial<Taxii21Settings> = {},
  http: Partial<HttpSettings> = {},
): SourceSettings {
  return {
    id: 'upstream',
    name: 'upstream',
    kind: 'taxii21',
    url: `${server.base}/api1/`,
    valueType: 'auto',
    timeoutMs: 2000,
    maxBytes: 1024 * 1024,
    taxii21: {
      apiRootUrl: `${server.base}/api1/`,
      collection: { id: COLLECTION },
      limit: 2,
      maxPages: 10,
      ...overrides,
    },
    http: { maxRetries: 2, retryDelayMs: 10, ...http },
  };
}

async function read(
  source: SourceSettings,
  cursor?: Record<string, unknown>,
): Promise<Extract<ReadResult, { kind: 'data' }>> {
  const context: ReadContext = {
    source,
    previous: cursor ? { collectionId: 'c', sourceId: source.id, cursor } : undefined,
    userAgent: 'feedhub-test',
    logger: createLogger('silent'),
  };
  const result = await SOURCE_KINDS.taxii21!.read(context);
  if (result.kind !== 'data') throw new Error('expected data');
  return result;
}

const collectionBody = JSON.stringify({
  id: COLLECTION,
  title: 'Intel',
  can_read: true,
  can_write: false,
});

/** Serves OBJECTS in pages of `limit` with `next` tokens that are page numbers, like a TAXII 2.1 server. */
function pagedObjects(objects: string[], dateAdded: (index: number) => string): Handler {
  return (_req, url) => {
    if (url.pathname === `/api1/collections/${COLLECTION}/`)
      return { status: 200, body: collectionBody };
    if (url.pathname !== `/api1/collections/${COLLECTION}/objects/`)
      return { status: 404, body: '{}' };
    const limit = Number(url.searchParams.get('limit'));
    const after = url.searchParams.get('added_after');
    const eligible = objects
      .map((text, index) => ({ text, index }))
      .filter(({ index }) => !after || dateAdded(index) > after);
    const start = Number(url.searchParams.get('next') ?? '0');
    const page = eligible.slice(start, start + limit);
    const more = start + limit < eligible.length;
    const headers: Record<string, string> = {};
    if (page.length > 0) {
      headers['X-TAXII-Date-Added-First'] = dateAdded(page[0]!.index);
      headers['X-TAXII-Date-Added-Last'] = dateAdded(page[page.length - 1]!.index);
    }
    const envelope =
      page.length === 0
        ? '{}'
        : `{"more":${more},${more ? `"next":"${start + limit}",` : ''}"objects":[${page.map((p) => p.text).join(',')}]}`;
    return { status: 200, headers, body: envelope };
  };
}

const added = (index: number) => `2025-01-01T00:00:${String(index).padStart(2, '0')}.000000Z`;

describe('taxii21 source', () => {
  const server = new ScriptedServer();
  beforeAll(() => server.start());
  afterAll(() => server.stop());
  beforeEach(() => {
    server.requests.length = 0;
  });

  it('pages with next and keeps each object text', async () => {
    // Whitespace, an escaped character and a number written as 1.0 must survive unchanged.
    const objects = [
      indicator(1, "[ipv4-addr:value = '198.51.100.1']"),
      '{ "type": "identity", "spec_version": "2.1", "id": "identity--11111111-1111-4111-8111-111111111111", "created": "2024-01-02T03:04:05.1Z", "modified": "2024-01-02T03:04:05.1Z", "name": "caf\\u00e9", "x_score": 1.0 }',
      indicator(3, "[domain-name:value = 'Bad.Example.COM']"),
      indicator(4, "[file:hashes.'SHA-256' = 'aa'] AND [ipv4-addr:value = '198.51.100.4']"),
      indicator(5, "[ipv4-addr:value = '198.51.100.5']", { revoked: true }),
    ];
    server.handler = pagedObjects(objects, added);

    const result = await read(settings(server));

    expect(result.objects.map((o) => o.json)).toEqual(objects);
    expect(result.objects[1]!.version).toBe('2024-01-02T03:04:05.100000Z');
    expect(result.entries).toEqual([
      { type: 'ipv4', value: '198.51.100.1' },
      { type: 'domain', value: 'bad.example.com' },
    ]);
    expect(result.complete).toBe(false);
    expect(result.stats.pages).toBe(3);
    expect(result.cursor).toEqual({
      objectsUrl: `${server.base}/api1/collections/${COLLECTION}/objects/`,
      addedAfter: added(4),
    });
    const objectRequests = server.requests.filter((r) => r.url.pathname.endsWith('/objects/'));
    expect(objectRequests.map((r) => r.url.searchParams.get('next'))).toEqual([null, '2', '4']);
    expect(objectRequests.every((r) => r.url.searchParams.get('match[version]') === 'all')).toBe(
      true,
    );
    expect(server.requests.every((r) => r.accept === TAXII)).toBe(true);
  });

  it('resumes from the stored added_after', async () => {
    const objects = [1, 2, 3].map((n) => indicator(n, `[ipv4-addr:value = '198.51.100.${n}']`));
    server.handler = pagedObjects(objects, added);
    const objectsUrl = `${server.base}/api1/collections/${COLLECTION}/objects/`;

    const result = await read(settings(server), { objectsUrl, addedAfter: added(1) });

    expect(result.objects.map((o) => o.json)).toEqual(objects.slice(2));
    expect(server.requests.at(-1)!.url.searchParams.get('added_after')).toBe(added(1));
    expect(result.cursor).toEqual({ objectsUrl, addedAfter: added(2) });
  });

  it('keeps the cursor when nothing is new', async () => {
    server.handler = pagedObjects([indicator(1, "[ipv4-addr:value = '198.51.100.1']")], added);
    const cursor = {
      objectsUrl: `${server.base}/api1/collections/${COLLECTION}/objects/`,
      addedAfter: added(0),
    };

    const result = await read(settings(server), cursor);

    expect(result.objects).toHaveLength(0);
    expect(result.cursor).toEqual(cursor);
  });

  it('ignores a cursor of another collection', async () => {
    server.handler = pagedObjects([indicator(1, "[ipv4-addr:value = '198.51.100.1']")], added);

    const result = await read(settings(server), {
      objectsUrl: 'http://127.0.0.1:1/other/',
      addedAfter: added(5),
    });

    expect(result.objects).toHaveLength(1);
    expect(server.requests.at(-1)!.url.searchParams.has('added_after')).toBe(false);
  });

  it('stops at maxPages one microsecond before the last date_added', async () => {
    const objects = [1, 2, 3, 4, 5].map((n) =>
      indicator(n, `[ipv4-addr:value = '198.51.100.${n}']`),
    );
    server.handler = pagedObjects(objects, added);

    const result = await read(settings(server, { maxPages: 2 }));

    expect(result.objects).toHaveLength(4);
    expect(result.cursor?.addedAfter).toBe('2025-01-01T00:00:02.999999Z');
  });

  it('finds the default API root and the collection by title', async () => {
    server.handler = (req, url) => {
      if (url.pathname === '/taxii2/') {
        return {
          status: 200,
          body: JSON.stringify({ title: 'T', default: '/api1/', api_roots: ['/api1/'] }),
        };
      }
      if (url.pathname === '/api1/collections/') {
        return { status: 200, body: JSON.stringify({ collections: [JSON.parse(collectionBody)] }) };
      }
      return pagedObjects([indicator(1, "[url:value = 'http://a.example/x']")], added)(req, url);
    };
    const source = settings(server, {
      apiRootUrl: undefined,
      discoveryUrl: `${server.base}/taxii2/`,
      collection: { title: 'Intel' },
    });

    const result = await read(source);

    expect(result.entries).toEqual([{ type: 'url', value: 'http://a.example/x' }]);
    expect(server.requests.map((r) => r.url.pathname)).toEqual([
      '/taxii2/',
      '/api1/collections/',
      `/api1/collections/${COLLECTION}/objects/`,
    ]);
  });

  it('names the titles when none matches', async () => {
    server.handler = () => ({
      status: 200,
      body: JSON.stringify({ collections: [JSON.parse(collectionBody)] }),
    });

    await expect(read(settings(server, { collection: { title: 'Nope' } }))).rejects.toThrow(
      /no collection titled "Nope" .*available: "Intel"/,
    );
  });

  it('sends the Authorization header', async () => {
    server.handler = pagedObjects([], added);

    await read(
      settings(server, {}, { authHeader: { name: 'Authorization', value: 'Bearer t0ken' } }),
    );

    expect(server.requests.map((r) => r.authorization)).toEqual(['Bearer t0ken', 'Bearer t0ken']);
  });

  it('retries 429 and 503 and honours Retry-After', async () => {
    const inner = pagedObjects([indicator(1, "[ipv4-addr:value = '198.51.100.1']")], added);
    let calls = 0;
    server.handler = (req, url) => {
      if (url.pathname.endsWith('/objects/')) {
        calls += 1;
        if (calls === 1)
          return { status: 429, headers: { 'Retry-After': '1' }, body: '{"title":"slow down"}' };
        if (calls === 2) return { status: 503, body: 'busy' };
      }
      return inner(req, url);
    };
    const started = Date.now();

    const result = await read(settings(server));

    expect(result.objects).toHaveLength(1);
    expect(calls).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it('gives up after maxRetries with the status', async () => {
    server.handler = (_req, url) =>
      url.pathname.endsWith('/objects/')
        ? { status: 502, body: '' }
        : { status: 200, body: collectionBody };

    await expect(read(settings(server, {}, { maxRetries: 1 }))).rejects.toThrow(
      /objects\/.* failed after 2 attempts: HTTP 502/,
    );
  });

  it('rejects a Retry-After beyond 60 seconds', async () => {
    server.handler = () => ({ status: 429, headers: { 'Retry-After': '3600' }, body: '' });

    await expect(read(settings(server))).rejects.toThrow(/Retry-After/);
  });

  it('retries a refused connection, then names the URL', async () => {
    const source = settings(server, { apiRootUrl: 'http://127.0.0.1:1/api1/' }, { maxRetries: 1 });

    await expect(read(source)).rejects.toThrow(
      /127\.0\.0\.1:1\/api1\/collections\/.* failed after 2 attempts/,
    );
  });

  it('rejects a body that is not TAXII', async () => {
    server.handler = () => ({
      status: 200,
      headers: { 'content-type': 'text/html' },
      body: '<html></html>',
    });

    await expect(read(settings(server))).rejects.toThrow(
      /Content-Type "text\/html", expected application\/taxii\+json;version=2\.1/,
    );
  });

  it('rejects an envelope whose objects is not an array', async () => {
    server.handler = (_req, url) =>
      url.pathname.endsWith('/objects/')
        ? { status: 200, body: '{"objects":{}}' }
        : { status: 200, body: collectionBody };

    await expect(read(settings(server))).rejects.toThrow(
      /objects\/\?limit=2.*invalid envelope: objects must be an array/,
    );
  });

  it('reports a 401 with a hint', async () => {
    server.handler = () => ({
      status: 401,
      body: '{"title":"Unauthorized","description":"bad credentials"}',
    });

    await expect(read(settings(server))).rejects.toThrow(
      /HTTP 401 \(Unauthorized: bad credentials\); check the credentials/,
    );
  });

  it('skips and counts an invalid object', async () => {
    server.handler = pagedObjects(
      ['{"type":"indicator","id":"not-an-id"}', indicator(2, "[ipv4-addr:value = '198.51.100.2']")],
      added,
    );

    const result = await read(settings(server));

    expect(result.objects).toHaveLength(1);
    expect(result.stats.invalid).toBe(1);
    expect(result.stats.invalidExamples?.[0]?.reason).toMatch(/invalid STIX id/);
  });
});

describe('taxii21 source configuration', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'feedhub-taxii21-config-'));
    mkdirSync(join(dir, 'collections'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const load = (yaml: string, env: Record<string, string> = {}) => {
    writeFileSync(
      join(dir, 'collections', 'c.yaml'),
      `id: ${COLLECTION}\nalias: c\ntitle: C\nsources:\n${yaml}`,
    );
    return loadConfig({
      FEEDHUB_COLLECTIONS_DIR: join(dir, 'collections'),
      FEEDHUB_DATA_DIR: join(dir, 'data'),
      ...env,
    });
  };
  const problems = (yaml: string, env: Record<string, string> = {}): string[] => {
    try {
      load(yaml, env);
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
    return [];
  };

  it('resolves credentials and defaults', () => {
    const config = load(
      `  - id: up
    kind: taxii21
    url: http://127.0.0.1:9/taxii2/
    collectionTitle: Intel
    auth: { type: basic, usernameEnv: UP_USER, passwordEnv: UP_PASSWORD }
    interval: 15m
`,
      { UP_USER: 'alice', UP_PASSWORD: 's3cret' },
    );
    const source = config.collections[0]!.sources[0]!;
    expect(source.kind).toBe('taxii21');
    expect(source.taxii21).toEqual({
      discoveryUrl: 'http://127.0.0.1:9/taxii2/',
      apiRootUrl: undefined,
      collection: { title: 'Intel' },
      limit: 1000,
      maxPages: 100,
    });
    expect(source.http).toEqual({
      authHeader: {
        name: 'Authorization',
        value: `Basic ${Buffer.from('alice:s3cret').toString('base64')}`,
      },
      maxRetries: 3,
      retryDelayMs: 1000,
    });
  });

  it('reports a missing environment variable', () => {
    expect(
      problems(`  - id: up
    kind: taxii21
    apiRoot: http://127.0.0.1:9/api1
    collectionId: x
    auth: { type: bearer, tokenEnv: UP_TOKEN }
    interval: 15m
`),
    ).toEqual([
      expect.stringMatching(/sources\/0\/auth\/tokenEnv: environment variable UP_TOKEN is not set/),
    ]);
  });

  it('rejects text-list keys, a missing collection and an unknown auth type', () => {
    const found = problems(`  - id: up
    kind: taxii21
    url: http://127.0.0.1:9/taxii2/
    valueType: ipv4
    auth: { type: digest }
    interval: 15m
`);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/unknown key "valueType"/),
        expect.stringMatching(/set exactly one of collectionId or collectionTitle/),
        expect.stringMatching(/auth: type must be one of "basic", "bearer", "header"/),
      ]),
    );
  });

  it('rejects an unknown kind and taxii21 keys on a text list', () => {
    expect(
      problems(`  - { id: a, kind: taxii, url: http://127.0.0.1:9/, interval: 1h }\n`),
    ).toEqual([
      expect.stringMatching(
        /kind.*must be one of "text-list", "csv", "json", "stix-bundle", "misp-feed", "taxii21"/,
      ),
    ]);
    expect(
      problems(
        `  - { id: a, kind: text-list, url: http://127.0.0.1:9/, interval: 1h, limit: 5 }\n`,
      ),
    ).toEqual([expect.stringMatching(/unknown key "limit"/)]);
  });

  it('reports missing TLS files', () => {
    expect(
      problems(`  - id: up
    kind: taxii21
    apiRoot: https://127.0.0.1:9/api1/
    collectionId: x
    tls: { certPath: client.pem, keyPath: client.key }
    interval: 15m
`),
    ).toEqual([
      expect.stringMatching(/tls\/certPath: file .*client\.pem not found/),
      expect.stringMatching(/tls\/keyPath: file .*client\.key not found/),
    ]);
  });
});
