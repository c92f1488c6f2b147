import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FeedServer } from '../helpers/feed-server.js';
import { requireMongoInCi, testStores } from '../helpers/stores.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const FEODO = readFileSync(
  fileURLToPath(new URL('../fixtures/feeds/abusech-feodotracker/ipblocklist.csv', import.meta.url)),
  'utf8',
);
const COLLECTION = '5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e9f';
const TAXII_ACCEPT = 'application/taxii+json;version=2.1';

interface HubProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** Starts `node dist/app/main.js` and resolves once it logs the address it listens on. */
async function startProcess(distDir: string, env: Record<string, string>): Promise<HubProcess> {
  const child = spawn(process.execPath, [join(distDir, 'app/main.js')], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', TZ: 'UTC', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`hub process did not start: ${output}`)),
      30_000,
    );
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"url":"(http:\/\/[^"]+)"/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`hub process exited with ${code}: ${output}`)));
  });
  return { child, url, output: () => output };
}

async function stopProcess(hub: HubProcess): Promise<number | null> {
  if (hub.child.exitCode !== null) return hub.child.exitCode;
  const exited = new Promise<number | null>((resolve) => hub.child.once('exit', resolve));
  hub.child.kill('SIGTERM');
  return exited;
}

async function text(url: string, accept = TAXII_ACCEPT): Promise<string> {
  const response = await fetch(url, { headers: { accept } });
  expect(response.status).toBe(200);
  return response.text();
}

async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

requireMongoInCi();

describe.each(testStores())('two hub processes on one $name store', (testStore) => {
  const feeds = new FeedServer();
  let dir: string;
  let distDir: string;
  const hubs: HubProcess[] = [];

  beforeAll(async () => {
    await feeds.start();
    feeds.set('/feodo.csv', { kind: 'body', body: FEODO });
    dir = mkdtempSync(join(tmpdir(), 'feedhub-processes-'));
    mkdirSync(join(dir, 'collections'));
    writeFileSync(
      join(dir, 'collections', 'feodo.yaml'),
      `id: ${COLLECTION}
alias: feodo
title: Feodo Tracker
sources:
  - id: feodo
    kind: text-list
    url: ${feeds.url('/feodo.csv')}
    extract: '^"[^"]*","([0-9][^"]*)"'
    valueType: ipv4
    interval: 1h
`,
    );
    // The hubs are separate Node processes, so they run the compiled code.
    mkdirSync(join(repoRoot, '.test-build'), { recursive: true });
    // The compiled code finds the JSON Schemas two folders up, as dist/app does.
    if (!existsSync(join(repoRoot, '.test-build', 'schemas'))) {
      symlinkSync(join(repoRoot, 'schemas'), join(repoRoot, '.test-build', 'schemas'));
    }
    distDir = mkdtempSync(join(repoRoot, '.test-build', 'processes-'));
    execFileSync(
      process.execPath,
      [
        join(repoRoot, 'node_modules/typescript/bin/tsc'),
        '-p',
        join(repoRoot, 'tsconfig.build.json'),
        '--outDir',
        distDir,
      ],
      { cwd: repoRoot, stdio: 'pipe' },
    );
    execFileSync(process.execPath, [join(repoRoot, 'scripts/copy-assets.mjs'), distDir], {
      stdio: 'pipe',
    });
  }, 180_000);

  afterAll(async () => {
    for (const hub of hubs) await stopProcess(hub);
    await feeds.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(distDir, { recursive: true, force: true });
  });

  it('poll once, serve alike, survive a stop', async () => {
    const env = {
      ...testStore.env(),
      FEEDHUB_PORT: '0',
      FEEDHUB_DATA_DIR: join(dir, 'data'),
      FEEDHUB_COLLECTIONS_DIR: join(dir, 'collections'),
      FEEDHUB_LOG_LEVEL: 'info',
    };
    const objectsPath = `/taxii2/hub/collections/${COLLECTION}/objects/?limit=10`;

    const first = await startProcess(distDir, env);
    hubs.push(first);
    // The view returns 503 until its first render, then lists the feed's 28 addresses.
    await waitFor('the first poll', async () => {
      const response = await fetch(`${first.url}/feeds/feodo/ip`);
      const body = await response.text();
      return response.status === 200 && body.split('\n').filter(Boolean).length === 28;
    });

    const second = await startProcess(distDir, env);
    hubs.push(second);
    // Give the second process time to take due jobs, if it (wrongly) found any.
    await new Promise((resolve) => setTimeout(resolve, 7000));
    expect(feeds.requests.filter((request) => request.path === '/feodo.csv')).toHaveLength(1);

    const firstPage = await text(`${first.url}${objectsPath}`);
    expect(await text(`${second.url}${objectsPath}`)).toBe(firstPage);
    expect(await text(`${second.url}/feeds/feodo/ip`, 'text/plain')).toBe(
      await text(`${first.url}/feeds/feodo/ip`, 'text/plain'),
    );

    // A cursor issued by one process works on the other.
    const next = (JSON.parse(firstPage) as { next?: string }).next;
    expect(next).toBeDefined();
    const secondPageUrl = `${objectsPath}&next=${encodeURIComponent(next!)}`;
    const fromFirst = await text(`${first.url}${secondPageUrl}`);
    expect(await text(`${second.url}${secondPageUrl}`)).toBe(fromFirst);

    expect(await stopProcess(first)).toBe(0);
    expect(await text(`${second.url}${objectsPath}`)).toBe(firstPage);
    expect(await text(`${second.url}${secondPageUrl}`)).toBe(fromFirst);
  }, 120_000);
});
