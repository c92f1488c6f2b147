// Child process of crash.test.ts: starts a large poll on the SQLite file and,
// once the poll's transaction has written part of its rows, reports "mid" on
// stdout and blocks so that the parent can kill it with SIGKILL.
import { writeSync } from 'node:fs';

const [distDir, file, collectionId, count] = process.argv.slice(2);
const { createSqliteStore } = await import(`${distDir}/store/index.js`);

const store = createSqliteStore({ file });
await store.init();

const sightings = [];
for (let i = 0; i < Number(count); i++) {
  const value = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  sightings.push({
    valueType: 'ipv4',
    value,
    indicatorId: `indicator--00000000-0000-5000-8000-${String(i).padStart(12, '0')}`,
  });
}

let built = 0;
await store.applyPoll({
  collectionId,
  sourceId: 'crash',
  seenAt: 1_700_000_000_000_000,
  sightings,
  extraObjects: [],
  state: { collectionId, sourceId: 'crash', lastValidCount: sightings.length },
  buildIndicator: (sighting) => {
    built += 1;
    if (built === Math.floor(sightings.length / 2)) {
      writeSync(1, 'mid\n');
      // Block inside the transaction until the parent kills this process.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
    }
    const json = JSON.stringify({
      type: 'indicator',
      spec_version: '2.1',
      id: sighting.indicatorId,
      created: '2024-01-01T00:00:00.000Z',
      modified: '2024-01-01T00:00:00.000Z',
      pattern: `[ipv4-addr:value = '${sighting.value}']`,
      pattern_type: 'stix',
      valid_from: '2024-01-01T00:00:00.000Z',
    });
    return {
      id: sighting.indicatorId,
      type: 'indicator',
      version: '2024-01-01T00:00:00.000000Z',
      specVersion: '2.1',
      json,
    };
  },
});
writeSync(1, 'done\n');
