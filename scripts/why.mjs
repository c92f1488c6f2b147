// Explains why a value is or is not published by a collection: its sources,
// state, confidence, and the rule that keeps it out of each view.
//
//   npm run build && node scripts/why.mjs COLLECTION VALUE
//
// COLLECTION is an alias or id. Settings come from the same environment
// variables as the hub (FEEDHUB_DATA_DIR, FEEDHUB_COLLECTIONS_DIR).
import { loadConfig } from '../dist/app/config.js';
import { explainValue, findCollection } from '../dist/app/why.js';
import { createSqliteStore } from '../dist/store/index.js';
import { SQLITE_FILE } from '../dist/app/store.js';
import { join } from 'node:path';

const [aliasOrId, value] = process.argv.slice(2);
if (aliasOrId === undefined || value === undefined) {
  process.stderr.write('usage: node scripts/why.mjs COLLECTION VALUE\n');
  process.exit(2);
}
const config = loadConfig(process.env);
const collection = findCollection(config, aliasOrId);
if (collection === undefined) {
  process.stderr.write(
    `collection ${aliasOrId} not found; use an alias or id from ${config.settings.collectionsDir}\n`,
  );
  process.exit(1);
}
// NOTE: only the embedded SQLite store is opened here.
const store = createSqliteStore({ file: join(config.settings.dataDir, SQLITE_FILE) });
await store.init();
try {
  process.stdout.write(
    `${JSON.stringify(await explainValue(store, collection, value), null, 2)}\n`,
  );
} finally {
  await store.close();
}
