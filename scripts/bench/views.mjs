// View cases, on a SQLite store in a temp directory.
//
//   --case render --kind edl-ip --entries N
//       Loads N IPv4 addresses (or, with --kind edl-url, N URLs) into a
//       collection through store.applyPoll, then renders the view and stores
//       it, as the hub does after a poll. Memory is the growth of the
//       resident set during the render: the peak is reset to the current
//       resident set after loading (Linux /proc/self/clear_refs), so the
//       load's own peak does not hide the render's.
//   --case http --entries N --small M --duration S
//       Stores an `edl-ip` view of N addresses and one cut to M entries, then
//       loads them with wrk (2 threads, 100 connections, S seconds per run):
//       once from the hub's Koa app and once from a bare node:http server that
//       sends the same bytes, for full bodies and for 304 responses.
//
// The HTTP servers run in a child process of this script (`--case serve`,
// started with child_process.fork), and wrk runs as another process, so the
// servers' event loop shares no thread with this script or with the load tool.
// Everything listens on 127.0.0.1, port 0.
import { execFile, fork, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIST, ipv4, parseFlags } from './common.mjs';

const flags = parseFlags(process.argv.slice(2));
const COLLECTION_ID = '00000000-0000-4000-8000-00000000be02';
const ALIAS = 'bench-views';
const SOURCE_ID = 'bench';
// Values per applyPoll call, so the load keeps one batch's sightings and
// indicator versions in memory at a time, not the whole collection's.
const BATCH = 50_000;
const WRK_THREADS = 2;
const WRK_CONNECTIONS = 100;

const { createSqliteStore } = await import(join(DIST, 'store/index.js'));
const { createLogger } = await import(join(DIST, 'app/logger.js'));
const { renderCollectionViews, viewSpec, createViewHandler } = await import(
  join(DIST, 'views/index.js')
);

switch (flags.case) {
  case 'render':
    await runRender(flags.kind ?? 'edl-ip', positiveInteger('entries', 100_000));
    break;
  case 'http':
    await runHttp(
      positiveInteger('entries', 100_000),
      positiveInteger('small', 1000),
      positiveInteger('duration', 10),
    );
    break;
  case 'serve':
    await serve(flags.file, flags.views.split(','));
    break;
  default:
    throw new Error(`invalid --case ${JSON.stringify(flags.case)}: expected render, http or serve`);
}

/** Returns the flag `--name` as a positive integer, or `fallback` when it is absent. */
function positiveInteger(name, fallback) {
  const text = flags[name];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`invalid --${name} ${JSON.stringify(text)}: expected a positive integer`);
  }
  return value;
}

/** Opens a SQLite store in a fresh temp directory and creates the bench collection. */
async function openStore() {
  const dir = mkdtempSync(join(tmpdir(), 'feedhub-bench-views-'));
  const file = join(dir, 'bench.sqlite');
  const store = createSqliteStore({ file });
  await store.init();
  await store.upsertCollection({
    id: COLLECTION_ID,
    alias: ALIAS,
    title: 'Bench views',
    canRead: true,
    canWrite: false,
    mediaTypes: [],
  });
  const record = await store.getCollection(COLLECTION_ID);
  return { store, file, dir, record };
}

/** Builds the processing policy of a collection with default guards and allow-lists and one source, as the hub does. */
async function benchProcessing() {
  const { CollectionProcessing, DEFAULT_WITHDRAWAL_POLICY, NO_AGING } = await import(
    join(DIST, 'processing/policy.js')
  );
  const { DEFAULT_SCREEN_SETTINGS } = await import(join(DIST, 'processing/index.js'));
  return new CollectionProcessing({
    collectionId: COLLECTION_ID,
    screen: DEFAULT_SCREEN_SETTINGS,
    withdrawal: DEFAULT_WITHDRAWAL_POLICY,
    confidenceRule: 'max',
    sources: [
      {
        id: SOURCE_ID,
        name: 'Bench',
        confidence: 50,
        weight: 1,
        tlp: 'clear',
        indicatorTypes: ['malicious-activity'],
        labels: [],
        aging: NO_AGING,
      },
    ],
  });
}

/**
 * URL n: a host under the reserved `.example` TLD (RFC 2606), which never
 * resolves. The hub's guards check only the host of a URL against protected
 * names, not against the public-suffix list, and no built-in allow-list
 * covers `.example`, so the screen keeps every one.
 */
function url(n) {
  return `http://host-${n}.example/path/${n}`;
}

