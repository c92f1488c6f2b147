import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';

import {
  FetchError,
  fetchFeed,
  type FetchOptions,
  type FetchResult,
} from '../../src/sources/index.js';

const LIST = '198.51.100.1\n198.51.100.2\n';
const ETAG = '"v1"';
const LAST_MODIFIED = 'Tue, 02 Jan 2024 03:04:05 GMT';

let server: Server;
let base: string;
let directory: string;
/** Base URL of a second server: another port, so another origin. */
let otherOrigin = '';
const requests: IncomingMessage[] = [];

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

const routes: Record<string, Handler> = {
  '/list': (request, response) => {
    if (request.headers['if-none-match'] === ETAG) {
      response.writeHead(304).end();
      return;
    }
    response.writeHead(200, { etag: ETAG, 'content-type': 'text/plain' }).end(LIST);
  },
  '/dated': (request, response) => {
    if (request.headers['if-modified-since'] === LAST_MODIFIED) {
      response.writeHead(304).end();
      return;
    }
    response.writeHead(200, { 'last-modified': LAST_MODIFIED }).end(LIST);
  },
  '/gzip': (_request, response) => {
    response.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync(LIST));
  },
  '/list.gz': (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/gzip' }).end(gzipSync(LIST));
  },
  '/deflate': (_request, response) => {
    response.writeHead(200, { 'content-encoding': 'deflate' }).end(deflateSync(LIST));
  },
  '/raw-deflate': (_request, response) => {
    response.writeHead(200, { 'content-encoding': 'deflate' }).end(deflateRawSync(LIST));
  },
  '/corrupt-gzip': (_request, response) => {
    const body = gzipSync(LIST.repeat(100));
    body.fill(0xff, 20, 40);
    response.writeHead(200).end(body);
  },
  '/silent': () => {
    // Never answers.
  },
  '/stall': (_request, response) => {
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.write('198.51.100.1\n');
  },
  '/big': (_request, response) => {
    response.writeHead(200);
    for (let i = 0; i < 100; i += 1) response.write('x'.repeat(1000));
    response.end();
  },
  '/big-declared': (_request, response) => {
    response.writeHead(200, { 'content-length': String(1_000_000) });
    response.write('x');
  },
  '/bomb': (_request, response) => {
    response.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync(Buffer.alloc(10_000_000)));
  },
  '/error': (_request, response) => {
    response.writeHead(500).end('boom');
  },
  '/redirect': (_request, response) => {
    response.writeHead(302, { location: '/list' }).end();
  },
  '/loop': (_request, response) => {
    response.writeHead(301, { location: '/loop' }).end();
  },
  '/private': (request, response) => {
    const expected = `Basic ${Buffer.from('feed:s@cret').toString('base64')}`;
    if (request.headers.authorization === expected) response.writeHead(200).end(LIST);
    else response.writeHead(401).end();
  },
  '/elsewhere': (_request, response) => {
    response.writeHead(302, { location: `${otherOrigin}/private` }).end();
  },
  '/to-file': (_request, response) => {
    response.writeHead(302, { location: 'file:///etc/passwd' }).end();
  },
};

function options(overrides: Partial<FetchOptions> = {}): FetchOptions {
  return { timeoutMs: 2000, maxBytes: 50_000, userAgent: 'feedhub-test/1', ...overrides };
}

async function readText(result: FetchResult): Promise<string> {
  if (result.kind !== 'body') throw new Error(`expected a body, got ${result.kind}`);
  const chunks: Buffer[] = [];
  for await (const chunk of result.body) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function fetchError(promise: Promise<unknown>): Promise<FetchError> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof FetchError))
    throw new Error(`expected a FetchError, got ${String(outcome)}`);
  return outcome;
}

