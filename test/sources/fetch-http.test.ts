import { rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { strToU8, zipSync } from 'fflate';
import pino from 'pino';

import {
  FetchError,
  fetchFeed,
  type FetchOptions,
  type FetchResult,
} from '../../src/sources/index.js';
import {
  backoffDelayMs,
  closeDispatchers,
  HostLimiter,
  MAX_BACKOFF_MS,
  type HttpSettings,
} from '../../src/sources/http-client.js';
import { ForwardProxy } from './forward-proxy.js';
import { generateCertificates, type TestCertificates } from './tls-certs.js';

const LIST = '198.51.100.1\n198.51.100.2\n';

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/** Requests per path, counted by the test server. */
const hits = new Map<string, number>();
const seen: IncomingMessage[] = [];
const routes = new Map<string, Handler>();
let server: Server;
let base = '';

function route(path: string, handler: Handler): string {
  routes.set(path, handler);
  hits.delete(path);
  return `${base}${path}`;
}

/** Returns a handler that sends each status in turn and then the list. */
function failThenServe(statuses: number[], headers: Record<string, string> = {}): Handler {
  let calls = 0;
  return (_request, response) => {
    const status = statuses[calls];
    calls += 1;
    if (status === undefined) response.writeHead(200).end(LIST);
    else response.writeHead(status, headers).end('busy');
  };
}

function http(overrides: Partial<HttpSettings> = {}): HttpSettings {
  return { maxRetries: 3, retryDelayMs: 5, ...overrides };
}

function options(overrides: Partial<FetchOptions> = {}): FetchOptions {
  return { timeoutMs: 3000, maxBytes: 1_000_000, userAgent: 'feedhub-test/1', ...overrides };
}

async function readBody(result: FetchResult): Promise<Buffer> {
  if (result.kind !== 'body') throw new Error(`expected a body, got ${result.kind}`);
  const chunks: Buffer[] = [];
  for await (const chunk of result.body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function readText(result: FetchResult): Promise<string> {
  return (await readBody(result)).toString('utf8');
}

/** Fetches and reads the whole body, returning the FetchError that either step throws. */
async function fetchError(url: string, fetchOptions: FetchOptions): Promise<FetchError> {
  const outcome = await fetchFeed(url, fetchOptions)
    .then(readBody)
    .then(
      () => undefined,
      (error: unknown) => error,
    );
  if (!(outcome instanceof FetchError)) {
    throw new Error(`expected a FetchError, got ${String(outcome)}`);
  }
  return outcome;
}

/** Creates a pino logger whose records are collected in `records`. */
function recordingLogger(): { logger: pino.Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      records.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, stream), records };
}

beforeAll(async () => {
  server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    seen.push(request);
    const handler = routes.get(path);
    if (handler) handler(request, response);
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await closeDispatchers();
});

describe('backoffDelayMs', () => {
  test('full jitter bounds', () => {
    expect(backoffDelayMs(0, 100, () => 0)).toBe(0);
    expect(backoffDelayMs(0, 100, () => 0.999)).toBe(99);
    expect(backoffDelayMs(3, 100, () => 0.5)).toBe(400);
  });

  test('capped at maximum', () => {
    expect(backoffDelayMs(20, 1000, () => 0.999)).toBeLessThan(MAX_BACKOFF_MS);
    expect(backoffDelayMs(20, 1000, () => 0.999)).toBeGreaterThan(MAX_BACKOFF_MS - 100);
  });
});

describe('fetchFeed retries', () => {
  test('503 then success', async () => {
    const url = route('/flaky', failThenServe([503, 502]));
    const { logger, records } = recordingLogger();
    const text = await readText(await fetchFeed(url, options({ http: http(), logger })));
    expect(text).toBe(LIST);
    expect(hits.get('/flaky')).toBe(3);
    expect(records.map((record) => record.msg)).toEqual([
      'fetch failed; retrying',
      'fetch failed; retrying',
    ]);
    expect(records[0]?.status).toBe(503);
  });

  test('gives up after maxRetries', async () => {
    const url = route('/down', failThenServe([500, 500, 500, 500, 500]));
    const error = await fetchError(url, options({ http: http({ maxRetries: 2 }) }));
    expect(error.reason).toBe('status');
    expect(error.message).toBe(`GET ${url} failed after 3 attempts: HTTP 500`);
    expect(hits.get('/down')).toBe(3);
  });

  test('no retry by default', async () => {
    const url = route('/once', failThenServe([503]));
    const error = await fetchError(url, options());
    expect(error.status).toBe(503);
    expect(hits.get('/once')).toBe(1);
  });

  test('404 not retried', async () => {
    const url = route('/missing', failThenServe([404]));
    const error = await fetchError(url, options({ http: http() }));
    expect(error.status).toBe(404);
    expect(hits.get('/missing')).toBe(1);
  });

  test('429 honours Retry-After', async () => {
    const url = route('/slow-down', failThenServe([429], { 'retry-after': '1' }));
    const started = Date.now();
    const text = await readText(await fetchFeed(url, options({ http: http() })));
    expect(text).toBe(LIST);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(hits.get('/slow-down')).toBe(2);
  });

  test('Retry-After beyond cap fails', async () => {
    const url = route('/later', failThenServe([503, 503], { 'retry-after': '3600' }));
    const error = await fetchError(url, options({ http: http() }));
    expect(error.message).toMatch(/asks to wait 3600 s \(Retry-After\), more than the 60 s/);
    expect(hits.get('/later')).toBe(1);
  });

  test('connection refused retried', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const { logger, records } = recordingLogger();
    const error = await fetchError(
      `http://127.0.0.1:${port}/list`,
      options({ http: http({ maxRetries: 2 }), logger }),
    );
    expect(error.reason).toBe('network');
    expect(records).toHaveLength(2);
  });
});

