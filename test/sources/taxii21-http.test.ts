import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import pino from 'pino';

import { loadConfig } from '../../src/app/config.js';
import { createLogger } from '../../src/app/logger.js';
import {
  closeDispatchers,
  DEFAULT_MAX_PER_HOST,
  type HttpSettings,
} from '../../src/sources/http-client.js';
import { SOURCE_KINDS, type ReadContext, type ReadResult } from '../../src/sources/index.js';
import type { SourceSettings } from '../../src/sources/kinds.js';
import { ForwardProxy } from './forward-proxy.js';
import { generateCertificates, type TestCertificates } from './tls-certs.js';

const TAXII = 'application/taxii+json;version=2.1';
const COLLECTION = '52892447-4d7e-4f70-b94d-d7f22742ff63';
const INDICATOR = JSON.stringify({
  type: 'indicator',
  spec_version: '2.1',
  id: 'indicator--00000000-0000-4000-8000-000000000001',
  created: '2024-01-02T03:04:05.123Z',
  modified: '2024-01-02T03:04:05.123Z',
  pattern: "[ipv4-addr:value = '198.51.100.1']",
  pattern_type: 'stix',
  valid_from: '2024-01-02T03:04:05Z',
});
const PROXY_VARIABLES = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy'];

/** One request as the TAXII server saw it. */
interface Seen {
  path: string;
  headers: IncomingMessage['headers'];
  authorizedClient: boolean;
}

/**
 * Serves the collection and objects endpoints of one API root with one
 * indicator, after `delayMs`. `/mutual/` paths need a client certificate.
 */
function taxiiHandler(seen: Seen[], delayMs: () => number) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    const socket = request.socket as Partial<TLSSocket>;
    seen.push({ path, headers: request.headers, authorizedClient: socket.authorized === true });
    const send = (status: number, body: string, headers: Record<string, string> = {}) =>
      setTimeout(
        () => response.writeHead(status, { 'content-type': TAXII, ...headers }).end(body),
        delayMs(),
      );
    if (path.startsWith('/mutual/') && socket.authorized !== true) {
      send(403, '{"title":"client certificate required"}');
    } else if (path.endsWith(`/collections/${COLLECTION}/`)) {
      send(
        200,
        JSON.stringify({ id: COLLECTION, title: 'Intel', can_read: true, can_write: false }),
      );
    } else if (path.endsWith(`/collections/${COLLECTION}/objects/`)) {
      send(200, `{"more":false,"objects":[${INDICATOR}]}`, {
        'X-TAXII-Date-Added-First': '2025-01-01T00:00:00.000000Z',
        'X-TAXII-Date-Added-Last': '2025-01-01T00:00:00.000000Z',
      });
    } else {
      send(404, '{"title":"not found"}');
    }
  };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

function source(apiRootUrl: string, http: Partial<HttpSettings> = {}): SourceSettings {
  return {
    id: 'upstream',
    name: 'upstream',
    kind: 'taxii21',
    url: apiRootUrl,
    valueType: 'auto',
    timeoutMs: 2000,
    maxBytes: 1024 * 1024,
    taxii21: { apiRootUrl, collection: { id: COLLECTION }, limit: 10, maxPages: 10 },
    http: { maxRetries: 0, retryDelayMs: 10, ...http },
  };
}

async function read(
  settings: SourceSettings,
  logger: pino.Logger = createLogger('silent'),
): Promise<Extract<ReadResult, { kind: 'data' }>> {
  const context: ReadContext = { source: settings, userAgent: 'feedhub-test', logger };
  const result = await SOURCE_KINDS.taxii21!.read(context);
  if (result.kind !== 'data') throw new Error(`expected data, got ${result.kind}`);
  return result;
}

/** Creates a pino logger at debug level whose records are kept as JSON text. */
function recordingLogger(): { logger: pino.Logger; records: string[] } {
  const records: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      records.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), records };
}

