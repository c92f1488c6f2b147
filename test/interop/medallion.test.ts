import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  describeWithPython,
  freePort,
  httpGet,
  readAllObjects,
  startMedallion,
  startTestHub,
  type Medallion,
  type TestHub,
} from './peers.js';
import { requireMongoInCi, testStores } from '../helpers/stores.js';
import {
  MEDALLION_API_ROOT,
  MEDALLION_COLLECTION,
  MEDALLION_TITLE,
  generateMedallionData,
  type GeneratedData,
} from './stix-data.js';

const HUB_COLLECTION = '0d9a7f63-3b51-4e0e-8f0a-52f7c1b0a6e2';
const USERS = { 'feedhub-reader': 'Interop-pw-1' };
const ENV = { PARTNER_USER: 'feedhub-reader', PARTNER_PASSWORD: 'Interop-pw-1' };
const BASIC = `Basic ${Buffer.from('feedhub-reader:Interop-pw-1').toString('base64')}`;

/** The added_after values of the objects requests in medallion's access log, in order. */
function objectRequests(medallion: Medallion): (string | null)[] {
  return medallion
    .requests()
    .filter(
      (line) =>
        line.includes(`/collections/${MEDALLION_COLLECTION}/objects/`) && !line.includes('next='),
    )
    .map((line) => {
      const path = /"GET (\S+) HTTP/.exec(line)?.[1] ?? '';
      return new URL(path, 'http://127.0.0.1').searchParams.get('added_after');
    });
}