/**
 * Stores `count` values through applyPoll in batches, the way a poll stores
 * them: sightings of one source, and hub indicator versions built by the
 * processing code. Values are checked to be canonical and kept by the
 * screen first, so that every one reaches the view.
 */
async function loadValues(store, processing, valueType, valueAt, count) {
  const { buildIdentity, indicatorId, patternFor, tlpMarking, toStoredVersion } = await import(
    join(DIST, 'stix/index.js')
  );
  const { canonicalize } = await import(join(DIST, 'processing/index.js'));
  const { buildHubVersion } = await import(join(DIST, 'processing/versions.js'));

  const first = canonicalize(valueType, valueAt(0));
  if (!first.ok || first.value !== valueAt(0))
    throw new Error(`bench value ${valueAt(0)} is not canonical: ${JSON.stringify(first)}`);
  const verdict = processing.screen.judge(valueType, valueAt(0));
  if (verdict.kind !== 'keep')
    throw new Error(
      `bench value ${valueAt(0)} is kept out by the screen: ${JSON.stringify(verdict)}`,
    );

  const seenAt = Date.now() * 1000;
  const buildVersion = (change) => buildHubVersion(change, processing.versions);
  const buildIndicator = (sighting) =>
    buildVersion({
      kind: 'created',
      ...sighting,
      at: seenAt,
      sightings: [
        {
          sourceId: SOURCE_ID,
          indicatorId: sighting.indicatorId,
          firstSeen: seenAt,
          lastSeen: seenAt,
          missed: 0,
          creator: true,
        },
      ],
    });
  const extraObjects = [
    buildIdentity({ collectionId: COLLECTION_ID, sourceId: SOURCE_ID, name: 'Bench' }),
    toStoredVersion(tlpMarking('clear').json),
  ];
  for (let start = 0; start < count; start += BATCH) {
    const sightings = [];
    for (let n = start; n < Math.min(count, start + BATCH); n++) {
      const value = valueAt(n);
      sightings.push({
        valueType,
        value,
        indicatorId: indicatorId(COLLECTION_ID, patternFor(valueType, value)),
      });
    }
    const summary = await store.applyPoll({
      collectionId: COLLECTION_ID,
      sourceId: SOURCE_ID,
      seenAt,
      sightings,
      buildIndicator,
      buildVersion,
      extraObjects: start === 0 ? extraObjects : [],
      state: { collectionId: COLLECTION_ID, sourceId: SOURCE_ID },
    });
    if (summary.created !== sightings.length)
      throw new Error(`batch at ${start}: created ${summary.created} of ${sightings.length}`);
  }
}

function currentRssMiB() {
  return Math.round(process.memoryUsage.rss() / 2 ** 20);
}

/** Peak resident set since the last `resetPeakRss`, from /proc/self/status (VmHWM, in kB). */
function peakRssSinceResetMiB() {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!match) throw new Error('VmHWM is missing from /proc/self/status');
  return Math.round(Number(match[1]) / 1024);
}

/** Resets the kernel's peak resident set of this process to the current one (Linux 4.0+). */
function resetPeakRss() {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch (error) {
    throw new Error(
      `could not reset the peak resident set through /proc/self/clear_refs (Linux 4.0+ is needed): ${error.message}`,
      { cause: error },
    );
  }
}

async function runRender(kind, count) {
  if (kind !== 'edl-ip' && kind !== 'edl-url')
    throw new Error(`invalid --kind ${JSON.stringify(kind)}: expected edl-ip or edl-url`);
  const processing = await benchProcessing();
  const { store, dir, record } = await openStore();

  let started = performance.now();
  if (kind === 'edl-ip') await loadValues(store, processing, 'ipv4', ipv4, count);
  else await loadValues(store, processing, 'url', url, count);
  const loadSeconds = (performance.now() - started) / 1000;

  const spec = viewSpec(`bench-${kind}`, kind);
  const context = {
    store,
    collection: record,
    versions: processing.versions,
    collectionTlp: 'clear',
    screen: processing.screen,
  };
  // Run with --expose-gc (bench.mjs does) so that the load's garbage is not counted as the render's.
  globalThis.gc?.();
  const baselineMiB = currentRssMiB();
  resetPeakRss();
  started = performance.now();
  const { results, failures } = await renderCollectionViews(context, [spec]);
  const renderSeconds = (performance.now() - started) / 1000;
  const peakMiB = peakRssSinceResetMiB();

  if (failures.length > 0) throw failures[0].error;
  const result = results[0];
  if (result.report.entries !== count)
    throw new Error(
      `view lists ${result.report.entries} of ${count} entries: ${JSON.stringify(result.report)}`,
    );
  if ((await store.getViewEtag(COLLECTION_ID, spec.name)) !== result.view.etag)
    throw new Error(
      `stored ETag of view ${spec.name} differs from the rendered ${result.view.etag}`,
    );

  await store.close();
  rmSync(dir, { recursive: true, force: true });
  writeSync(
    1,
    `${JSON.stringify({
      kind,
      entries: count,
      loadSeconds: Number(loadSeconds.toFixed(1)),
      renderSeconds: Number(renderSeconds.toFixed(2)),
      renderOnlyMs: result.report.durationMs,
      entriesPerSecond: Math.round(count / renderSeconds),
      bodyMiB: Number((result.view.body.length / 2 ** 20).toFixed(1)),
      baselineRssMiB: baselineMiB,
      peakRssMiB: peakMiB,
      renderGrowthMiB: peakMiB - baselineMiB,
    })}\n`,
  );
}