describe('HostLimiter', () => {
  test('limits requests per host', async () => {
    let active = 0;
    let maxActive = 0;
    const url = route('/held', (_request, response) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      setTimeout(() => {
        active -= 1;
        response.writeHead(200).end(LIST);
      }, 50);
    });
    const limiter = new HostLimiter(2);
    const texts = await Promise.all(
      Array.from({ length: 6 }, async () => readText(await fetchFeed(url, options({ limiter })))),
    );
    expect(texts).toEqual(Array.from({ length: 6 }, () => LIST));
    expect(maxActive).toBe(2);
    expect(limiter.inFlight(new URL(url).host)).toBe(0);
  });

  test('slot held until body read', async () => {
    const url = route('/slot', (_request, response) => response.writeHead(200).end(LIST));
    const limiter = new HostLimiter(1);
    const host = new URL(url).host;
    const first = await fetchFeed(url, options({ limiter }));
    expect(limiter.inFlight(host)).toBe(1);
    await readText(first);
    expect(limiter.inFlight(host)).toBe(0);
  });

  test('invalid limit rejected', () => {
    expect(() => new HostLimiter(0)).toThrow('invalid per-host limit 0');
  });
});

describe('fetchFeed authentication', () => {
  test('bearer header sent', async () => {
    const url = route('/bearer', (request, response) => {
      if (request.headers.authorization === 'Bearer t0ken') response.writeHead(200).end(LIST);
      else response.writeHead(401).end();
    });
    const authHeader = { name: 'Authorization', value: 'Bearer t0ken' };
    expect(await readText(await fetchFeed(url, options({ http: http({ authHeader }) })))).toBe(
      LIST,
    );
  });

  test('named header sent', async () => {
    const url = route('/keyed', (request, response) => {
      if (request.headers['x-api-key'] === 'k3y') response.writeHead(200).end(LIST);
      else response.writeHead(403).end();
    });
    const authHeader = { name: 'X-API-Key', value: 'k3y' };
    expect(await readText(await fetchFeed(url, options({ http: http({ authHeader }) })))).toBe(
      LIST,
    );
  });

  test('wrong credentials named', async () => {
    const url = route('/denied', (_request, response) => response.writeHead(401).end());
    const authHeader = { name: 'Authorization', value: 'Bearer wrong' };
    const error = await fetchError(url, options({ http: http({ authHeader }) }));
    expect(error.message).toBe(
      `GET ${url} failed: HTTP 401; check the credentials in the environment variables named by auth`,
    );
    expect(error.message).not.toContain('wrong');
  });

  test('header not sent cross-origin', async () => {
    const other = createServer((request, response) => {
      response.writeHead(200).end(request.headers['x-api-key'] === undefined ? 'none' : 'leaked');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}/`;
    const url = route('/away', (_request, response) => {
      response.writeHead(302, { location: otherUrl }).end();
    });
    const authHeader = { name: 'X-API-Key', value: 'k3y' };
    const text = await readText(await fetchFeed(url, options({ http: http({ authHeader }) })));
    other.closeAllConnections();
    await new Promise((resolve) => other.close(resolve));
    expect(text).toBe('none');
  });
});

describe('fetchFeed proxies', () => {
  let proxy: ForwardProxy;
  const saved = { ...process.env };

  beforeEach(async () => {
    proxy = await new ForwardProxy().start();
  });

  afterEach(async () => {
    for (const name of [
      'HTTP_PROXY',
      'HTTPS_PROXY',
      'NO_PROXY',
      'http_proxy',
      'https_proxy',
      'no_proxy',
    ]) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
    await proxy.stop();
  });

  test('per-source proxy used', async () => {
    const url = route('/via-proxy', (_request, response) => response.writeHead(200).end(LIST));
    const text = await readText(
      await fetchFeed(url, options({ http: http({ proxy: proxy.url }) })),
    );
    expect(text).toBe(LIST);
    expect(proxy.requests).toHaveLength(1);
  });

  test('HTTP_PROXY used', async () => {
    process.env.HTTP_PROXY = proxy.url;
    delete process.env.NO_PROXY;
    delete process.env.no_proxy;
    const url = route('/env-proxy', (_request, response) => response.writeHead(200).end(LIST));
    expect(await readText(await fetchFeed(url, options()))).toBe(LIST);
    expect(proxy.requests).toHaveLength(1);
  });

  test('NO_PROXY bypasses proxy', async () => {
    process.env.HTTP_PROXY = proxy.url;
    process.env.NO_PROXY = '127.0.0.1';
    const url = route('/no-proxy', (_request, response) => response.writeHead(200).end(LIST));
    expect(await readText(await fetchFeed(url, options()))).toBe(LIST);
    expect(proxy.requests).toHaveLength(0);
    expect(hits.get('/no-proxy')).toBe(1);
  });
});

describe('fetchFeed TLS', () => {
  let certificates: TestCertificates;
  let httpsServer: ReturnType<typeof createHttpsServer>;
  let httpsBase = '';

  beforeAll(async () => {
    certificates = generateCertificates();
    httpsServer = createHttpsServer(
      {
        cert: readFileSync(certificates.serverCert),
        key: readFileSync(certificates.serverKey),
        ca: readFileSync(certificates.caCert),
        requestCert: true,
        rejectUnauthorized: false,
      },
      (request, response) => {
        const socket = request.socket as import('node:tls').TLSSocket;
        if (request.url === '/mutual' && !socket.authorized) {
          response.writeHead(403).end('client certificate required\n');
          return;
        }
        response.writeHead(200).end(LIST);
      },
    );
    await new Promise<void>((resolve) => httpsServer.listen(0, '127.0.0.1', resolve));
    httpsBase = `https://127.0.0.1:${(httpsServer.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    httpsServer.closeAllConnections();
    await new Promise((resolve) => httpsServer.close(resolve));
    rmSync(certificates.directory, { recursive: true, force: true });
  });

  test('unknown CA names the fix', async () => {
    const error = await fetchError(`${httpsBase}/list`, options({ http: http({ maxRetries: 0 }) }));
    expect(error.reason).toBe('network');
    expect(error.message).toMatch(/TLS certificate could not be verified/);
    expect(error.message).toMatch(/set tls\.caPath .* or tls\.verify: false/);
  });

  test('caPath trusts server', async () => {
    const tls = { caPath: certificates.caCert };
    expect(
      await readText(await fetchFeed(`${httpsBase}/list`, options({ http: http({ tls }) }))),
    ).toBe(LIST);
  });

  test('verify false skips check', async () => {
    const tls = { verify: false };
    expect(
      await readText(await fetchFeed(`${httpsBase}/list`, options({ http: http({ tls }) }))),
    ).toBe(LIST);
  });

  test('client certificate sent', async () => {
    const tls = {
      caPath: certificates.caCert,
      certPath: certificates.clientCert,
      keyPath: certificates.clientKey,
    };
    const text = await readText(
      await fetchFeed(`${httpsBase}/mutual`, options({ http: http({ tls }) })),
    );
    expect(text).toBe(LIST);
  });

  test('no client certificate refused', async () => {
    const tls = { caPath: certificates.caCert };
    const error = await fetchError(`${httpsBase}/mutual`, options({ http: http({ tls }) }));
    expect(error.status).toBe(403);
  });

  test('missing CA file named', async () => {
    const tls = { caPath: `${certificates.directory}/absent.pem` };
    const error = await fetchError(`${httpsBase}/list`, options({ http: http({ tls }) }));
    expect(error.message).toMatch(/reading tls\.caPath .*absent\.pem failed: .*; fix tls\.caPath/);
  });

  test('proxy tunnels HTTPS', async () => {
    const proxy = await new ForwardProxy().start();
    const tls = { caPath: certificates.caCert };
    const text = await readText(
      await fetchFeed(`${httpsBase}/list`, options({ http: http({ tls, proxy: proxy.url }) })),
    );
    await proxy.stop();
    expect(text).toBe(LIST);
    expect(proxy.requests).toEqual([`CONNECT ${new URL(httpsBase).host}`]);
  });
});

describe('fetchFeed zip bodies', () => {
  const zip = (files: Record<string, string>) =>
    Buffer.from(
      zipSync(Object.fromEntries(Object.entries(files).map(([k, v]) => [k, strToU8(v)]))),
    );

  test('single entry unpacked', async () => {
    const body = zip({ 'list.txt': LIST.repeat(200) });
    const url = route('/one.zip', (_request, response) => response.writeHead(200).end(body));
    expect(await readText(await fetchFeed(url, options()))).toBe(LIST.repeat(200));
  });

  test('zipEntry picks the entry', async () => {
    const body = zip({ 'readme.txt': 'not the feed\n', 'data/ips.txt': LIST });
    const url = route('/two.zip', (_request, response) => response.writeHead(200).end(body));
    const result = await fetchFeed(url, options({ http: http({ zipEntry: 'data/ips.txt' }) }));
    expect(await readText(result)).toBe(LIST);
  });

  test('several entries need zipEntry', async () => {
    const body = zip({ 'a.txt': LIST, 'b.txt': LIST });
    const url = route('/many.zip', (_request, response) => response.writeHead(200).end(body));
    const error = await fetchError(url, options());
    expect(error.reason).toBe('decode');
    expect(error.message).toBe(
      `the zip archive of ${url} holds more than one file (a.txt, b.txt); set zipEntry to the one to read`,
    );
  });

  test('missing zipEntry lists entries', async () => {
    const body = zip({ 'a.txt': LIST, 'b.txt': LIST });
    const url = route('/other.zip', (_request, response) => response.writeHead(200).end(body));
    const error = await fetchError(url, options({ http: http({ zipEntry: 'c.txt' }) }));
    expect(error.message).toBe(
      `the zip archive of ${url} has no entry "c.txt"; it holds only a.txt, b.txt; fix zipEntry`,
    );
  });

  test('truncated zip fails', async () => {
    const body = zip({ 'list.txt': LIST.repeat(5000) });
    const url = route('/cut.zip', (_request, response) =>
      response.writeHead(200).end(body.subarray(0, body.length / 2)),
    );
    const error = await fetchError(url, options());
    expect(error.reason).toBe('decode');
  });

  test('size cap on unpacked bytes', async () => {
    const body = zip({ 'zeros.txt': '0'.repeat(2_000_000) });
    const url = route('/bomb.zip', (_request, response) => response.writeHead(200).end(body));
    const error = await fetchError(url, options({ maxBytes: 100_000 }));
    expect(error.reason).toBe('too-large');
  });
});

describe('fetchFeed charsets', () => {
  const serve = (path: string, body: Buffer, contentType?: string) =>
    route(path, (_request, response) =>
      response.writeHead(200, contentType ? { 'content-type': contentType } : {}).end(body),
    );
  const text = 'example.com\ncafé.example\n';

  function utf16be(value: string): Buffer {
    const le = Buffer.from(value, 'utf16le');
    for (let i = 0; i < le.length; i += 2) [le[i], le[i + 1]] = [le[i + 1]!, le[i]!];
    return le;
  }

  test('UTF-16LE with BOM', async () => {
    const body = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    expect(await readText(await fetchFeed(serve('/le-bom', body), options()))).toBe(text);
  });

  test('UTF-16BE with BOM', async () => {
    const body = Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be(text)]);
    expect(await readText(await fetchFeed(serve('/be-bom', body), options()))).toBe(text);
  });

  test('UTF-16LE by charset', async () => {
    const body = Buffer.from(text, 'utf16le');
    const url = serve('/le', body, 'text/plain; charset=UTF-16LE');
    expect(await readText(await fetchFeed(url, options()))).toBe(text);
  });

  test('UTF-16BE by charset', async () => {
    const url = serve('/be', utf16be(text), 'text/plain; charset="utf-16be"');
    expect(await readText(await fetchFeed(url, options()))).toBe(text);
  });

  test('latin1 by charset', async () => {
    const url = serve('/latin1', Buffer.from(text, 'latin1'), 'text/plain; charset=ISO-8859-1');
    expect(await readText(await fetchFeed(url, options()))).toBe(text);
  });

  test('UTF-8 BOM kept for parsers', async () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]);
    const url = serve('/utf8-bom', body, 'text/plain; charset=latin1');
    expect(await readBody(await fetchFeed(url, options()))).toEqual(body);
  });

  test('unknown charset rejected', async () => {
    const url = serve('/klingon', Buffer.from(text), 'text/plain; charset=x-klingon');
    const error = await fetchError(url, options());
    expect(error.message).toBe(
      `cannot decode ${url}: unsupported charset "x-klingon" in Content-Type "text/plain; charset=x-klingon"`,
    );
  });

  test('split characters joined', async () => {
    const body = Buffer.from(text, 'utf16le');
    const url = route('/split', (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain; charset=utf-16le' });
      for (let i = 0; i < body.length; i += 3) response.write(body.subarray(i, i + 3));
      response.end();
    });
    expect(await readText(await fetchFeed(url, options()))).toBe(text);
  });
});

