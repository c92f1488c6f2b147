// Runs the benchmark cases, each in its own Node process so that peak memory
// is the case's own, and writes the results to docs/benchmarks.md.
//
//   npm run bench                      all cases; MongoDB cases need MONGODB_URI
//   npm run bench -- --only ingest     cases whose name contains "ingest"
//
// Everything runs on 127.0.0.1.
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const only = process.argv.includes('--only')
  ? process.argv[process.argv.indexOf('--only') + 1]
  : undefined;
const stores = process.env.MONGODB_URI ? ['sqlite', 'mongo'] : ['sqlite'];

const cases = [];
cases.push({
  name: 'ingest-100k-sqlite',
  script: 'bench/ingest.mjs',
  args: ['--store', 'sqlite', '--entries', '100000'],
});
cases.push({
  name: 'read-100k-sqlite',
  script: 'bench/read.mjs',
  args: ['--store', 'sqlite', '--objects', '100000', '--limit', '1000'],
});
// FerretDB 1.24 with its SQLite handler is the MongoDB-wire server of CI. It
// scans a whole collection for every query but an exact _id, and it commits
// each update on its own. The 100,000-entry list is therefore polled there
// only once (its re-polls would take about a quarter of an hour), and the
// re-polls are measured on 2,000 entries. The 100,000 objects are read once
// through the store and once through TAXII: each page scans the collection.
if (stores.includes('mongo')) {
  cases.push({
    name: 'ingest-100k-mongo',
    script: 'bench/ingest.mjs',
    args: ['--store', 'mongo', '--entries', '100000', '--fresh-only', 'true'],
  });
  cases.push({
    name: 'ingest-2k-mongo',
    script: 'bench/ingest.mjs',
    args: ['--store', 'mongo', '--entries', '2000'],
  });
  cases.push({
    name: 'read-100k-mongo',
    script: 'bench/read.mjs',
    args: ['--store', 'mongo', '--objects', '100000', '--limit', '1000', '--quick', 'true'],
  });
}
cases.push({
  name: 'ingest-1m-sqlite',
  script: 'bench/ingest.mjs',
  args: ['--store', 'sqlite', '--entries', '1000000'],
});
// The same pipeline on the other streamed formats: peak memory at 100,000
// and at 1,000,000 rows shows whether it grows with the list.
cases.push({
  name: 'ingest-csv-100k-sqlite',
  script: 'bench/ingest.mjs',
  args: ['--store', 'sqlite', '--entries', '100000', '--format', 'csv'],
});
cases.push({
  name: 'ingest-csv-1m-sqlite',
  script: 'bench/ingest.mjs',
  args: ['--store', 'sqlite', '--entries', '1000000', '--format', 'csv'],
});
cases.push({
  name: 'ingest-json-elements-1m-sqlite',
  script: 'bench/ingest.mjs',
  args: ['--store', 'sqlite', '--entries', '1000000', '--format', 'json-elements'],
});
cases.push({
  name: 'read-1m-sqlite',
  script: 'bench/read.mjs',
  args: ['--store', 'sqlite', '--objects', '1000000', '--limit', '1000'],
});
// View cases: render and store an EDL from a loaded collection, then serve
// stored views over HTTP under wrk. --expose-gc lets the render case collect
// the load's garbage before it takes its memory baseline.
cases.push({
  name: 'view-render-1m-ip',
  script: 'bench/views.mjs',
  nodeArgs: ['--expose-gc'],
  args: ['--case', 'render', '--kind', 'edl-ip', '--entries', '1000000'],
});
cases.push({
  name: 'view-render-500k-url',
  script: 'bench/views.mjs',
  nodeArgs: ['--expose-gc'],
  args: ['--case', 'render', '--kind', 'edl-url', '--entries', '500000'],
});
cases.push({
  name: 'view-http',
  script: 'bench/views.mjs',
  args: ['--case', 'http', '--entries', '100000', '--small', '1000', '--duration', '10'],
});
// Medallion's memory backend matches each object of a page against the whole
// manifest, so a page costs time quadratic in the collection size: 10,000
// objects did not return a first page within 300 s, 1,000 took 5.5 s.
const MEDALLION_OBJECTS = 3000;
if (process.env.FEEDHUB_PYTHON) {
  cases.push({
    name: 'medallion-3k',
    script: 'bench/medallion.mjs',
    args: ['--objects', String(MEDALLION_OBJECTS), '--limit', '1000'],
  });
}