/** Fails with the install command when wrk is not on the PATH. */
function requireWrk() {
  const probe = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  if (probe.error?.code === 'ENOENT')
    throw new Error(
      'wrk is not installed; install it with `apt-get install wrk` (Debian package wrk)',
    );
  if (probe.error) throw probe.error;
}

async function runHttp(count, small, durationSeconds) {
  requireWrk();
  if (!(small > 0 && small < count))
    throw new Error(`invalid --small ${small}: expected 0 < small < --entries (${count})`);
  const processing = await benchProcessing();
  const { store, file, dir, record } = await openStore();
  await loadValues(store, processing, 'ipv4', ipv4, count);
  const specs = [
    viewSpec('bench-ip', 'edl-ip'),
    viewSpec('bench-ip-small', 'edl-ip', { maxEntries: small }),
  ];
  const context = {
    store,
    collection: record,
    versions: processing.versions,
    collectionTlp: 'clear',
    screen: processing.screen,
  };
  const { results: rendered, failures } = await renderCollectionViews(context, specs);
  if (failures.length > 0) throw failures[0].error;
  const listed = rendered.map((result) => result.report.entries);
  if (listed[0] !== count || listed[1] !== small)
    throw new Error(`views list ${listed.join(' and ')} entries; expected ${count} and ${small}`);
  await store.close();

  const child = fork(
    fileURLToPath(import.meta.url),
    ['--case', 'serve', '--file', file, '--views', specs.map((s) => s.name).join(',')],
    {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    },
  );
  try {
    const ready = await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) =>
        reject(new Error(`server process exited with code ${code} before it listened`)),
      );
    });
    const servers = {
      hub: `http://127.0.0.1:${ready.hubPort}`,
      bare: `http://127.0.0.1:${ready.barePort}`,
    };
    const results = {};
    for (const spec of specs) {
      const { etag, bytes, sha256 } = ready.views[spec.name];
      const path = `/feeds/${ALIAS}/${spec.name}`;
      for (const [name, base] of Object.entries(servers))
        await checkServer(name, base + path, etag, bytes, sha256);
      const run = async (base, headers) => wrk(base + path, headers, durationSeconds);
      // One after the other, so the runs do not compete for the two cores.
      const hub200 = await run(servers.hub, []);
      const bare200 = await run(servers.bare, []);
      const hub304 = await run(servers.hub, [`If-None-Match: ${etag}`]);
      const bare304 = await run(servers.bare, [`If-None-Match: ${etag}`]);
      results[spec.name === 'bench-ip' ? 'large' : 'small'] = {
        entries: spec.name === 'bench-ip' ? count : small,
        bytes,
        hub200,
        bare200,
        hub304,
        bare304,
        ratio200: Number((hub200.perSecond / bare200.perSecond).toFixed(2)),
        ratio304: Number((hub304.perSecond / bare304.perSecond).toFixed(2)),
      };
    }
    writeSync(
      1,
      `${JSON.stringify({ durationSeconds, threads: WRK_THREADS, connections: WRK_CONNECTIONS, ...results })}\n`,
    );
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sends one plain GET (no Accept-Encoding) and returns the status, headers and body. */
function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode,
          headers: response.headers,
          body: Buffer.concat(chunks),
        }),
      );
      response.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

