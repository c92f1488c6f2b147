import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSqliteStore } from '../../src/store/index.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const child = fileURLToPath(new URL('./crash/poll-child.mjs', import.meta.url));
const COLLECTION = 'b7a1d9e2-3c4f-4a5b-8c6d-7e8f9a0b1c2d';
const VALUES = 20_000;

/** Runs the child until it reports that it is inside the poll's transaction, then kills it. */
async function killMidPoll(distDir: string, file: string): Promise<void> {
  const proc = spawn(process.execPath, [child, distDir, file, COLLECTION, String(VALUES)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`child never reached the middle of the poll: ${stderr}`)),
      30_000,
    );
    proc.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('mid')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) =>
      reject(new Error(`child exited with ${code} before the kill: ${stderr}`)),
    );
  });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGKILL');
  await exited;
}

describe('SQLite poll killed mid-transaction', () => {
  let dir: string;
  let distDir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'feedhub-crash-'));
    // Inside the repository, so that the compiled code resolves node_modules.
    mkdirSync(join(repoRoot, '.test-build'), { recursive: true });
    distDir = mkdtempSync(join(repoRoot, '.test-build', 'crash-'));
    // The child is a separate Node process, so it runs the compiled store.
    execFileSync(
      process.execPath,
      [
        join(repoRoot, 'node_modules/typescript/bin/tsc'),
        '-p',
        join(repoRoot, 'tsconfig.build.json'),
        '--outDir',
        distDir,
      ],
      {
        cwd: repoRoot,
        stdio: 'pipe',
      },
    );
  }, 120_000);

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(distDir, { recursive: true, force: true });
  });

  it('leaves the collection as before the poll', async () => {
    const file = join(dir, 'crash.sqlite');
    const store = createSqliteStore({ file });
    await store.init();
    await store.upsertCollection({
      id: COLLECTION,
      alias: 'crash',
      title: 'Crash',
      canRead: true,
      canWrite: false,
      mediaTypes: ['application/stix+json;version=2.1'],
    });

    await killMidPoll(distDir, file);

    expect(await store.countObjects(COLLECTION)).toBe(0);
    expect(await store.listIndicatorEntries(COLLECTION)).toEqual([]);
    expect(await store.getSourceState(COLLECTION, 'crash')).toBeUndefined();
    await store.close();
  }, 60_000);
});