describe('taxii21 source HTTP settings', () => {
  const seen: Seen[] = [];
  let delayMs = 0;
  let server: Server;
  let apiRoot = '';
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    server = createServer(taxiiHandler(seen, () => delayMs));
    apiRoot = `http://127.0.0.1:${await listen(server)}/api1/`;
  });

  afterAll(async () => {
    await close(server);
    await closeDispatchers();
  });

  beforeEach(() => {
    seen.length = 0;
    delayMs = 0;
  });

  afterEach(() => {
    for (const name of [...PROXY_VARIABLES, 'no_proxy']) {
      if (savedEnv[name] === undefined) delete process.env[name];
      else process.env[name] = savedEnv[name];
    }
  });

  test('named header sent', async () => {
    const authHeader = { name: 'X-API-Key', value: 'k3y' };

    await read(source(apiRoot, { authHeader }));

    expect(seen.map((request) => request.headers['x-api-key'])).toEqual(['k3y', 'k3y']);
    expect(seen.every((request) => request.headers.authorization === undefined)).toBe(true);
  });

  test('per-source proxy used', async () => {
    const proxy = await new ForwardProxy().start();
    try {
      const result = await read(source(apiRoot, { proxy: proxy.url }));

      expect(result.objects).toHaveLength(1);
      expect(proxy.requests).toContain(`CONNECT ${new URL(apiRoot).host}`);
      expect(seen).toHaveLength(2);
    } finally {
      await proxy.stop();
    }
  });

  test('HTTP_PROXY used', async () => {
    const proxy = await new ForwardProxy().start();
    process.env.HTTP_PROXY = proxy.url;
    delete process.env.NO_PROXY;
    delete process.env.no_proxy;
    try {
      await read(source(apiRoot));

      expect(proxy.requests).toContain(`CONNECT ${new URL(apiRoot).host}`);
    } finally {
      await proxy.stop();
    }
  });

  test('NO_PROXY bypasses proxy', async () => {
    const proxy = await new ForwardProxy().start();
    process.env.HTTP_PROXY = proxy.url;
    process.env.NO_PROXY = '127.0.0.1';
    try {
      await read(source(apiRoot));

      expect(proxy.requests).toEqual([]);
      expect(seen).toHaveLength(2);
    } finally {
      await proxy.stop();
    }
  });

  test('proxy credentials sent', async () => {
    const proxy = await new ForwardProxy('relay:pr0xy-pw').start();
    try {
      const address = new URL(proxy.url);
      address.username = 'relay';
      address.password = 'pr0xy-pw';

      const result = await read(source(apiRoot, { proxy: address.href }));

      expect(result.objects).toHaveLength(1);
      expect(proxy.authorizations[0]).toBe(
        `Basic ${Buffer.from('relay:pr0xy-pw').toString('base64')}`,
      );
    } finally {
      await proxy.stop();
    }
  });

  test('proxy 407 names the fix', async () => {
    const proxy = await new ForwardProxy('relay:pr0xy-pw').start();
    try {
      const failure = read(source(apiRoot, { proxy: proxy.url, maxRetries: 2 }));

      await expect(failure).rejects.toThrow(
        /failed: the proxy refused the tunnel with HTTP 407; the proxy requires authentication/,
      );
      await expect(failure).rejects.not.toThrow(/timed out/);
      expect(proxy.authorizations).toEqual([undefined]);
    } finally {
      await proxy.stop();
    }
  });

  test('retries after a timeout', async () => {
    delayMs = 300;
    const settings = { ...source(apiRoot, { maxRetries: 1 }), timeoutMs: 100 };

    await expect(read(settings)).rejects.toThrow(
      /collections\/.* failed after 2 attempts: timed out after 100 ms/,
    );
    expect(seen).toHaveLength(2);
  });

  test('per-host limit shared by polls', async () => {
    let active = 0;
    let maxActive = 0;
    const counting = createServer((request, response) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      response.on('finish', () => (active -= 1));
      taxiiHandler([], () => 50)(request, response);
    });
    const root = `http://127.0.0.1:${await listen(counting)}/api1/`;
    try {
      const results = await Promise.all(Array.from({ length: 8 }, () => read(source(root))));

      expect(results.every((result) => result.objects.length === 1)).toBe(true);
      expect(maxActive).toBe(DEFAULT_MAX_PER_HOST);
    } finally {
      await close(counting);
    }
  });

  test('secrets not logged', async () => {
    const { logger, records } = recordingLogger();
    const proxy = await new ForwardProxy('relay:pr0xy-pw').start();
    const address = new URL(proxy.url);
    address.username = 'relay';
    address.password = 'pr0xy-pw';
    const authHeader = { name: 'Authorization', value: 'Bearer s3cret-t0ken' };
    try {
      await read(source(apiRoot, { authHeader, proxy: address.href }), logger);
      // A refused connection is retried and logged as a warning.
      await expect(
        read(source('http://127.0.0.1:1/api1/', { authHeader, maxRetries: 1 }), logger),
      ).rejects.toThrow(/failed after 2 attempts/);
    } finally {
      await proxy.stop();
    }

    expect(records.some((record) => record.includes('TAXII request failed; retrying'))).toBe(true);
    expect(records.some((record) => record.includes('TAXII collection read'))).toBe(true);
    for (const record of records) {
      expect(record).not.toContain('s3cret-t0ken');
      expect(record).not.toContain('pr0xy-pw');
    }
  });
});

