import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashSecret } from '../../src/auth/index.js';
import {
  describeWithPython,
  freePort,
  readAllObjects,
  runPython,
  startTestHub,
  type TestHub,
} from './peers.js';
import { requireMongoInCi, testStores } from '../helpers/stores.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/feeds/', import.meta.url));
const COLLECTION = 'c2d3a4b5-6e7f-4a8b-9c0d-1e2f3a4b5c6d';
const INBOX = 'd3e4f5a6-7b8c-4d9e-8f0a-1b2c3d4e5f60';
const PARTNER_PASSWORD = 'correct horse battery staple';

interface Walk {
  discovery: { title: string; default: string; api_roots: string[] };
  api_roots: { url: string; title: string; versions: string[] }[];
  collections: { id: string; title: string; can_read: boolean }[];
  pages: number[];
  objects: { id: string; version: string }[];
}

describeWithPython('hub read by taxii2-client and stix2-validator', (python) => {
  describe.each(testStores())('on $name', (store) => {
    // One database per hub for the whole file, so a restarted hub finds its data.
    const storeEnv = store.env();
    let dir: string;
    let hub: TestHub;
    let collectionUrl: string;
    let published: Record<string, unknown>[];

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'feedhub-interop-client-'));
      mkdirSync(join(dir, 'collections'));
      writeFileSync(
        join(dir, 'collections', 'mixed.yaml'),
        `id: ${COLLECTION}
alias: mixed
title: Mixed fixture feeds
sources:
  - id: feodo
    kind: text-list
    path: ${join(FIXTURES, 'abusech-feodotracker/ipblocklist.csv')}
    extract: '^"[^"]*","([0-9][^"]*)"'
    valueType: ipv4
    interval: 1h
  - id: rw-ips
    kind: text-list
    path: ${join(FIXTURES, 'abusech-ransomwaretracker/RW_IPBL.txt')}
    valueType: ipv4
    interval: 1h
  - id: bandook
    kind: text-list
    path: ${join(FIXTURES, 'eset-malware-ioc/bandook/samples.sha256')}
    valueType: sha256
    interval: 1h
`,
      );
      // A partner that may read and write an inbox collection, as taxii2-client posts with Basic auth.
      writeFileSync(
        join(dir, 'principals.yaml'),
        `principals:\n  - name: partner\n    password: "${await hashSecret(PARTNER_PASSWORD)}"\n`,
      );
      writeFileSync(
        join(dir, 'collections', 'inbox.yaml'),
        `id: ${INBOX}
alias: inbox
title: Partner inbox
access:
  public: false
  read: [partner]
  write: [partner]
sources: []
`,
      );
      const port = await freePort();
      hub = await startTestHub(join(dir, 'data'), join(dir, 'collections'), port, {
        ...storeEnv,
        FEEDHUB_PRINCIPALS_FILE: join(dir, 'principals.yaml'),
      });
      await Promise.all(['feodo', 'rw-ips', 'bandook'].map((id) => hub.waitForApplied(id)));
      collectionUrl = `${hub.url}/taxii2/hub/collections/${COLLECTION}/`;
      published = await readAllObjects(collectionUrl);
    }, 90_000);

    afterAll(async () => {
      await hub?.hub.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('walks discovery, API roots and pages', async () => {
      const run = await runPython(python, 'walk_collection.py', [
        `${hub.url}/taxii2/`,
        COLLECTION,
        '50',
      ]);
      expect(run.stderr).not.toMatch(/Traceback/);
      expect(run.code).toBe(0);
      const walk = JSON.parse(run.stdout) as Walk;

      expect(walk.discovery.default).toBe(`${hub.url}/taxii2/hub/`);
      expect(walk.discovery.api_roots).toEqual([`${hub.url}/taxii2/hub/`]);
      expect(walk.api_roots[0]?.versions).toContain('application/taxii+json;version=2.1');
      expect(walk.collections).toContainEqual({
        id: COLLECTION,
        title: 'Mixed fixture feeds',
        can_read: true,
      });

      const latest = new Map<string, number>();
      for (const object of published)
        latest.set(object.id as string, (latest.get(object.id as string) ?? 0) + 1);
      expect(walk.objects).toHaveLength(latest.size);
      expect(new Set(walk.objects.map((o) => o.id)).size).toBe(walk.objects.length);
      expect(new Set(walk.objects.map((o) => o.id))).toEqual(new Set(latest.keys()));
      expect(walk.pages.length).toBe(Math.ceil(latest.size / 50));
      expect(walk.pages.slice(0, -1).every((count) => count === 50)).toBe(true);
    });

    it('validates every published object', async () => {
      expect(published.length).toBeGreaterThan(400);
      const bundleFile = join(dir, 'published.json');
      writeFileSync(
        bundleFile,
        JSON.stringify({
          type: 'bundle',
          id: 'bundle--5d0092c5-5f74-4287-9642-33f4c354e56d',
          objects: published,
        }),
      );

      const run = await runPython(python, 'validate_bundle.py', [bundleFile], 120_000);
      expect(run.stderr).not.toMatch(/Traceback/);
      const result = JSON.parse(run.stdout) as {
        valid: boolean;
        objects: number;
        errors: string[];
        warnings: string[];
      };

      // Warnings are SHOULD-level advice (e.g. UUIDv4 ids, name and description); count them by code.
      const byCode = new Map<string, number>();
      for (const warning of result.warnings) {
        const code = /\{\d+\}/.exec(warning)?.[0] ?? warning;
        byCode.set(code, (byCode.get(code) ?? 0) + 1);
      }
      if (byCode.size > 0) {
        console.info(
          `stix2-validator warnings on ${published.length} objects: ${[...byCode].map(([code, n]) => `${code} x${n}`).join(', ')}`,
        );
      }
      expect(result.errors).toEqual([]);
      expect(result.valid).toBe(true);
    });

    it('accepts objects posted with taxii2-client', async () => {
      const inboxUrl = `${hub.url}/taxii2/hub/collections/${INBOX}/`;
      const bundleFile = join(dir, 'post.json');
      const good = {
        type: 'indicator',
        spec_version: '2.1',
        id: 'indicator--7b7e8c54-7d5c-4b0e-9a57-2f6f3c1d0e11',
        created: '2025-02-03T04:05:06.789Z',
        modified: '2025-02-03T04:05:06.789Z',
        pattern: "[ipv4-addr:value = '203.0.113.200']",
        pattern_type: 'stix',
        valid_from: '2025-02-03T04:05:06Z',
      };
      // No pattern: the hub must report it as a failure and still store the good one.
      const bad = {
        ...good,
        id: 'indicator--0c4a2f1e-3b5d-4e6f-8a7b-9c0d1e2f3a4b',
        pattern: undefined,
      };
      writeFileSync(bundleFile, JSON.stringify({ objects: [good, bad] }));

      const run = await runPython(python, 'post_objects.py', [
        inboxUrl,
        bundleFile,
        'partner',
        PARTNER_PASSWORD,
      ]);
      expect(run.stderr).not.toMatch(/Traceback/);
      const result = JSON.parse(run.stdout) as { status?: Record<string, unknown> };
      expect(result.status).toMatchObject({
        status: 'complete',
        total_count: 2,
        success_count: 1,
        failure_count: 1,
        pending_count: 0,
      });

      const anonymous = await fetch(`${inboxUrl}objects/`, {
        headers: { accept: 'application/taxii+json;version=2.1' },
      });
      expect(anonymous.status).toBe(401);
      const authorization = `Basic ${Buffer.from(`partner:${PARTNER_PASSWORD}`).toString('base64')}`;
      const after = await readAllObjects(inboxUrl, 500, authorization);
      expect(after.map((o) => o.id)).toEqual([good.id]);
    });
  });
});

requireMongoInCi();