describeWithPython('taxii21 source reading medallion', (python) => {
  describe.each(testStores())('on $name', (store) => {
    // One database per hub for the whole file, so a restarted hub finds its data.
    const storeEnv = store.env();
    let dir: string;
    let medallion: Medallion;
    let hub: TestHub;
    let hubPort: number;
    let generated: GeneratedData;
    const collectionsDir = () => join(dir, 'collections');
    const start = () =>
      startTestHub(join(dir, 'data'), collectionsDir(), hubPort, { ...ENV, ...storeEnv });
    const hubCollectionUrl = () => `${hub.url}/taxii2/hub/collections/${HUB_COLLECTION}/`;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'feedhub-interop-medallion-'));
      mkdirSync(collectionsDir());
      const medallionPort = await freePort();
      generated = generateMedallionData(`http://127.0.0.1:${medallionPort}`);
      medallion = await startMedallion(python, dir, medallionPort, generated.data, USERS, 100);

      writeFileSync(
        join(collectionsDir(), 'partner.yaml'),
        `id: ${HUB_COLLECTION}
alias: partner
title: From the partner's TAXII server
sources:
  - id: partner
    kind: taxii21
    url: ${medallion.url}/taxii2/
    collectionTitle: ${MEDALLION_TITLE}
    auth: { type: basic, usernameEnv: PARTNER_USER, passwordEnv: PARTNER_PASSWORD }
    limit: 50
    maxPages: 3
    interval: 1h
    timeout: 30s
`,
      );
      hubPort = await freePort();
      hub = await start();
    }, 60_000);

    afterAll(async () => {
      await hub?.hub.stop();
      await medallion?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('reads three pages in the first poll', async () => {
      const report = await hub.waitForPoll('partner');
      expect(report.msg).toBe('poll applied');
      expect(report.objectsAdded).toBeGreaterThanOrEqual(150);
      expect(objectRequests(medallion)).toEqual([null]);
    });

    it('resumes with added_after in the next poll', async () => {
      const report = await hub.hub.pollNow!(HUB_COLLECTION, 'partner');
      expect(report?.outcome).toBe('applied');
      expect(report?.pages).toBe(3);
      const afters = objectRequests(medallion);
      expect(afters).toHaveLength(2);
      expect(afters[1]).toMatch(/^2025-01-01T00:00:00\.\d{6}Z$/);
    });

    it('resumes from the stored cursor after a restart', async () => {
      const before = objectRequests(medallion);
      await hub.hub.stop();
      hub = await start();
      const report = await hub.hub.pollNow!(HUB_COLLECTION, 'partner');
      expect(report?.outcome).toBe('applied');

      const afters = objectRequests(medallion).slice(before.length);
      expect(afters.length).toBeGreaterThanOrEqual(1);
      // Every request after the restart continues from a stored cursor, later than the last one before it.
      for (const after of afters) {
        expect(after).not.toBeNull();
        expect(after! > before.at(-1)!).toBe(true);
      }
    });

    it('stores every object version with its exact timestamps', async () => {
      const stored = await readAllObjects(hubCollectionUrl());
      const key = (o: Record<string, unknown>) =>
        `${String(o.id)}|${String(o.modified ?? o.created ?? '')}`;
      const byKey = new Map(stored.map((o) => [key(o), o]));

      const missing = generated.objects.filter((o) => !byKey.has(key(o))).map(key);
      expect(missing).toEqual([]);
      for (const object of generated.objects) {
        const copy = byKey.get(key(object))!;
        for (const property of ['created', 'modified', 'valid_from']) {
          expect(copy[property]).toBe(object[property]);
        }
        expect(copy).toEqual(object);
      }
      const upstreamIds = new Set(generated.objects.map((o) => o.id));
      const fromUpstream = stored.filter((o) => upstreamIds.has(o.id as string));
      expect(fromUpstream).toHaveLength(generated.objects.length);
    });

    it('publishes simple indicator patterns in the EDLs', async () => {
      for (const view of ['ip', 'domain', 'url'] as const) {
        const response = await httpGet(`${hub.url}/feeds/partner/${view}`);
        expect(response.status).toBe(200);
        const lines = response.text.split('\n').filter((line) => line !== '');
        // The URL EDL is in PAN-OS form, without the scheme.
        const expected =
          view === 'url'
            ? new Set([...generated.edl.url].map((url) => url.replace(/^[a-z]+:\/\//, '')))
            : generated.edl[view];
        expect(new Set(lines)).toEqual(expected);
      }
    });

    it('adds only what was posted since the last poll', async () => {
      const caughtUp = await hub.hub.pollNow!(HUB_COLLECTION, 'partner');
      expect(caughtUp?.objectsRead).toBe(0);

      const indicator = {
        type: 'indicator',
        spec_version: '2.1',
        id: 'indicator--9e4c6d1a-55a8-4a35-9a0b-0c4d1f6e7a21',
        created: '2025-03-04T05:06:07.123456Z',
        modified: '2025-03-04T05:06:07.123456Z',
        pattern: "[ipv4-addr:value = '45.99.1.2']",
        pattern_type: 'stix',
        valid_from: '2025-03-04T05:06:07Z',
      };
      const posted = await fetch(
        `${medallion.url}/${MEDALLION_API_ROOT}/collections/${MEDALLION_COLLECTION}/objects/`,
        {
          method: 'POST',
          headers: {
            accept: 'application/taxii+json;version=2.1',
            'content-type': 'application/taxii+json;version=2.1',
            authorization: BASIC,
          },
          body: JSON.stringify({ objects: [indicator] }),
        },
      );
      expect(posted.status).toBe(202);

      const report = await hub.hub.pollNow!(HUB_COLLECTION, 'partner');
      expect(report?.objectsRead).toBe(1);
      expect(report?.objectsAdded).toBeGreaterThanOrEqual(1);
      const ips = await httpGet(`${hub.url}/feeds/partner/ip`);
      expect(ips.text.split('\n')).toContain('45.99.1.2');

      const again = await hub.hub.pollNow!(HUB_COLLECTION, 'partner');
      expect(again?.objectsRead).toBe(0);
      expect(objectRequests(medallion).at(-1)).not.toBeNull();
    });

    it('fails the poll on wrong credentials and keeps the cursor', async () => {
      await hub.hub.stop();
      hub = await startTestHub(join(dir, 'data'), collectionsDir(), hubPort, {
        ...ENV,
        ...storeEnv,
        PARTNER_PASSWORD: 'wrong',
      });
      const before = await readAllObjects(hubCollectionUrl());

      const report = await hub.hub.pollNow!(HUB_COLLECTION, 'partner');

      expect(report?.outcome).toBe('failed');
      expect(report?.error).toMatch(/HTTP 401.*check the credentials/);
      expect(await readAllObjects(hubCollectionUrl())).toHaveLength(before.length);
    });
  });
});

requireMongoInCi();