test('user agent sent', async () => {
  const url = route('/agent', (_request, response) => response.writeHead(200).end(LIST));
  await readText(await fetchFeed(url, options({ userAgent: 'feedhub/0.1 (+TAXII 2.1 feed hub)' })));
  expect(seen.at(-1)?.headers['user-agent']).toBe('feedhub/0.1 (+TAXII 2.1 feed hub)');
});

test('body read while consumer waits', async () => {
  // undici 7 stops the process when a server closes the connection while a
  // slow consumer holds its parser paused, so the fetcher reads the body at
  // network speed: the server finishes sending before anything is consumed.
  const body = Buffer.alloc(16 << 20, 0x61);
  let sent!: () => void;
  const allSent = new Promise<void>((resolve) => (sent = resolve));
  const closing = createNetServer((socket) => {
    socket.once('data', () => {
      socket.write(
        `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
      );
      socket.end(body, sent);
    });
  });
  await new Promise<void>((resolve) => closing.listen(0, '127.0.0.1', resolve));
  const { port } = closing.address() as AddressInfo;
  try {
    const fetched = await fetchFeed(
      `http://127.0.0.1:${port}/list.txt`,
      options({ maxBytes: 32 << 20 }),
    );
    expect(fetched.kind).toBe('body');
    if (fetched.kind !== 'body') return;
    const timedOut = new Promise<string>((resolve) => setTimeout(() => resolve('timed out'), 5000));
    expect(await Promise.race([allSent.then(() => 'sent'), timedOut])).toBe('sent');

    let bytes = 0;
    for await (const chunk of fetched.body) bytes += chunk.length;
    expect(bytes).toBe(body.length);
  } finally {
    closing.close();
  }
});
