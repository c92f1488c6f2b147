// Read case: stores N STIX indicators in one collection, then reads them
// page by page, once through the store port and once through the TAXII
// HTTP API of a hub on 127.0.0.1 (following `next`).
import { fork } from 'node:child_process';
import { writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIST, ipv4, openBenchStore, parseFlags, percentile, reopenBenchStore } from './common.mjs';

/** The start of a TAXII envelope as the hub writes it: `more`, then `next` when there is more. */
const ENVELOPE_HEAD = /^\{"more":(true|false)(?:,"next":("(?:[^"\\]|\\.)*"))?/;

const flags = parseFlags(process.argv.slice(2));
if (flags.serve !== undefined) {
  await serve(JSON.parse(flags.serve), Number(flags.limit ?? 1000));
} else {
  await measure();
}

/**
 * Serves the TAXII API on the store at `location` from this child process,
 * as an API process of the hub does, and sends the parent its port. The
 * client reads from the parent, so the two do not share a thread.
 */
async function serve(location, pageSize) {
  const { createTaxiiRouter } = await import(join(DIST, 'taxii/index.js'));
  const { createHttpApp } = await import(join(DIST, 'app/http.js'));
  const { createLogger } = await import(join(DIST, 'app/logger.js'));
  const store = await reopenBenchStore(location);
  const logger = createLogger('silent');
  const app = createHttpApp({
    store,
    logger,
    isDraining: () => false,
    routers: [
      createTaxiiRouter({
        store,
        logger,
        publicUrl: 'http://127.0.0.1',
        title: 'bench',
        apiRootPath: 'hub',
        maxPageSize: pageSize,
        cursorSecret: 'bench-secret-bench-secret',
      }),
    ],
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  process.send({ port: server.address().port });
  // The parent requests the CPU time used so far, to report the server's
  // cost per page apart from the client's and from other load on the machine.
  process.on('message', (message) => {
    if (message === 'cpu-usage') process.send({ cpuUsage: process.cpuUsage() });
  });
  process.on('disconnect', () => process.exit(0));
}

/** Returns the CPU time in ms (user plus system) that the server process has used. */
async function serverCpuMs(child) {
  const reply = new Promise((resolve) => {
    const listener = (message) => {
      if (message?.cpuUsage === undefined) return;
      child.off('message', listener);
      resolve(message.cpuUsage);
    };
    child.on('message', listener);
  });
  child.send('cpu-usage');
  const usage = await reply;
  return (usage.user + usage.system) / 1000;
}

async function measure() {
  const count = Number(flags.objects ?? 100_000);
  const pageSize = Number(flags.limit ?? 1000);
  const { buildIndicator, indicatorId, patternFor } = await import(join(DIST, 'stix/index.js'));

  const { store, location, cleanup } = await openBenchStore(flags.store ?? 'sqlite');
  const collectionId = '00000000-0000-4000-8000-00000000be01';
  await store.upsertCollection({
    id: collectionId,
    alias: 'bench-read',
    title: 'Bench',
    canRead: true,
    canWrite: false,
    mediaTypes: ['application/stix+json;version=2.1'],
  });
  const identity = 'identity--00000000-0000-4000-8000-000000000001';
  for (let start = 0; start < count; start += 10_000) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + 10_000); i++) {
      batch.push(
        buildIndicator({
          collectionId,
          identityId: identity,
          type: 'ipv4',
          value: ipv4(i),
          confidence: 50,
          tlpMarkingId: 'marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487',
          indicatorTypes: ['malicious-activity'],
          createdMicros: 1_700_000_000_000_000 + i,
          validFromMicros: 1_700_000_000_000_000,
        }),
      );
    }
    await store.putObjects(collectionId, batch);
  }
  void indicatorId;
  void patternFor;

  // Through the port.
  let started = performance.now();
  let read = 0;
  let after;
  for (;;) {
    const page = await store.queryObjects({ collectionId, after, limit: pageSize });
    read += page.items.length;
    const last = page.items.at(-1);
    if (!page.more || !last) break;
    after = { dateAdded: last.dateAdded, id: last.id, version: last.version };
  }
  const storeSeconds = (performance.now() - started) / 1000;
  if (read !== count) throw new Error(`store read ${read} of ${count}`);

  // `--quick true` reads through TAXII once, with undici, for a server where
  // each pass takes minutes (FerretDB scans the collection for every page).
  const quick = flags.quick === 'true';

  // Through TAXII over HTTP.
  const child = fork(
    fileURLToPath(import.meta.url),
    ['--serve', JSON.stringify(location), '--limit', String(pageSize)],
    {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      ...(process.env.BENCH_PROFILE_DIR
        ? { execArgv: ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] }
        : {}),
    },
  );
  const { port } = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) =>
      reject(new Error(`server process exited with code ${code} before it listened`)),
    );
  });
  const base = `http://127.0.0.1:${port}/taxii2/hub/collections/${collectionId}/objects/?limit=${pageSize}`;
  const latencies = [];
  let fetched = 0;
  let url = base;
  started = performance.now();
  for (;;) {
    if (quick) break;
    const pageStarted = performance.now();
    const response = await fetch(url, {
      headers: { accept: 'application/taxii+json;version=2.1' },
    });
    const envelope = await response.json();
    latencies.push(performance.now() - pageStarted);
    fetched += envelope.objects?.length ?? 0;
    if (!envelope.more) break;
    url = `${base}&next=${encodeURIComponent(envelope.next)}`;
  }
  const httpSeconds = (performance.now() - started) / 1000;
  if (!quick && fetched !== count) throw new Error(`TAXII read ${fetched} of ${count}`);

  // The same pages with undici's request(), whose body reading costs the
  // client less than fetch()'s web streams.
  const { request } = await import('undici');
  const undiciLatencies = [];
  let undiciFetched = 0;
  let pages = 0;
  url = base;
  const cpuBefore = await serverCpuMs(child);
  started = performance.now();
  for (;;) {
    const pageStarted = performance.now();
    const response = await request(url, {
      headers: { accept: 'application/taxii+json;version=2.1' },
    });
    const envelope = JSON.parse(await response.body.text());
    undiciLatencies.push(performance.now() - pageStarted);
    undiciFetched += envelope.objects?.length ?? 0;
    pages++;
    if (!envelope.more) break;
    url = `${base}&next=${encodeURIComponent(envelope.next)}`;
  }
  const undiciSeconds = (performance.now() - started) / 1000;
  const serverCpuPerPage = ((await serverCpuMs(child)) - cpuBefore) / pages;
  if (undiciFetched !== count) throw new Error(`TAXII read ${undiciFetched} of ${count}`);

  // A harvester that requests the next page as soon as it has `next`, which
  // the hub writes first in the envelope, and parses the page while the
  // server builds the next one. Every object is still parsed and counted.
  let pipelinedFetched = 0;
  started = performance.now();
  let pending = quick ? undefined : readPage(request, base);
  while (pending !== undefined) {
    const body = await pending;
    const head = ENVELOPE_HEAD.exec(body);
    if (head === null)
      throw new Error(`invalid page: it does not start with more and next: ${body.slice(0, 80)}`);
    pending =
      head[1] === 'true'
        ? readPage(request, `${base}&next=${encodeURIComponent(JSON.parse(head[2]))}`)
        : undefined;
    pipelinedFetched += JSON.parse(body).objects?.length ?? 0;
  }
  const pipelinedSeconds = (performance.now() - started) / 1000;
  if (!quick && pipelinedFetched !== count)
    throw new Error(`TAXII read ${pipelinedFetched} of ${count}`);

  child.disconnect();
  await new Promise((resolve) => child.once('exit', resolve));
  await cleanup();
  latencies.sort((a, b) => a - b);
  writeSync(
    1,
    `${JSON.stringify({
      objects: count,
      pageSize,
      storePerSecond: Math.round(count / storeSeconds),
      taxiiPerSecond: Math.round(count / undiciSeconds),
      taxiiFetchPerSecond: quick ? undefined : Math.round(count / httpSeconds),
      taxiiPipelinedPerSecond: quick ? undefined : Math.round(count / pipelinedSeconds),
      pageP50Ms: Number(
        percentile(
          undiciLatencies.sort((a, b) => a - b),
          50,
        ).toFixed(1),
      ),
      pageP95Ms: Number(percentile(undiciLatencies, 95).toFixed(1)),
      serverCpuMsPerPage: Number(serverCpuPerPage.toFixed(2)),
    })}\n`,
  );
  process.exit(0);
}

/** Requests one page and returns its body text. */
async function readPage(request, url) {
  const response = await request(url, {
    headers: { accept: 'application/taxii+json;version=2.1' },
  });
  if (response.statusCode !== 200) {
    throw new Error(`GET ${url} returned ${response.statusCode}: ${await response.body.text()}`);
  }
  return response.body.text();
}