beforeAll(async () => {
  server = createServer((request, response) => {
    requests.push(request);
    const handler = routes[request.url ?? ''];
    if (handler) handler(request, response);
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  directory = await mkdtemp(join(tmpdir(), 'feedhub-fetch-'));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(directory, { recursive: true, force: true });
});

describe('fetchFeed over HTTP', () => {
  test('200 with ETag then 304', async () => {
    const first = await fetchFeed(`${base}/list`, options());
    expect(first).toMatchObject({
      kind: 'body',
      status: 200,
      etag: ETAG,
      contentType: 'text/plain',
    });
    expect(await readText(first)).toBe(LIST);
    expect(first.kind === 'body' ? first.bytes() : 0).toBe(Buffer.byteLength(LIST));

    const second = await fetchFeed(`${base}/list`, options({ etag: ETAG }));
    expect(second).toEqual({ kind: 'not-modified', url: `${base}/list` });
  });

  test('sends user agent and encodings', async () => {
    await readText(await fetchFeed(`${base}/list`, options()));
    const last = requests[requests.length - 1];
    expect(last?.headers['user-agent']).toBe('feedhub-test/1');
    expect(last?.headers['accept-encoding']).toBe('gzip, deflate');
  });

  test('Last-Modified then 304', async () => {
    const first = await fetchFeed(`${base}/dated`, options());
    expect(first).toMatchObject({ kind: 'body', lastModified: LAST_MODIFIED });
    await readText(first);
    const second = await fetchFeed(`${base}/dated`, options({ lastModified: LAST_MODIFIED }));
    expect(second.kind).toBe('not-modified');
  });

  test.each(['/gzip', '/list.gz', '/deflate', '/raw-deflate'])('decodes %s', async (path) => {
    expect(await readText(await fetchFeed(`${base}${path}`, options()))).toBe(LIST);
  });

  test('corrupt gzip', async () => {
    const result = await fetchFeed(`${base}/corrupt-gzip`, options());
    const error = await fetchError(readText(result));
    expect(error.reason).toBe('decode');
    expect(error.message).toContain(`${base}/corrupt-gzip`);
  });

  test('server never answers', async () => {
    const started = Date.now();
    const error = await fetchError(fetchFeed(`${base}/silent`, options({ timeoutMs: 300 })));
    expect(error.reason).toBe('timeout');
    expect(error.message).toBe(`GET ${base}/silent timed out after 300 ms`);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  test('body stalls', async () => {
    const started = Date.now();
    const result = await fetchFeed(`${base}/stall`, options({ timeoutMs: 300 }));
    const error = await fetchError(readText(result));
    expect(error.reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1500);
  });

  test('size cap while reading', async () => {
    const result = await fetchFeed(`${base}/big`, options({ maxBytes: 10_000 }));
    const error = await fetchError(readText(result));
    expect(error.reason).toBe('too-large');
    expect(error.message).toContain(`${base}/big`);
    expect(error.message).toContain('10000 bytes');
  });

  test('size cap from Content-Length', async () => {
    const error = await fetchError(
      fetchFeed(`${base}/big-declared`, options({ maxBytes: 10_000 })),
    );
    expect(error.reason).toBe('too-large');
  });

  test('size cap on decoded bytes', async () => {
    const result = await fetchFeed(`${base}/bomb`, options({ maxBytes: 100_000 }));
    const error = await fetchError(readText(result));
    expect(error.reason).toBe('too-large');
  });

  test('HTTP 500', async () => {
    const error = await fetchError(fetchFeed(`${base}/error`, options()));
    expect(error.reason).toBe('status');
    expect(error.status).toBe(500);
    expect(error.message).toBe(`GET ${base}/error failed: HTTP 500`);
  });

  test('HTTP 404', async () => {
    const error = await fetchError(fetchFeed(`${base}/missing`, options()));
    expect(error.status).toBe(404);
  });

  test('redirect followed', async () => {
    const result = await fetchFeed(`${base}/redirect`, options());
    expect(result).toMatchObject({ kind: 'body', url: `${base}/list` });
    expect(await readText(result)).toBe(LIST);
  });

  test('redirect loop', async () => {
    const error = await fetchError(fetchFeed(`${base}/loop`, options()));
    expect(error.reason).toBe('status');
    expect(error.message).toMatch(/more than 5 redirects/);
  });

  test('redirect to file rejected', async () => {
    const error = await fetchError(fetchFeed(`${base}/to-file`, options()));
    expect(error.reason).toBe('invalid-url');
  });

  test('URL credentials sent as Basic', async () => {
    const url = base.replace('http://', 'http://feed:s%40cret@');
    expect(await readText(await fetchFeed(`${url}/private`, options()))).toBe(LIST);
  });

  test('URL password hidden in errors', async () => {
    const url = base.replace('http://', 'http://feed:wrong-key@');
    const error = await fetchError(fetchFeed(`${url}/private`, options()));
    expect(error.message).toBe(`GET ${url.replace('wrong-key', '***')}/private failed: HTTP 401`);
  });

  test('credentials dropped on cross-origin redirect', async () => {
    const other = createServer((request, response) => routes['/private']!(request, response));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    otherOrigin = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    const url = base.replace('http://', 'http://feed:s%40cret@');
    const error = await fetchError(fetchFeed(`${url}/elsewhere`, options()));
    other.closeAllConnections();
    await new Promise((resolve) => other.close(resolve));
    expect(error.message).toBe(`GET ${otherOrigin}/private failed: HTTP 401`);
  });

  test('connection refused', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await fetchError(fetchFeed(`http://127.0.0.1:${port}/`, options()));
    expect(error.reason).toBe('network');
  });

  test('unsupported scheme', async () => {
    const error = await fetchError(fetchFeed('ftp://127.0.0.1/list', options()));
    expect(error.reason).toBe('invalid-url');
  });
});

describe('fetchFeed from files', () => {
  test('reads file URL', async () => {
    const path = join(directory, 'list.txt');
    await writeFile(path, LIST);
    const result = await fetchFeed(pathToFileURL(path).href, options());
    expect(await readText(result)).toBe(LIST);
  });

  test('reads gzip file', async () => {
    const path = join(directory, 'list.txt.gz');
    await writeFile(path, gzipSync(LIST));
    expect(await readText(await fetchFeed(pathToFileURL(path).href, options()))).toBe(LIST);
  });

  test('mtime not modified', async () => {
    const path = join(directory, 'dated.txt');
    await writeFile(path, LIST);
    const mtime = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
    await utimes(path, mtime, mtime);

    const first = await fetchFeed(pathToFileURL(path).href, options());
    expect(first).toMatchObject({ kind: 'body', lastModified: LAST_MODIFIED });
    await readText(first);
    const second = await fetchFeed(
      pathToFileURL(path).href,
      options({ lastModified: LAST_MODIFIED }),
    );
    expect(second.kind).toBe('not-modified');

    const later = new Date(mtime.getTime() + 1000);
    await utimes(path, later, later);
    const third = await fetchFeed(
      pathToFileURL(path).href,
      options({ lastModified: LAST_MODIFIED }),
    );
    expect(third.kind).toBe('body');
    await readText(third);
  });

  test('missing file', async () => {
    const url = pathToFileURL(join(directory, 'nope.txt')).href;
    const error = await fetchError(fetchFeed(url, options()));
    expect(error.reason).toBe('not-found');
    expect(error.message).toContain('nope.txt');
  });

  test('outside base directory', async () => {
    const path = join(directory, 'list.txt');
    await writeFile(path, LIST);
    const inside = join(directory, 'feeds');
    await rm(inside, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(inside));
    const error = await fetchError(
      fetchFeed(pathToFileURL(path).href, options({ baseDir: inside })),
    );
    expect(error.reason).toBe('invalid-url');
  });

  test('size cap on file', async () => {
    const path = join(directory, 'big.txt');
    await writeFile(path, 'x'.repeat(20_000));
    const result = await fetchFeed(pathToFileURL(path).href, options({ maxBytes: 1000 }));
    const error = await fetchError(readText(result));
    expect(error.reason).toBe('too-large');
  });
});