const results = {};
for (const c of cases) {
  if (only && !c.name.includes(only)) continue;
  process.stderr.write(`bench ${c.name} ... `);
  const output = execFileSync(
    process.execPath,
    [...(c.nodeArgs ?? []), here(c.script), ...c.args],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  results[c.name] = JSON.parse(output.trim().split('\n').at(-1));
  process.stderr.write(`${JSON.stringify(results[c.name])}\n`);
}

const mongoNote = process.env.MONGODB_URI
  ? `MongoDB cases ran against ${describeMongo()} on 127.0.0.1.`
  : 'MongoDB cases did not run: MONGODB_URI was not set.';
const machine = [
  `- CPU: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
  `- Memory: ${Math.round(totalmem() / 2 ** 30)} GiB`,
  `- Node.js ${process.version}`,
  `- ${mongoNote}`,
  `- Date: ${new Date().toISOString().slice(0, 10)}`,
].join('\n');

const row = (cells) => `| ${cells.join(' | ')} |`;
const fmt = (n) => (n === undefined ? 'n/a' : Number(n).toLocaleString('en-US'));
const ingestRows = Object.entries(results)
  .filter(([name]) => name.startsWith('ingest'))
  .map(([name, r]) =>
    row([
      name,
      fmt(r.entries),
      fmt(r.freshPerSecond),
      fmt(r.repollPerSecond),
      fmt(r.changedPerSecond),
      `${r.baselineRssMiB} → ${r.peakRssMiB}`,
      r.freshCheckpointSeconds === undefined ? 'n/a' : r.freshCheckpointSeconds.toFixed(2),
    ]),
  );
const readRows = Object.entries(results)
  .filter(([name]) => name.startsWith('read'))
  .map(([name, r]) =>
    row([
      name,
      fmt(r.objects),
      fmt(r.pageSize),
      fmt(r.storePerSecond),
      fmt(r.taxiiPerSecond),
      fmt(r.taxiiFetchPerSecond),
      fmt(r.taxiiPipelinedPerSecond),
      `${r.pageP50Ms} / ${r.pageP95Ms}`,
    ]),
  );

const viewRenderRows = Object.entries(results)
  .filter(([name]) => name.startsWith('view-render'))
  .map(([name, r]) =>
    row([
      name,
      r.kind,
      fmt(r.entries),
      fmt(r.bodyMiB),
      fmt(r.renderSeconds),
      fmt(r.entriesPerSecond),
      `${r.baselineRssMiB} → ${r.peakRssMiB} (+${r.renderGrowthMiB})`,
    ]),
  );
const viewHttp = results['view-http'];
const viewHttpRows =
  viewHttp === undefined
    ? []
    : ['large', 'small'].map((size) => {
        const r = viewHttp[size];
        return row([
          fmt(r.entries),
          fmt(r.bytes),
          fmt(r.hub200.perSecond),
          fmt(r.bare200.perSecond),
          `${r.ratio200}`,
          fmt(r.hub304.perSecond),
          fmt(r.bare304.perSecond),
          `${r.ratio304}`,
        ]);
      });
const viewHttpSocketErrors =
  viewHttp === undefined
    ? 0
    : ['large', 'small']
        .flatMap((size) =>
          ['hub200', 'bare200', 'hub304', 'bare304'].map((run) => viewHttp[size][run].socketErrors),
        )
        .reduce((sum, n) => sum + n, 0);
const viewHttpErrorNote =
  viewHttpSocketErrors === 0
    ? ''
    : `\n\nwrk counted ${viewHttpSocketErrors} socket errors (connect, read, write or timeout) over these runs; see the case's JSON line for each run.`;

const medallionRows = Object.entries(results)
  .filter(([name]) => name.startsWith('medallion'))
  .map(([name, r]) =>
    row([
      name,
      fmt(r.objects),
      fmt(r.pageSize),
      fmt(r.hubPerSecond),
      fmt(r.medallionPerSecond),
      `${r.speedup}×`,
    ]),
  );
const medallionSection = process.env.FEEDHUB_PYTHON
  ? `The same indicators are loaded into medallion 3.0.0 (memory backend, its
Flask development server) and into the hub (SQLite), and both are read page
by page over HTTP on 127.0.0.1. The collection is small because medallion's
memory backend takes time quadratic in the collection size for each page.

${row(['case', 'objects', 'page size', 'hub objects/s', 'medallion objects/s', 'hub speed-up'])}
${row(['---', '---:', '---:', '---:', '---:', '---:'])}
${medallionRows.join('\n')}`
  : 'Did not run: FEEDHUB_PYTHON was not set (see `.ci/python-peers.sh`).';

const generated = `<!-- generated by scripts/bench.mjs: do not edit between these markers -->
## Store and pipeline

Command: \`npm run bench\` (cases in \`scripts/bench/\`).

${machine}

### Ingest

A generated list of IPv4 addresses is served from 127.0.0.1 and polled
through the whole pipeline: fetch, parse, canonical values, STIX
indicators, store. The list is a text list, unless the case names \`csv\`
(a header, then an address and a tag per row) or \`json-elements\` (one
JSON document with an object per address in an array, read element by
element). "Fresh" is the first poll into an empty collection,
"unchanged" the same body again (no validators; the hub sees that the
body is the one of the previous complete poll and refreshes the sightings
that poll listed in one step, without parsing), "one line changed" the
body without its first value (parsed and applied in full: every value is
refreshed and one withdrawn). On SQLite, a worker thread copies the WAL
back into the database file after a poll has committed; the last column
is how long that copy ran after the fresh poll, which the case waits for
before the next poll. Memory is the peak resident set of the
case's process, before and after the polls. FerretDB's SQLite handler
writes each document of a multi-document update on its own, so there the
unchanged re-poll is no faster than a full one. A MongoDB store applies a
poll in batches of 1,000 values, each written before the next is read.
FerretDB's SQLite handler answers each batch's lookups (\`$in\` on \`_id\`,
on ids, on values) by scanning what the batches before wrote, so a fresh
poll there takes time quadratic in the list. MongoDB answers them from
indexes.

${row(['case', 'entries', 'fresh entries/s', 'unchanged re-poll entries/s', 'one line changed entries/s', 'peak RSS MiB', 'WAL copy after fresh s'])}
${row(['---', '---:', '---:', '---:', '---:', '---:', '---:'])}
${ingestRows.join('\n')}

### Reading a collection

Indicators are read page by page, through the store port and through the
TAXII objects endpoint over HTTP on 127.0.0.1 (following \`next\`). The
TAXII server runs in a child process, as an API process would, so the
client that parses the pages does not share its thread; one client reads
one page after the other and parses each with \`JSON.parse\`. The client
reads pages with undici's \`request()\`; the same pages read with Node's
\`fetch()\`, whose web streams cost the client more, are in the next column.
The pipelined client requests the next page as soon as it has read
\`next\`, which the hub writes at the start of a page. It then parses the
page while the server builds the next one, so client and server work at
once, as they would on two machines. On FerretDB, where every page scans
the collection, the case reads through TAXII once, with \`request()\`, and
n/a marks the passes it skips.

${row(['case', 'objects', 'page size', 'store objects/s', 'TAXII objects/s', 'with fetch()', 'pipelined', 'TAXII page p50 / p95 ms'])}
${row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:'])}
${readRows.join('\n')}

### Views

A collection is loaded with generated values through \`store.applyPoll\`
(IPv4 addresses in 11.0.0.0/8, or URLs like
\`http://host-N.example/path/N\`), then one view is rendered and stored as
the hub does after a poll: the screen runs again, entries are selected,
ordered and written, and the body and entry data are stored. Memory is the
resident set after loading and its peak during the render, which the case
measures by resetting the kernel's peak after loading.

${row(['case', 'kind', 'entries', 'body MiB', 'render + store s', 'entries/s', 'RSS MiB before → peak during render'])}
${row(['---', '---', '---:', '---:', '---:', '---:', '---:'])}
${viewRenderRows.join('\n')}

Stored \`edl-ip\` views are served by the hub's request listener, as an API
process composes it (the view handler in front of the Koa app with its
request logging, health routes and TAXII router), and, for comparison, the same bytes from a bare \`node:http\` server that
answers a matching \`If-None-Match\` with 304 and otherwise sends the body
with its ETag and Content-Length. Both servers run in one child
process; wrk ${viewHttp === undefined ? '' : `(${viewHttp.threads} threads, ${viewHttp.connections} connections, ${viewHttp.durationSeconds} s per run) `}runs as
another process and sends no \`Accept-Encoding\`, so neither side compresses.
"304" runs send the view's ETag in \`If-None-Match\`.

${row(['entries', 'bytes', 'hub 200 req/s', 'bare 200 req/s', 'hub/bare', 'hub 304 req/s', 'bare 304 req/s', 'hub/bare'])}
${row(['---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:'])}
${viewHttpRows.join('\n')}${viewHttpErrorNote}

### Against medallion

${medallionSection}
<!-- end of generated section -->`;

const docPath = here('../docs/benchmarks.md');
let doc;
try {
  doc = readFileSync(docPath, 'utf8');
} catch {
  doc = '# Benchmarks\n\nMeasured numbers of this machine, regenerated by the commands below.\n\n';
}
const marker = /<!-- generated by scripts\/bench\.mjs[\s\S]*?<!-- end of generated section -->/;
doc = marker.test(doc) ? doc.replace(marker, generated) : `${doc.trimEnd()}\n\n${generated}\n`;
if (!only) writeFileSync(docPath, doc);
else process.stderr.write('--only given: docs/benchmarks.md left unchanged\n');

function describeMongo() {
  try {
    return readFileSync(here('../.ci/ferretdb.sh'), 'utf8').includes('ferretdb')
      ? 'a MongoDB-wire server (FerretDB in CI)'
      : 'MongoDB';
  } catch {
    return 'MongoDB';
  }
}
