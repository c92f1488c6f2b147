// Ingest case: polls a generated list of N IPv4 addresses from a local
// HTTP server through the whole pipeline (fetch, parse, canonical values,
// STIX, store), first into an empty collection, then again unchanged (the
// server sends no validators; the hub finds that the body is the same as the
// previous one and refreshes its sightings in one step), then with one line
// removed (the body is parsed and applied again in full). Each poll's CPU
// time (user and system, all threads) is reported with its wall time,
// because CPU time varies less when other processes share the machine.
//
// `--format` picks the list: `text` (one address per line, the default),
// `csv` (a header and an address and a tag per row) or `json-elements` (one
// JSON document whose `items` array has an object per address, read by
// element).
import { createServer } from 'node:http';
import { writeSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, ipv4, openBenchStore, parseFlags, peakRssMiB } from './common.mjs';

const flags = parseFlags(process.argv.slice(2));
const entries = Number(flags.entries ?? 100_000);
const { pollSource } = await import(join(DIST, 'sources/index.js'));
const { createLogger } = await import(join(DIST, 'app/logger.js'));

const format = flags.format ?? 'text';
const FORMATS = {
  text: {
    body: (from) => {
      const lines = ['# generated benchmark list'];
      for (let i = from; i < entries; i++) lines.push(ipv4(i));
      return `${lines.join('\n')}\n`;
    },
    settings: { kind: 'text-list' },
  },
  csv: {
    body: (from) => {
      const lines = ['ip,tag'];
      for (let i = from; i < entries; i++) lines.push(`${ipv4(i)},tag-${i % 7}`);
      return `${lines.join('\n')}\n`;
    },
    settings: {
      kind: 'csv',
      csv: {
        delimiter: ',',
        comment: '#',
        header: true,
        columns: [{ column: 'ip', valueType: 'ipv4' }],
        skip: [],
        attributes: [],
      },
    },
  },
  'json-elements': {
    body: (from) => {
      const items = [];
      for (let i = from; i < entries; i++) items.push(JSON.stringify({ ip: ipv4(i), n: i }));
      return `{"generated":"benchmark","items":[${items.join(',')}]}`;
    },
    settings: {
      kind: 'json',
      json: { format: 'elements', elements: 'items', expression: 'ip' },
    },
  },
};
if (FORMATS[format] === undefined) {
  throw new Error(`unknown --format ${format}; use ${Object.keys(FORMATS).join(', ')}`);
}

// The bodies are built once, before the baseline memory reading. The third
// poll lists every value but the first, so the body differs and is parsed again.
const body = Buffer.from(FORMATS[format].body(0));
const changedBody = Buffer.from(FORMATS[format].body(1));
let served = body;
const server = createServer((req, res) =>
  res.writeHead(200, { 'content-type': 'text/plain' }).end(served),
);
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}/list.txt`;

const { store, cleanup } = await openBenchStore(flags.store ?? 'sqlite');
const collectionId = '00000000-0000-4000-8000-00000000be00';
await store.upsertCollection({
  id: collectionId,
  alias: 'bench',
  title: 'Bench',
  canRead: true,
  canWrite: false,
  mediaTypes: [],
});
const source = {
  id: 'bench',
  name: 'Bench',
  ...FORMATS[format].settings,
  url,
  valueType: 'ipv4',
  timeoutMs: 600_000,
  maxBytes: 1 << 30,
  confidence: 50,
  tlp: 'clear',
  indicatorTypes: ['malicious-activity'],
  labels: [],
  // The hub's defaults for a list source: a request on a kept-alive
  // connection that the server closed meanwhile is retried.
  http: { maxRetries: 3, retryDelayMs: 1000 },
};
const deps = { store, logger: createLogger('silent'), userAgent: 'feedhub-bench' };

/**
 * Polls once; returns the report with the wall and CPU seconds the poll took.
 * The SQLite store copies the WAL back into its file on a worker thread after
 * the poll has committed. The case waits for that copy before the next poll,
 * so that the two do not share the CPU, and reports the copy's wall time apart.
 */
async function timedPoll() {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const report = await pollSource(deps, collectionId, source);
  const used = process.cpuUsage(cpu);
  const polled = performance.now();
  // Only the SQLite store has checkpoints to wait for: a MongoDB server runs its own in the background.
  let checkpointSeconds;
  if (store.checkpointsSettled !== undefined) {
    await store.checkpointsSettled();
    checkpointSeconds = (performance.now() - polled) / 1000;
  }
  return {
    report,
    seconds: (polled - started) / 1000,
    cpuSeconds: (used.user + used.system) / 1e6,
    checkpointSeconds,
  };
}

const baselineMiB = peakRssMiB();
const freshRun = await timedPoll();
const fresh = freshRun.report;
if (fresh.outcome !== 'applied' || fresh.created !== entries)
  throw new Error(`fresh poll: ${JSON.stringify(fresh)}`);

// `--fresh-only true` stops after the first poll, for a store where the
// re-polls of a large list would take too long (FerretDB).
let againRun;
let changedRun;
if (flags['fresh-only'] !== 'true') {
  againRun = await timedPoll();
  served = changedBody;
  changedRun = await timedPoll();
  const [again, changed] = [againRun.report, changedRun.report];
  if (changed.outcome !== 'applied' || changed.withdrawn !== 1 || changed.unchangedList) {
    throw new Error(`changed re-poll: ${JSON.stringify(changed)}`);
  }
  if (again.outcome !== 'applied' || again.created !== 0)
    throw new Error(`re-poll: ${JSON.stringify(again)}`);
}

server.close();
await cleanup();
/** Rounds to two decimals; undefined stays undefined, so JSON leaves the field out. */
const twoDecimals = (value) => (value === undefined ? undefined : Number(value.toFixed(2)));
const rate = (count, run) => (run === undefined ? undefined : Math.round(count / run.seconds));
writeSync(
  1,
  `${JSON.stringify({
    entries,
    format,
    freshPerSecond: rate(entries, freshRun),
    repollPerSecond: rate(entries, againRun),
    changedPerSecond: rate(entries - 1, changedRun),
    freshSeconds: twoDecimals(freshRun.seconds),
    repollSeconds: twoDecimals(againRun?.seconds),
    changedSeconds: twoDecimals(changedRun?.seconds),
    freshCpuSeconds: twoDecimals(freshRun.cpuSeconds),
    repollCpuSeconds: twoDecimals(againRun?.cpuSeconds),
    changedCpuSeconds: twoDecimals(changedRun?.cpuSeconds),
    freshCheckpointSeconds: twoDecimals(freshRun.checkpointSeconds),
    bodyMiB: Number((body.length / 2 ** 20).toFixed(1)),
    baselineRssMiB: baselineMiB,
    peakRssMiB: peakRssMiB(),
  })}\n`,
);
process.exit(0);
