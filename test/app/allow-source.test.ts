/**
 * A source whose role is `allow-list`: its values keep matching values out
 * of the collection's views and indicators, and it publishes nothing itself.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import type { Hub } from '../../src/app/hub.js';
import { FeedServer } from '../helpers/feed-server.js';
import { startHubOnRequest } from '../helpers/hub.js';
import { requireMongoInCi, testStores } from '../helpers/stores.js';

const COLLECTION = '3b1f0c2e-5a4d-4e8f-9b7c-6d5e4f3a2b1c';
const BLOCKED = ['11.0.0.1', '11.0.0.2', '52.95.1.1', '52.95.200.7', '12.1.1.1'];
// Cloud ranges as a provider publishes them: the hub must not block them.
const CLOUD = ['52.95.0.0/16', '3.5.140.0/22', '13.248.0.0/20', '15.177.0.0/18'];

describe.each(testStores())('allow-list source on $name', (store) => {
  const feeds = new FeedServer();
  let dir: string;
  let hub: Hub;

  async function lines(view: string): Promise<string[]> {
    const response = await fetch(`${hub.url}/feeds/allow/${view}`);
    expect(response.status).toBe(200);
    return (await response.text()).split('\n').filter((line) => line !== '');
  }

  beforeAll(async () => {
    await feeds.start();
    feeds.set('/block.txt', { kind: 'body', etag: false, body: `${BLOCKED.join('\n')}\n` });
    // The poll that runs at start fails, so the tests decide when the allow-list arrives.
    feeds.set('/cloud.txt', { kind: 'status', status: 503 });
    dir = mkdtempSync(join(tmpdir(), 'feedhub-allow-source-'));
    mkdirSync(join(dir, 'collections'));
    writeFileSync(
      join(dir, 'collections', 'allow.yaml'),
      `id: ${COLLECTION}
alias: allow
title: Allow-list source
sources:
  - id: block
    kind: text-list
    url: ${feeds.url('/block.txt')}
    valueType: ipv4
    interval: 1h
  - id: cloud
    kind: text-list
    role: allow-list
    url: ${feeds.url('/cloud.txt')}
    interval: 1h
views:
  - { name: ip, kind: edl-ip }
`,
    );
    hub = await startHubOnRequest(dir, store.env());
  }, 120_000);

  afterAll(async () => {
    await hub?.stop();
    await feeds.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps allowed values out of views', async () => {
    await hub.pollNow!(COLLECTION, 'block');
    expect(await lines('ip')).toEqual(BLOCKED.slice().sort((a, b) => a.localeCompare(b)));
    feeds.set('/cloud.txt', { kind: 'body', etag: false, body: `${CLOUD.join('\n')}\n` });

    const report = await hub.pollNow!(COLLECTION, 'cloud');

    expect(report?.outcome).toBe('applied');
    expect(report?.allowEntries).toBe(CLOUD.length);
    expect(await lines('ip')).toEqual(['11.0.0.1', '11.0.0.2', '12.1.1.1']);
  });

  it('withdraws allowed values at the next poll', async () => {
    const report = await hub.pollNow!(COLLECTION, 'block');
    expect(report?.allowListed).toBe(2);
    expect(report?.withdrawn).toBe(2);
    const objects = await fetch(
      `${hub.url}/taxii2/hub/collections/${COLLECTION}/objects/?match[type]=indicator`,
      { headers: { accept: 'application/taxii+json;version=2.1' } },
    );
    const envelope = (await objects.json()) as { objects: { pattern: string }[] };
    // The allow-list source's own values never become indicators.
    expect(envelope.objects.some((object) => object.pattern.includes('52.95.0.0/16'))).toBe(false);
  });

  it('a truncated allow-list keeps the previous entries', async () => {
    feeds.set('/cloud.txt', { kind: 'body', etag: false, body: '# cut short\n3.5.140.0/22\n' });
    const report = await hub.pollNow!(COLLECTION, 'cloud');
    expect(report?.plausible).toBe(false);
    expect(report?.allowEntries).toBe(CLOUD.length);
    expect(await lines('ip')).toEqual(['11.0.0.1', '11.0.0.2', '12.1.1.1']);
  });
});

requireMongoInCi();