/** Checks that a server sends the stored bytes with their ETag, and 304 for that ETag. */
async function checkServer(name, url, etag, bytes, sha256) {
  const full = await get(url);
  const digest = createHash('sha256').update(full.body).digest('hex');
  if (
    full.status !== 200 ||
    full.headers.etag !== etag ||
    full.body.length !== bytes ||
    digest !== sha256 ||
    full.headers['content-encoding'] !== undefined
  ) {
    throw new Error(
      `${name} ${url}: expected 200 with ETag ${etag} and ${bytes} plain bytes, got ${full.status} with ETag ${full.headers.etag}, ${full.body.length} bytes, encoding ${full.headers['content-encoding']}`,
    );
  }
  const cached = await get(url, { 'If-None-Match': etag });
  if (cached.status !== 304)
    throw new Error(`${name} ${url}: expected 304 for If-None-Match ${etag}, got ${cached.status}`);
}

/** Runs wrk against one URL and returns requests per second and the total of the socket errors it prints. */
function wrk(url, headers, durationSeconds) {
  const args = [
    `-t${WRK_THREADS}`,
    `-c${WRK_CONNECTIONS}`,
    `-d${durationSeconds}s`,
    ...headers.flatMap((h) => ['-H', h]),
    url,
  ];
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`wrk ${args.join(' ')} failed: ${stderr || error.message}`));
        return;
      }
      const perSecond = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
      if (!perSecond) {
        reject(new Error(`wrk printed no Requests/sec line:\n${stdout}`));
        return;
      }
      const badStatus = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
      const socketErrors =
        /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
      if (badStatus > 0) {
        reject(new Error(`wrk ${url}: ${badStatus} responses were not 2xx or 3xx:\n${stdout}`));
        return;
      }
      resolve({
        perSecond: Math.round(Number(perSecond[1])),
        socketErrors: socketErrors
          ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0)
          : 0,
      });
    });
  });
}

/**
 * Serves, in the child process, the stored views from the hub's Koa app (health
 * routes, TAXII router and view router, as an API process mounts them) and
 * the same bytes from a bare node:http server. Sends the ports and the
 * views' tags and sizes to the parent once both listen.
 */
async function serve(file, viewNames) {
  const { createHttpApp, hubRequestListener } = await import(join(DIST, 'app/http.js'));
  const { createTaxiiRouter } = await import(join(DIST, 'taxii/index.js'));
  const store = createSqliteStore({ file });
  await store.init();
  const record = await store.getCollection(COLLECTION_ID);

  // The hub's default level is info, and it logs served requests at debug,
  // so a discarding destination at info costs what the hub's logging costs.
  const logger = createLogger('info', { write() {} });
  const specs = viewNames.map((name) => viewSpec(name, 'edl-ip'));
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
        maxPageSize: 1000,
        cursorSecret: 'bench-secret-bench-secret',
      }),
    ],
  });
  // The same composition as the hub: views on their own handler, the rest on Koa.
  const hub = createServer(
    hubRequestListener(
      app,
      createViewHandler({
        store,
        logger,
        viewSpecs: (collection) => (collection.id === record.id ? specs : []),
      }),
    ),
  );

  const views = {};
  const bodies = new Map();
  for (const name of viewNames) {
    const view = await store.getView(COLLECTION_ID, name);
    if (view === undefined) throw new Error(`view ${name} is not stored in ${file}`);
    bodies.set(`/feeds/${ALIAS}/${name}`, view);
    views[name] = {
      etag: view.etag,
      bytes: view.body.length,
      sha256: createHash('sha256').update(view.body).digest('hex'),
    };
  }
  // The minimum a firewall needs: 304 for a matching tag, else the body with its tag and length.
  const bare = createServer((req, res) => {
    const view = bodies.get(req.url);
    if (view === undefined) {
      res.writeHead(404).end();
      return;
    }
    const ifNoneMatch = req.headers['if-none-match'];
    if (
      ifNoneMatch !== undefined &&
      (ifNoneMatch === '*' || ifNoneMatch.split(/\s*,\s*/).includes(view.etag))
    ) {
      res.writeHead(304, { ETag: view.etag }).end();
      return;
    }
    res
      .writeHead(200, {
        'Content-Type': view.contentType,
        'Content-Length': view.body.length,
        ETag: view.etag,
      })
      .end(view.body);
  });

  await Promise.all(
    [hub, bare].map((server) => new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))),
  );
  // Exit with the parent, so no server outlives a failed run.
  process.on('disconnect', () => process.exit(0));
  process.send({ hubPort: hub.address().port, barePort: bare.address().port, views });
}
