import {
  appendFileSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, httpGet, readAllObjects, startTestHub, type TestHub } from './peers.js';
import { requireMongoInCi, testStores } from '../helpers/stores.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/feeds/', import.meta.url));
const UPSTREAM_COLLECTION = '5f0c2b1e-8d4a-4c3b-9e2f-1a0b9c8d7e6f';
const DOWNSTREAM_COLLECTION = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';

/** Two hubs: the downstream one reads the upstream one's collection with a taxii21 source. */
describe('hub reading another hub over TAXII', () => {
  describe.each(testStores())('on $name', (store) => {
    // One database per hub for the whole file, so a restarted hub finds its data.
    const storeEnv = store.env();
    let dir: string;
    let upstream: TestHub;
    let downstream: TestHub;
    const feed = () => join(dir, 'feodo.csv');

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'feedhub-interop-hubs-'));
      mkdirSync(join(dir, 'up'));
      mkdirSync(join(dir, 'down'));
      copyFileSync(join(FIXTURES, 'abusech-feodotracker/ipblocklist.csv'), feed());
      writeFileSync(
        join(dir, 'up', 'feodo.yaml'),
        `id: ${UPSTREAM_COLLECTION}
alias: feodo
title: Feodo upstream
sources:
  - id: feodo
    kind: text-list
    path: ${feed()}
    extract: '^"[^"]*","([0-9][^"]*)"'
    valueType: ipv4
    interval: 1h
  - id: bandook
    kind: text-list
    path: ${join(FIXTURES, 'eset-malware-ioc/bandook/samples.sha256')}
    valueType: sha256
    interval: 1h
`,
      );
      const upstreamPort = await freePort();
      upstream = await startTestHub(join(dir, 'up-data'), join(dir, 'up'), upstreamPort, storeEnv);
      await Promise.all([upstream.waitForApplied('feodo'), upstream.waitForApplied('bandook')]);

      writeFileSync(
        join(dir, 'down', 'mirror.yaml'),
        `id: ${DOWNSTREAM_COLLECTION}
alias: mirror
title: Mirror of the upstream hub
sources:
  - id: upstream
    kind: taxii21
    apiRoot: ${upstream.url}/taxii2/hub/
    collectionId: ${UPSTREAM_COLLECTION}
    limit: 40
    interval: 1h
    timeout: 10s
`,
      );
      downstream = await startTestHub(
        join(dir, 'down-data'),
        join(dir, 'down'),
        await freePort(),
        store.env(),
      );
      await downstream.waitForPoll('upstream');
    }, 60_000);

    afterAll(async () => {
      await downstream?.hub.stop();
      await upstream?.hub.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const collectionUrl = (hub: TestHub, id: string) => `${hub.url}/taxii2/hub/collections/${id}/`;
    const key = (o: Record<string, unknown>) =>
      `${String(o.id)}|${String(o.modified ?? o.created)}`;

    it('copies every upstream object unchanged', async () => {
      const up = await readAllObjects(collectionUrl(upstream, UPSTREAM_COLLECTION));
      const down = new Map(
        (await readAllObjects(collectionUrl(downstream, DOWNSTREAM_COLLECTION))).map((o) => [
          key(o),
          o,
        ]),
      );

      expect(up.length).toBeGreaterThan(150);
      for (const object of up) expect(down.get(key(object))).toEqual(object);
    });

    it('serves the same IP list', async () => {
      const upList = await httpGet(`${upstream.url}/feeds/feodo/ip`);
      // The views of a collection render shortly after a poll that changed it.
      const deadline = Date.now() + 15_000;
      let downList = await httpGet(`${downstream.url}/feeds/mirror/ip`);
      while (downList.text.trim() === '' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        downList = await httpGet(`${downstream.url}/feeds/mirror/ip`);
      }

      expect(downList.status).toBe(200);
      expect(downList.text.split('\n').filter(Boolean).sort()).toEqual(
        upList.text.split('\n').filter(Boolean).sort(),
      );
    });

    it('reads only what the upstream added since', async () => {
      const idle = await downstream.hub.pollNow!(DOWNSTREAM_COLLECTION, 'upstream');
      expect(idle?.objectsRead).toBe(0);

      appendFileSync(
        feed(),
        // The fixture ends without a newline after its last comment line.
        '\n"2024-04-05 00:00:00","45.77.12.34","443","online","2024-04-05","Pikabot"\n',
      );
      // A file source compares whole-second mtimes, so move it clearly past the first read.
      const later = new Date(Date.now() + 5000);
      utimesSync(feed(), later, later);
      const upstreamPoll = await upstream.hub.pollNow!(UPSTREAM_COLLECTION, 'feodo');
      expect(upstreamPoll?.created).toBe(1);

      const report = await downstream.hub.pollNow!(DOWNSTREAM_COLLECTION, 'upstream');
      expect(report?.outcome).toBe('applied');
      expect(report?.objectsRead).toBe(1);
      const ips = await httpGet(`${downstream.url}/feeds/mirror/ip`);
      expect(ips.text.split('\n')).toContain('45.77.12.34');
    });
  });
});

requireMongoInCi();