describe('taxii21 source TLS', () => {
  const seen: Seen[] = [];
  let certificates: TestCertificates;
  let server: ReturnType<typeof createHttpsServer>;
  let base = '';

  beforeAll(async () => {
    certificates = generateCertificates();
    server = createHttpsServer(
      {
        cert: readFileSync(certificates.serverCert),
        key: readFileSync(certificates.serverKey),
        ca: readFileSync(certificates.caCert),
        requestCert: true,
        rejectUnauthorized: false,
      },
      taxiiHandler(seen, () => 0),
    );
    base = `https://127.0.0.1:${await listen(server)}`;
  });

  afterAll(async () => {
    await close(server);
    await closeDispatchers();
    rmSync(certificates.directory, { recursive: true, force: true });
  });

  beforeEach(() => {
    seen.length = 0;
  });

  test('unknown CA names the fix', async () => {
    await expect(read(source(`${base}/api1/`))).rejects.toThrow(
      /TLS certificate could not be verified .*set tls\.caPath .* or tls\.verify: false/,
    );
  });

  test('caPath trusts server', async () => {
    const result = await read(source(`${base}/api1/`, { tls: { caPath: certificates.caCert } }));

    expect(result.objects).toHaveLength(1);
  });

  test('verify false skips check', async () => {
    const result = await read(source(`${base}/api1/`, { tls: { verify: false } }));

    expect(result.objects).toHaveLength(1);
  });

  test('client certificate sent', async () => {
    const tls = {
      caPath: certificates.caCert,
      certPath: certificates.clientCert,
      keyPath: certificates.clientKey,
    };

    const result = await read(source(`${base}/mutual/`, { tls }));

    expect(result.objects).toHaveLength(1);
    expect(seen.every((request) => request.authorizedClient)).toBe(true);
  });

  test('no client certificate refused', async () => {
    const tls = { caPath: certificates.caCert };

    await expect(read(source(`${base}/mutual/`, { tls }))).rejects.toThrow(
      /HTTP 403 \(client certificate required\); the account may not read this collection/,
    );
  });

  test('missing CA file named', async () => {
    const tls = { caPath: join(certificates.directory, 'absent.pem') };

    await expect(read(source(`${base}/api1/`, { tls }))).rejects.toThrow(
      /reading tls\.caPath .*absent\.pem failed: .*; fix tls\.caPath/,
    );
  });

  test('proxy tunnels HTTPS', async () => {
    const proxy = await new ForwardProxy().start();
    try {
      const tls = { caPath: certificates.caCert };

      const result = await read(source(`${base}/api1/`, { tls, proxy: proxy.url }));

      expect(result.objects).toHaveLength(1);
      expect(proxy.requests).toContain(`CONNECT ${new URL(base).host}`);
    } finally {
      await proxy.stop();
    }
  });
});

describe('taxii21 source HTTP keys', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'feedhub-taxii21-http-'));
    mkdirSync(join(dir, 'collections'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('header auth, proxyEnv and retries resolved', () => {
    writeFileSync(
      join(dir, 'collections', 'c.yaml'),
      `id: ${COLLECTION}
alias: c
title: C
sources:
  - id: up
    kind: taxii21
    apiRoot: https://127.0.0.1:9/api1/
    collectionId: x
    interval: 15m
    auth: { type: header, name: X-API-Key, valueEnv: UP_KEY }
    proxyEnv: UP_PROXY
    maxRetries: 5
    retryDelay: 2s
`,
    );

    const config = loadConfig({
      FEEDHUB_COLLECTIONS_DIR: join(dir, 'collections'),
      FEEDHUB_DATA_DIR: join(dir, 'data'),
      UP_KEY: 'k3y',
      UP_PROXY: 'http://relay:pw@127.0.0.1:3128',
    });
    const http = config.collections[0]!.sources[0]!.http;

    expect(http?.authHeader).toEqual({ name: 'X-API-Key', value: 'k3y' });
    expect(http?.proxy).toBe('http://relay:pw@127.0.0.1:3128');
    expect(http?.maxRetries).toBe(5);
    expect(http?.retryDelayMs).toBe(2000);
  });
});
