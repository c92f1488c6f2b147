/**
 * Helpers for the interop tests: the Python peers (taxii2-client,
 * stix2-validator, medallion) from the venv that `.ci/python-peers.sh`
 * builds, a hub started with captured logs, and free loopback ports.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { loadConfig } from '../../src/app/config.js';
import { startHub, type Hub } from '../../src/app/hub.js';
import { createLogger } from '../../src/app/logger.js';

export const PY_DIR = join(dirname(fileURLToPath(import.meta.url)), 'py');
export const TAXII_ACCEPT = 'application/taxii+json;version=2.1';

/**
 * The interpreter of the peers' venv, from FEEDHUB_PYTHON. In CI (CI set) a
 * missing interpreter fails the suites that need it; elsewhere they skip.
 */
export const PYTHON = process.env.FEEDHUB_PYTHON || undefined;
const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';

/**
 * `describe` for a suite that needs the Python peers: skipped with a console
 * message on a developer machine without FEEDHUB_PYTHON, failed in CI.
 */
export function describeWithPython(name: string, body: (python: string) => void): void {
  if (PYTHON) {
    describe(name, () => body(PYTHON));
    return;
  }
  if (IN_CI) {
    describe(name, () => {
      it('needs the Python peers', () => {
        throw new Error(
          'FEEDHUB_PYTHON is not set; run `source .ci/python-peers.sh && python_peers_setup` before the tests',
        );
      });
    });
    return;
  }
  console.warn(
    `skipping "${name}": FEEDHUB_PYTHON is not set. Run \`eval "$(.ci/python-peers.sh)"\` to install taxii2-client, stix2-validator and medallion, then run the tests again.`,
  );
  describe.skip(name, () => body(''));
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a script of `test/interop/py/` with a time limit; never rejects on a non-zero exit. */
export function runPython(
  python: string,
  script: string,
  args: string[],
  timeoutMs = 60_000,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      python,
      [join(PY_DIR, script), ...args],
      { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024, env: { ...process.env, NO_PROXY: '*' } },
      (error, stdout, stderr) => {
        const code = (error as { code?: unknown } | null)?.code;
        if (error && typeof code !== 'number') {
          reject(new Error(`${script} failed: ${error.message}\n${stderr}`));
          return;
        }
        resolve({ code: typeof code === 'number' ? code : 0, stdout, stderr });
      },
    );
  });
}

/** Returns a TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `probe` every 100 ms until it returns a value, up to `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A hub with its log lines kept in memory, so tests can wait for scheduled polls. */
export interface TestHub {
  hub: Hub;
  url: string;
  logs: Record<string, unknown>[];
  /** Waits for the `count`-th finished poll (applied or failed) of a source since the start. */
  waitForPoll(sourceId: string, count?: number): Promise<Record<string, unknown>>;
  /** Waits for the first finished poll of a source and throws, with its error, unless it applied. */
  waitForApplied(sourceId: string): Promise<Record<string, unknown>>;
}

export async function startTestHub(
  dataDir: string,
  collectionsDir: string,
  port: number,
  env: Record<string, string> = {},
): Promise<TestHub> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  const config = loadConfig({
    FEEDHUB_PORT: String(port),
    FEEDHUB_HOST: '127.0.0.1',
    FEEDHUB_DATA_DIR: dataDir,
    FEEDHUB_COLLECTIONS_DIR: collectionsDir,
    FEEDHUB_LOG_LEVEL: 'info',
    ...env,
  });
  const hub = await startHub(config, createLogger('info', sink), {
    processEveryMs: 100,
    lockLifetimeMs: 5000,
    viewDebounceMs: 100,
  });
  const finished = (sourceId: string) =>
    logs.filter(
      (l) =>
        l.sourceId === sourceId &&
        (l.msg === 'poll applied' ||
          (typeof l.msg === 'string' && l.msg.startsWith('poll failed'))),
    );
  return {
    hub,
    url: hub.url!,
    logs,
    waitForPoll: (sourceId, count = 1) =>
      waitFor(`poll ${count} of ${sourceId}`, () => finished(sourceId)[count - 1], 60_000),
    waitForApplied: async (sourceId) => {
      const line = await waitFor(`poll of ${sourceId}`, () => finished(sourceId)[0], 60_000);
      if (line.msg !== 'poll applied') {
        const err = line.err as { message?: string } | undefined;
        throw new Error(`poll of ${sourceId} failed: ${err?.message ?? JSON.stringify(line)}`);
      }
      return line;
    },
  };
}

/**
 * GETs a URL on a new connection each time (`reset`), so that a request
 * right after a server restart never lands on a connection the old server closed.
 */
export async function httpGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  const response = await request(url, { method: 'GET', headers, reset: true });
  return {
    status: response.statusCode,
    text: await response.body.text(),
    headers: response.headers,
  };
}

/** Fetches a TAXII resource of a hub or peer as JSON. */
export async function getTaxii<T>(
  url: string,
  authorization?: string,
): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { accept: TAXII_ACCEPT };
  if (authorization) headers.authorization = authorization;
  const response = await httpGet(url, headers);
  return { status: response.status, body: (response.text ? JSON.parse(response.text) : {}) as T };
}

/** Reads every version of every object of a collection through TAXII, page by page. */
export async function readAllObjects(
  collectionUrl: string,
  limit = 500,
  authorization?: string,
): Promise<Record<string, unknown>[]> {
  const objects: Record<string, unknown>[] = [];
  let next: string | undefined;
  for (let page = 0; page < 10_000; page += 1) {
    const url = new URL('objects/', collectionUrl);
    url.searchParams.set('limit', String(limit));
    url.searchParams.set('match[version]', 'all');
    if (next) url.searchParams.set('next', next);
    const { status, body } = await getTaxii<{
      objects?: Record<string, unknown>[];
      more?: boolean;
      next?: string;
    }>(url.href, authorization);
    if (status !== 200) throw new Error(`GET ${url.href} returned ${status}`);
    objects.push(...(body.objects ?? []));
    if (!body.more) return objects;
    next = body.next;
  }
  throw new Error(`${collectionUrl} has more than 10000 pages`);
}

/** A medallion server (memory backend) started on 127.0.0.1 from a data file. */
export interface Medallion {
  url: string;
  /** Request lines of medallion's access log, such as `GET /api1/... HTTP/1.1" 200`. */
  requests(): string[];
  stop(): Promise<void>;
}

export async function startMedallion(
  python: string,
  dir: string,
  port: number,
  data: object,
  users: Record<string, string>,
  maxPageSize: number,
): Promise<Medallion> {
  const dataFile = join(dir, 'medallion-data.json');
  const configFile = join(dir, 'medallion-config.json');
  writeFileSync(dataFile, JSON.stringify(data));
  writeFileSync(
    configFile,
    JSON.stringify({
      backend: {
        module: 'medallion.backends.memory_backend',
        module_class: 'MemoryBackend',
        filename: dataFile,
      },
      users,
      taxii: { max_page_size: maxPageSize },
    }),
  );
  let output = '';
  const child: ChildProcess = spawn(
    python,
    [
      '-m',
      'medallion.scripts.run',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--log-level',
      'INFO',
      configFile,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  };
  try {
    await waitFor(
      'medallion to listen',
      async () => {
        if (child.exitCode !== null)
          throw new Error(`medallion exited with ${child.exitCode}:\n${output}`);
        try {
          await httpGet(`${url}/taxii2/`);
          return true;
        } catch {
          return undefined;
        }
      },
      30_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    requests: () => output.split('\n').filter((line) => /"(GET|POST) \//.test(line)),
    stop,
  };
}
