// Shared helpers of the benchmark cases. Cases run in their own Node process
// (see ../bench.mjs), print one JSON line with their results, and import the
// compiled hub from dist/, so `npm run bench` builds first.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));

/** Parses `--name value` pairs into an object. */
export function parseFlags(argv) {
  const flags = {};
  for (let i = 0; i < argv.length; i += 2) flags[argv[i].replace(/^--/, '')] = argv[i + 1];
  return flags;
}

/** Opens a fresh store of the given kind: a temp SQLite file, or a random MongoDB database. */
export async function openBenchStore(kind) {
  const { createSqliteStore } = await import(join(DIST, 'store/index.js'));
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'feedhub-bench-'));
    const file = join(dir, 'bench.sqlite');
    const store = createSqliteStore({ file });
    await store.init();
    return { store, location: { kind, file }, cleanup: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); } };
  }
  if (!process.env.MONGODB_URI) throw new Error('MONGODB_URI is not set; start FerretDB or MongoDB on 127.0.0.1 first');
  const { createMongoStore } = await import(join(DIST, 'store/index.js'));
  const dbName = `feedhub_bench_${process.pid}_${Date.now()}`;
  const store = createMongoStore({ uri: process.env.MONGODB_URI, dbName });
  await store.init();
  return {
    store,
    location: { kind, dbName },
    cleanup: async () => { await store.connection().db.dropDatabase(); await store.close(); },
  };
}

/** Opens, in another process, the store that `openBenchStore` made: `location` is its `location`. */
export async function reopenBenchStore(location) {
  const { createSqliteStore, createMongoStore } = await import(join(DIST, 'store/index.js'));
  const store = location.kind === 'sqlite'
    ? createSqliteStore({ file: location.file })
    : createMongoStore({ uri: process.env.MONGODB_URI, dbName: location.dbName });
  await store.init();
  return store;
}

/**
 * Address n (0 <= n < 2^24) spread over 11.0.0.0/8: public space that no
 * built-in allow-list or guard covers (10.0.0.0/8 is a bogon and would be
 * screened out).
 */
export function ipv4(n) {
  return `11.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

export function peakRssMiB() {
  // resourceUsage().maxRSS is in kilobytes on Linux.
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
