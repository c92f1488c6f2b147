import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { strToU8, zipSync } from 'fflate';
import { pino } from 'pino';

import { SOURCE_KINDS, type ReadResult, type SourceSettings } from '../../src/sources/index.js';
import { SPOOL_THRESHOLD_BYTES } from '../../src/sources/whole-list.js';
import { FeedServer } from '../helpers/feed-server.js';

const feeds = new FeedServer();
const logger = pino({ level: 'silent' });

/** Writes a text list of `count` distinct public IPv4 addresses, one per line. */
function addresses(count: number): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i += 1) {
    lines.push(`11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  }
  return `${lines.join('\n')}\n`;
}

function source(path: string): SourceSettings {
  return {
    id: 'list',
    name: 'List',
    kind: 'text-list',
    url: feeds.url(path),
    valueType: 'ipv4',
    timeoutMs: 10_000,
    maxBytes: 64 << 20,
  };
}

function read(settings: SourceSettings, unchangedDigest?: string): Promise<ReadResult> {
  return SOURCE_KINDS['text-list']!.read({
    source: settings,
    userAgent: 'test',
    logger,
    unchangedDigest,
  });
}

function requestsFor(path: string): number {
  return feeds.requests.filter((request) => request.path === path).length;
}

beforeAll(async () => {
  await feeds.start();
});

afterAll(async () => {
  await feeds.stop();
});

describe('readWholeList', () => {
  test('source HTTP settings applied', async () => {
    let calls = 0;
    const server = createServer((request, response) => {
      calls += 1;
      if (calls === 1) {
        response.writeHead(503).end();
        return;
      }
      if (request.headers['x-api-key'] !== 'k3y') {
        response.writeHead(401).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/zip' }).end(zipped);
    });
    const zipped = Buffer.from(zipSync({ 'feed/ips.txt': strToU8(addresses(3)) }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const settings: SourceSettings = {
      ...source('/unused'),
      url: `http://127.0.0.1:${port}/ips.zip`,
      http: {
        authHeader: { name: 'X-API-Key', value: 'k3y' },
        maxRetries: 1,
        retryDelayMs: 5,
        zipEntry: 'feed/ips.txt',
      },
    };
    const result = await read(settings);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    if (result.kind !== 'data') throw new Error(`expected data, got ${result.kind}`);
    expect(result.stats.valid).toBe(3);
    expect(calls).toBe(2);
  });

  const large = addresses(200_000);

  test('large body spooled and parsed', async () => {
    expect(Buffer.byteLength(large)).toBeGreaterThan(SPOOL_THRESHOLD_BYTES);
    feeds.set('/large.txt', { kind: 'body', body: large, etag: false });
    const result = await read(source('/large.txt'));
    if (result.kind !== 'data') throw new Error(`expected data, got ${result.kind}`);
    expect(result.stats.valid).toBe(200_000);
    expect(result.stats.bytes).toBe(Buffer.byteLength(large));
    expect(result.entries.at(-1)?.value).toBe('11.3.13.63');
  });

  test('unchanged large body fetched again to parse', async () => {
    feeds.set('/large-again.txt', { kind: 'body', body: large, etag: false });
    const first = await read(source('/large-again.txt'));
    if (first.kind !== 'data') throw new Error(`expected data, got ${first.kind}`);

    const second = await read(source('/large-again.txt'), first.bodyDigest);
    if (second.kind !== 'unchanged') throw new Error(`expected unchanged, got ${second.kind}`);
    expect(requestsFor('/large-again.txt')).toBe(2);
    const parsed = await second.parse();
    expect(requestsFor('/large-again.txt')).toBe(3);
    if (parsed.kind !== 'data') throw new Error(`expected data, got ${parsed.kind}`);
    expect(parsed.stats.valid).toBe(200_000);
  });

  test('unchanged small body parsed from memory', async () => {
    feeds.set('/small.txt', { kind: 'body', body: addresses(10), etag: false });
    const first = await read(source('/small.txt'));
    if (first.kind !== 'data') throw new Error(`expected data, got ${first.kind}`);

    const second = await read(source('/small.txt'), first.bodyDigest);
    if (second.kind !== 'unchanged') throw new Error(`expected unchanged, got ${second.kind}`);
    const parsed = await second.parse();
    expect(requestsFor('/small.txt')).toBe(2);
    if (parsed.kind !== 'data') throw new Error(`expected data, got ${parsed.kind}`);
    expect(parsed.stats.valid).toBe(10);
  });
});
