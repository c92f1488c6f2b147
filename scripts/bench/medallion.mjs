// Medallion case: loads the same N STIX indicators into medallion 3.0.0 (the
// OASIS TAXII 2.1 reference server, memory backend) and into the hub (SQLite
// store), then reads each collection page by page over HTTP on 127.0.0.1,
// following `next`. Needs FEEDHUB_PYTHON: the venv of .ci/python-peers.sh.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIST, ipv4, openBenchStore, parseFlags } from './common.mjs';

const flags = parseFlags(process.argv.slice(2));
const count = Number(flags.objects ?? 100_000);
const pageSize = Number(flags.limit ?? 1000);
const python = process.env.FEEDHUB_PYTHON;
if (!python) throw new Error('FEEDHUB_PYTHON is not set; run `source .ci/python-peers.sh && python_peers_setup` first');

const { createTaxiiRouter } = await import(join(DIST, 'taxii/index.js'));
const { createHttpApp } = await import(join(DIST, 'app/http.js'));
const { createLogger } = await import(join(DIST, 'app/logger.js'));
const { buildIndicator, formatTimestamp } = await import(join(DIST, 'stix/index.js'));

const collectionId = '00000000-0000-4000-8000-00000000be02';
const identity = 'identity--00000000-0000-4000-8000-000000000001';
const accept = 'application/taxii+json;version=2.1';
const objects = [];
for (let i = 0; i < count; i++) {
  objects.push(buildIndicator({
    collectionId, identityId: identity, type: 'ipv4', value: ipv4(i), confidence: 50,
    tlpMarkingId: 'marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487',
    indicatorTypes: ['malicious-activity'], createdMicros: 1_700_000_000_000_000 + i * 1000, validFromMicros: 1_700_000_000_000_000,
  }));
}

// The hub.
const { store, cleanup } = await openBenchStore('sqlite');
await store.upsertCollection({ id: collectionId, alias: 'bench-medallion', title: 'Bench', canRead: true, canWrite: false, mediaTypes: ['application/stix+json;version=2.1'] });
for (let start = 0; start < count; start += 10_000) await store.putObjects(collectionId, objects.slice(start, start + 10_000));
const logger = createLogger('silent');
const app = createHttpApp({
  store, logger, isDraining: () => false,
  routers: [createTaxiiRouter({ store, logger, publicUrl: 'http://127.0.0.1', title: 'bench', apiRootPath: 'hub', maxPageSize: pageSize, cursorSecret: 'bench-secret-bench-secret' })],
});
const hubServer = app.listen(0, '127.0.0.1');
await new Promise((resolve) => hubServer.once('listening', resolve));
const hubUrl = `http://127.0.0.1:${hubServer.address().port}/taxii2/hub/collections/${collectionId}/objects/`;

// Medallion, from a data file with the same objects and a manifest entry each.
const dir = mkdtempSync(join(tmpdir(), 'feedhub-bench-medallion-'));
const port = await freePort();
const apiRoot = `http://127.0.0.1:${port}/api1/`;
const dateAdded = (i) => formatTimestamp(1_710_000_000_000_000 + i * 1000, 6);
const data = {
  '/discovery': { title: 'bench', default: apiRoot, api_roots: [apiRoot] },
  api1: {
    information: { title: 'bench', versions: [accept], max_content_length: 1 << 30 },
    status: [],
    collections: [{
      id: collectionId, title: 'Bench', can_read: true, can_write: false,
      media_types: ['application/stix+json;version=2.1'],
      objects: objects.map((o) => JSON.parse(o.json)),
      manifest: objects.map((o, i) => ({ id: o.id, date_added: dateAdded(i), version: JSON.parse(o.json).modified, media_type: 'application/stix+json;version=2.1' })),
    }],
  },
};
objects.length = 0;
writeFileSync(join(dir, 'data.json'), JSON.stringify(data));
writeFileSync(join(dir, 'config.json'), JSON.stringify({
  backend: { module: 'medallion.backends.memory_backend', module_class: 'MemoryBackend', filename: join(dir, 'data.json') },
  users: { bench: 'bench-password' },
  taxii: { max_page_size: pageSize },
}));
const child = spawn(python, ['-m', 'medallion.scripts.run', '--host', '127.0.0.1', '--port', String(port), '--log-level', 'WARN', join(dir, 'config.json')], { stdio: ['ignore', 'ignore', 'inherit'] });
const medallionUrl = `http://127.0.0.1:${port}/api1/collections/${collectionId}/objects/`;
const authorization = `Basic ${Buffer.from('bench:bench-password').toString('base64')}`;
const loadStarted = performance.now();
for (;;) {
  if (child.exitCode !== null) throw new Error(`medallion exited with ${child.exitCode}`);
  try {
    if ((await fetch(`http://127.0.0.1:${port}/taxii2/`, { headers: { accept, authorization } })).ok) break;
  } catch {
    // Not listening yet.
  }
  if (performance.now() - loadStarted > 300_000) throw new Error('medallion did not start within 300 s');
  await new Promise((resolve) => setTimeout(resolve, 200));
}

try {
  const medallion = await readAll(medallionUrl, { accept, authorization });
  const hub = await readAll(hubUrl, { accept });
  writeSync(1, `${JSON.stringify({
    objects: count,
    pageSize,
    hubPerSecond: Math.round(count / hub.seconds),
    medallionPerSecond: Math.round(count / medallion.seconds),
    hubSeconds: Number(hub.seconds.toFixed(2)),
    medallionSeconds: Number(medallion.seconds.toFixed(2)),
    speedup: Number((medallion.seconds / hub.seconds).toFixed(1)),
  })}\n`);
} finally {
  child.kill('SIGTERM');
  hubServer.close();
  await cleanup();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);

/** Reads a TAXII objects endpoint page by page and checks that every object arrived. */
async function readAll(base, headers) {
  const started = performance.now();
  let fetched = 0;
  let url = `${base}?limit=${pageSize}`;
  for (;;) {
    const response = await fetch(url, { headers });
    if (response.status !== 200) throw new Error(`GET ${url} returned ${response.status}: ${await response.text()}`);
    const envelope = await response.json();
    fetched += envelope.objects?.length ?? 0;
    if (!envelope.more) break;
    url = `${base}?limit=${pageSize}&next=${encodeURIComponent(envelope.next)}`;
  }
  if (fetched !== count) throw new Error(`read ${fetched} of ${count} objects from ${base}`);
  return { seconds: (performance.now() - started) / 1000 };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
