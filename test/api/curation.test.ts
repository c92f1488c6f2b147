import { jest } from '@jest/globals';

import { FeedServer } from '../helpers/feed-server.js';
import { requireMongoInCi, testStores } from '../helpers/stores.js';
import {
  call,
  IP_COLLECTION,
  ipCollectionYaml,
  startApiHub,
  userToken,
  waitFor,
  type ApiHub,
} from './helpers.js';

requireMongoInCi();
jest.setTimeout(120_000);

const LIST = '# test list\n198.51.100.7\n203.0.113.9\nbad.example.org\n';

async function viewText(api: ApiHub, alias: string, name: string): Promise<string> {
  const response = await fetch(`${api.hub.url}/feeds/${alias}/${name}`);
  return response.status === 200 ? response.text() : `status ${response.status}`;
}

describe.each(testStores())('analyst curation on $name', (testStore) => {
  const feeds = new FeedServer();
  let api: ApiHub;
  let analyst: string;
  let reader: string;

  beforeAll(async () => {
    await feeds.start();
    feeds.set('/list.txt', { kind: 'body', body: LIST });
    api = await startApiHub(testStore, {
      'blocklist.yaml': ipCollectionYaml(feeds.url('/list.txt')),
    });
    analyst = await userToken(api, 'ana', 'analyst');
    reader = await userToken(api, 'rita', 'read-only');
    await waitFor('the first poll', async () =>
      (await viewText(api, 'blocklist', 'ip')).includes('198.51.100.7') ? true : undefined,
    );
  });

  afterAll(async () => {
    await api.stop();
    await feeds.stop();
  });

  it('collections: list and read with revision', async () => {
    const list = await call(api.hub, 'GET', '/collections', { token: reader });
    expect(list.status).toBe(200);
    expect(list.json.items.map((c: { alias: string }) => c.alias)).toEqual(['blocklist']);
    expect(list.json.items[0].sources).toEqual(['list']);
    const one = await call(api.hub, 'GET', '/collections/blocklist', { token: reader });
    expect(one.status).toBe(200);
    expect(one.json.origin).toEqual({
      kind: 'file',
      file: expect.stringContaining('blocklist.yaml'),
    });
    expect(one.headers.get('etag')).toBe(`"${one.json.revision}"`);
  });

  it('collections: create, stale update 409, update, export, delete', async () => {
    const definition = {
      id: '0b7a6f1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b',
      alias: 'made-by-api',
      title: 'Made through the API',
      sources: [],
    };
    const created = await call(api.hub, 'POST', '/collections', {
      token: analyst,
      body: definition,
    });
    expect(created.status).toBe(201);
    expect(created.json.revision).toBe(1);
    // In force at once: TAXII lists it.
    const taxii = await fetch(`${api.hub.url}/taxii2/hub/collections/`, {
      headers: { accept: 'application/taxii+json;version=2.1' },
    });
    const collections = (await taxii.json()) as { collections: { id: string }[] };
    expect(collections.collections.map((c) => c.id)).toContain(definition.id);

    const again = await call(api.hub, 'POST', '/collections', { token: analyst, body: definition });
    expect(again.status).toBe(409);
    expect(again.json.code).toBe('already_exists');

    const update = { revision: 1, definition: { ...definition, title: 'Renamed' } };
    const ok = await call(api.hub, 'PUT', '/collections/made-by-api', {
      token: analyst,
      body: update,
    });
    expect(ok.status).toBe(200);
    expect(ok.json.revision).toBe(2);
    const stale = await call(api.hub, 'PUT', '/collections/made-by-api', {
      token: analyst,
      body: update,
    });
    expect(stale.status).toBe(409);
    expect(stale.json.code).toBe('stale_revision');
    expect(stale.json.message).toContain('revision 2');
    const stored = await call(api.hub, 'GET', '/collections/made-by-api', { token: reader });
    expect(stored.json.title).toBe('Renamed');

    const exported = await call(api.hub, 'GET', '/collections/made-by-api/export', {
      token: reader,
    });
    expect(exported.status).toBe(200);
    expect(exported.headers.get('content-type')).toContain('application/yaml');
    expect(exported.text).toContain('title: Renamed');

    const denied = await call(api.hub, 'DELETE', '/collections/made-by-api', { token: reader });
    expect(denied.status).toBe(403);
    const deleted = await call(api.hub, 'DELETE', '/collections/made-by-api?revision=2', {
      token: analyst,
    });
    expect(deleted.status).toBe(200);
    expect((await call(api.hub, 'GET', '/collections/made-by-api', { token: reader })).status).toBe(
      404,
    );
  });

  it('collections: import YAML; a definition that does not resolve is 422 and stores nothing', async () => {
    const yaml =
      'id: 5d6e7f80-1a2b-4c3d-8e4f-5a6b7c8d9e0f\nalias: imported\ntitle: Imported\nsources: []\n';
    const imported = await call(api.hub, 'POST', '/collections/import', {
      token: analyst,
      raw: yaml,
      contentType: 'application/yaml',
    });
    expect(imported.status).toBe(201);
    const replaced = await call(api.hub, 'POST', '/collections/import?replace=true', {
      token: analyst,
      raw: yaml.replace('Imported', 'Imported again'),
      contentType: 'application/yaml',
    });
    expect(replaced.status).toBe(200);
    expect(replaced.json.title).toBe('Imported again');

    const broken = await call(api.hub, 'POST', '/collections', {
      token: analyst,
      body: {
        id: '7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b',
        alias: 'broken',
        title: 'Broken',
        sources: [],
        allowList: { files: ['missing.txt'] },
      },
    });
    expect(broken.status).toBe(422);
    expect(broken.json.code).toBe('unprocessable');
    expect(broken.json.message).toContain('missing.txt');
    expect((await call(api.hub, 'GET', '/collections/broken', { token: reader })).status).toBe(404);
  });

  it('collections: paths outside the collections directory are refused, file content never shown', async () => {
    const before = await call(api.hub, 'GET', '/collections/blocklist', { token: reader });
    const definition = before.json.definition;
    const files = await call(api.hub, 'PUT', '/collections/blocklist', {
      token: analyst,
      body: {
        revision: before.json.revision,
        definition: {
          ...definition,
          allowList: { ...definition.allowList, files: ['/etc/passwd'] },
        },
      },
    });
    expect(files.status).toBe(422);
    expect(files.json.field).toBe('/allowList/files/0');
    expect(files.text).not.toContain('root:');
    const traversal = await call(api.hub, 'POST', '/collections/blocklist/sources', {
      token: analyst,
      body: {
        source: {
          id: 'secrets',
          kind: 'text-list',
          path: '../../../../etc/hostname',
          interval: '1h',
        },
      },
    });
    expect(traversal.status).toBe(422);
    expect(traversal.json.message).toContain('outside the collections directory');
    const system = await call(api.hub, 'POST', '/principals', {
      token: api.adminToken,
      body: { name: 'system', kind: 'user', role: 'admin' },
    });
    expect(system.status).toBe(422);
    const after = await call(api.hub, 'GET', '/collections/blocklist', { token: reader });
    expect(after.json.revision).toBe(before.json.revision);
  });

  it('sources: add, read, run now, history, remove', async () => {
    feeds.set('/second.txt', { kind: 'body', body: '192.0.2.200\n' });
    const before = await call(api.hub, 'GET', '/collections/blocklist', { token: reader });
    const added = await call(api.hub, 'POST', '/collections/blocklist/sources', {
      token: analyst,
      body: {
        revision: before.json.revision,
        source: { id: 'second', kind: 'text-list', url: feeds.url('/second.txt'), interval: '1h' },
      },
    });
    expect(added.status).toBe(201);
    const run = await call(api.hub, 'POST', '/collections/blocklist/sources/second/run', {
      token: analyst,
    });
    expect(run.status).toBe(200);
    // The new source's scheduled first poll may have applied the list just before.
    expect(['applied', 'not-modified']).toContain(run.json.report.outcome);
    expect(await viewText(api, 'blocklist', 'ip')).toContain('192.0.2.200');
    const runs = await call(api.hub, 'GET', '/collections/blocklist/sources/second/runs', {
      token: reader,
    });
    expect(runs.status).toBe(200);
    const outcomes = runs.json.items.map(
      (item: { report: { outcome: string } }) => item.report.outcome,
    );
    expect(outcomes).toContain('applied');
    const one = await call(api.hub, 'GET', '/collections/blocklist/sources/second', {
      token: reader,
    });
    expect(one.json.lastValidCount).toBe(1);

    const badUrl = await call(api.hub, 'POST', '/collections/blocklist/sources', {
      token: analyst,
      body: { source: { id: 'broken', kind: 'text-list', url: 'http://[', interval: '1h' } },
    });
    expect(badUrl.status).toBe(422);
    expect(badUrl.json.message).toContain('not a valid URL');

    const duplicate = await call(api.hub, 'POST', '/collections/blocklist/sources', {
      token: analyst,
      body: {
        source: { id: 'second', kind: 'text-list', url: feeds.url('/second.txt'), interval: '1h' },
      },
    });
    expect(duplicate.status).toBe(409);
    const removed = await call(api.hub, 'DELETE', '/collections/blocklist/sources/second', {
      token: analyst,
    });
    expect(removed.status).toBe(200);
    expect(
      (await call(api.hub, 'GET', '/collections/blocklist/sources/second', { token: reader }))
        .status,
    ).toBe(404);
  });

  it('allow-list: an added entry leaves every view at once, removal brings it back', async () => {
    const added = await call(api.hub, 'POST', '/collections/blocklist/entries/allow-list', {
      token: analyst,
      body: { entry: '203.0.113.0/24', comment: 'our partner network' },
    });
    expect(added.status).toBe(201);
    expect(added.json.entry).toEqual({
      entry: '203.0.113.0/24',
      matcher: 'ipv4',
      comment: 'our partner network',
    });
    expect(await viewText(api, 'blocklist', 'ip')).not.toContain('203.0.113.9');
    const list = await call(api.hub, 'GET', '/collections/blocklist/entries/allow-list', {
      token: reader,
    });
    expect(list.json.items).toEqual([added.json.entry]);

    const bad = await call(api.hub, 'POST', '/collections/blocklist/entries/allow-list', {
      token: analyst,
      body: { entry: 'regex:(unclosed' },
    });
    expect(bad.status).toBe(422);
    expect(bad.json.message).toContain('(unclosed');

    // The source is polled again in full, so the stored value is withdrawn and TAXII sees it.
    await waitFor('the value withdrawn', async () => {
      const lookup = await call(
        api.hub,
        'GET',
        '/collections/blocklist/indicators/lookup?value=203.0.113.9',
        { token: reader },
      );
      return lookup.json.explanation.state === 'withdrawn' ? lookup : undefined;
    });

    const removed = await call(
      api.hub,
      'DELETE',
      `/collections/blocklist/entries/allow-list?entry=${encodeURIComponent('203.0.113.0/24')}`,
      {
        token: analyst,
      },
    );
    expect(removed.status).toBe(200);
    // The value comes back with the poll that follows the change.
    await waitFor('the value back in the view', async () =>
      (await viewText(api, 'blocklist', 'ip')).includes('203.0.113.9') ? true : undefined,
    );
    const back = await call(
      api.hub,
      'GET',
      '/collections/blocklist/indicators/lookup?value=203.0.113.9',
      { token: reader },
    );
    expect(back.json.explanation.state).toBe('active');
  });

  it('manual entries: add publishes, a guard refuses, removal revokes', async () => {
    const added = await call(api.hub, 'POST', '/collections/blocklist/manual', {
      token: analyst,
      body: {
        value: 'Evil.Example.COM',
        confidence: 80,
        tlp: 'amber',
        comment: 'phishing kit',
        labels: ['phishing'],
      },
    });
    expect(added.status).toBe(201);
    expect(added.json.entry).toMatchObject({
      value: 'evil.example.com',
      valueType: 'domain',
      confidence: 80,
      addedBy: 'ana',
    });
    expect(await viewText(api, 'blocklist', 'domain')).toContain('evil.example.com');

    const lookup = await call(
      api.hub,
      'GET',
      '/collections/blocklist/indicators/lookup?value=evil.example.com',
      { token: reader },
    );
    expect(lookup.status).toBe(200);
    expect(lookup.json.explanation.state).toBe('active');
    expect(lookup.json.versions).toHaveLength(1);

    const refused = await call(api.hub, 'POST', '/collections/blocklist/manual', {
      token: analyst,
      body: { value: '0.0.0.0/0' },
    });
    expect(refused.status).toBe(422);
    expect(refused.json.message).toContain('0.0.0.0/0');

    const removed = await call(
      api.hub,
      'DELETE',
      '/collections/blocklist/manual?value=evil.example.com',
      { token: analyst },
    );
    expect(removed.status).toBe(200);
    const first = lookup.json.versions[0].id as string;
    expect(removed.json).toEqual({ deleted: 'domain:evil.example.com', revoked: first });
    expect(await viewText(api, 'blocklist', 'domain')).not.toContain('evil.example.com');
    const after = await call(
      api.hub,
      'GET',
      '/collections/blocklist/indicators/lookup?value=evil.example.com',
      { token: reader },
    );
    expect(after.json.explanation.state).toBe('removed');
    expect(after.json.explanation.revocations).toEqual([
      expect.objectContaining({ indicatorId: first }),
    ]);
    expect(after.json.versions).toHaveLength(2);
    const last = after.json.versions[1];
    expect(last).toMatchObject({ id: first, revoked: true, valid_until: last.modified });

    // A TAXII poller that saw the first version gets the revocation.
    const taxii = await fetch(
      `${api.hub.url}/taxii2/hub/collections/${IP_COLLECTION}/objects/?match[id]=${first}&match[version]=all`,
      {
        headers: {
          accept: 'application/taxii+json;version=2.1',
          authorization: `Bearer ${reader}`,
        },
      },
    );
    const envelope = (await taxii.json()) as { objects: { revoked?: boolean }[] };
    expect(envelope.objects.map((o) => o.revoked ?? false)).toEqual([false, true]);

    const removedList = await call(
      api.hub,
      'GET',
      '/collections/blocklist/indicators?state=removed&type=domain',
      { token: reader },
    );
    expect(removedList.json.items).toEqual([
      expect.objectContaining({
        value: 'evil.example.com',
        indicatorId: first,
        state: 'removed',
        sources: ['manual'],
      }),
    ]);
    expect(removedList.json.items[0].confidence).toBeUndefined();
    const withdrawn = await call(
      api.hub,
      'GET',
      '/collections/blocklist/indicators?state=withdrawn&type=domain',
      { token: reader },
    );
    expect(withdrawn.json.items).toEqual([]);
    const active = await call(api.hub, 'GET', '/collections/blocklist/indicators?type=domain', {
      token: reader,
    });
    expect(active.json.items.map((i: { value: string }) => i.value)).not.toContain(
      'evil.example.com',
    );

    const missing = await call(
      api.hub,
      'DELETE',
      '/collections/blocklist/manual?value=evil.example.com',
      { token: analyst },
    );
    expect(missing.status).toBe(404);

    // Added again, the value comes back as a new indicator: the revoked one stays revoked.
    const again = await call(api.hub, 'POST', '/collections/blocklist/manual', {
      token: analyst,
      body: { value: 'evil.example.com' },
    });
    expect(again.status).toBe(201);
    expect(await viewText(api, 'blocklist', 'domain')).toContain('evil.example.com');
    const back = await call(
      api.hub,
      'GET',
      '/collections/blocklist/indicators/lookup?value=evil.example.com',
      { token: reader },
    );
    expect(back.json.explanation.state).toBe('active');
    const ids = back.json.versions.map((v: { id: string }) => v.id);
    expect(ids).toHaveLength(3);
    expect(ids.slice(0, 2)).toEqual([first, first]);
    expect(ids[2]).not.toBe(first);
    expect(back.json.versions[2].revoked).toBeUndefined();
  });

  it('manual entries: an expired entry leaves at the next poll of the manual source', async () => {
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const added = await call(api.hub, 'POST', '/collections/blocklist/manual', {
      token: analyst,
      body: { value: 'short-lived.example.com', expiresAt },
    });
    expect(added.status).toBe(201);
    expect(await viewText(api, 'blocklist', 'domain')).toContain('short-lived.example.com');
    await new Promise((resolve) => setTimeout(resolve, 1600));
    const run = await call(api.hub, 'POST', '/collections/blocklist/sources/manual/run', {
      token: analyst,
    });
    expect(run.json.report.withdrawn).toBe(1);
    expect(await viewText(api, 'blocklist', 'domain')).not.toContain('short-lived.example.com');
    const listed = await call(api.hub, 'GET', '/collections/blocklist/manual', { token: reader });
    const entry = listed.json.items.find(
      (e: { value: string }) => e.value === 'short-lived.example.com',
    );
    expect(entry.expired).toBe(true);
  });

  it('manual expiresAt: past or leap second', async () => {
    const past = await call(api.hub, 'POST', '/collections/blocklist/manual', {
      token: analyst,
      body: { value: 'late.example.com', expiresAt: '2001-01-01T00:00:00Z' },
    });
    expect(past.status).toBe(422);
    expect(past.json.message).toContain('is not in the future');
    const leap = await call(api.hub, 'POST', '/collections/blocklist/manual', {
      token: analyst,
      body: { value: 'late.example.com', expiresAt: '2036-12-31T23:59:60Z' },
    });
    expect(leap.status).toBe(422);
    expect(leap.json.field).toBe('/expiresAt');
    expect(leap.json.message).toContain('leap second');
    const key = await call(api.hub, 'POST', '/principals/ana/keys', {
      token: api.adminToken,
      body: { expiresAt: '2036-12-31T23:59:60Z' },
    });
    expect(key.status).toBe(422);
    expect(key.json.message).toContain('leap second');
  });

  it('manual entries: bulk text with rejects, CSV and a STIX bundle', async () => {
    const text = await call(
      api.hub,
      'POST',
      '/collections/blocklist/manual/bulk?ttl=1d&confidence=70',
      {
        token: analyst,
        raw: '# from a ticket\n198.51.100.50\nnot a value\n8.8.8.8\nmalware.example.net\n',
        contentType: 'text/plain',
      },
    );
    expect(text.status).toBe(200);
    expect(text.json.total).toBe(4);
    expect(text.json.added).toBe(2);
    expect(text.json.rejected.map((r: { line: number }) => r.line)).toEqual([3, 4]);
    const csv = await call(api.hub, 'POST', '/collections/blocklist/manual/bulk', {
      token: analyst,
      raw: 'value,comment\n"198.51.100.51","from, a CSV"\n',
      contentType: 'text/csv',
    });
    expect(csv.json).toMatchObject({ total: 1, added: 1 });
    const bundle = await call(api.hub, 'POST', '/collections/blocklist/manual/bulk', {
      token: analyst,
      raw: JSON.stringify({
        type: 'bundle',
        id: 'bundle--7a3f0c1e-8b2d-4e5f-9a6b-1c2d3e4f5a6b',
        objects: [
          { type: 'indicator', pattern: "[ipv4-addr:value = '198.51.100.52']", name: 'C2' },
        ],
      }),
      contentType: 'application/stix+json',
    });
    expect(bundle.json).toMatchObject({ total: 1, added: 1 });
    const ip = await viewText(api, 'blocklist', 'ip');
    expect(ip).toContain('198.51.100.50');
    expect(ip).toContain('198.51.100.52');
    const entries = await call(api.hub, 'GET', '/collections/blocklist/manual?limit=2', {
      token: reader,
    });
    expect(entries.json.items).toHaveLength(2);
    expect(entries.json.next).toBeDefined();
  });

  it('indicators: search by containment, source and text', async () => {
    const inside = await call(
      api.hub,
      'GET',
      '/collections/blocklist/indicators?contains=198.51.100.0/24',
      { token: reader },
    );
    expect(inside.status).toBe(200);
    const values = inside.json.items.map((i: { value: string }) => i.value);
    expect(values).toContain('198.51.100.7');
    expect(values).not.toContain('203.0.113.9');
    const bySource = await call(
      api.hub,
      'GET',
      '/collections/blocklist/indicators?source=manual&type=ipv4',
      { token: reader },
    );
    expect(
      bySource.json.items.every((i: { sources: string[] }) => i.sources.includes('manual')),
    ).toBe(true);
    const byText = await call(
      api.hub,
      'GET',
      '/collections/blocklist/indicators?value=BAD.example',
      { token: reader },
    );
    expect(byText.json.items.map((i: { value: string }) => i.value)).toEqual(['bad.example.org']);
    const paged = await call(api.hub, 'GET', '/collections/blocklist/indicators?limit=1', {
      token: reader,
    });
    const next = await call(
      api.hub,
      'GET',
      `/collections/blocklist/indicators?limit=1&cursor=${paged.json.next}`,
      { token: reader },
    );
    expect(next.json.items[0].value).not.toBe(paged.json.items[0].value);
  });

  it('views and jobs', async () => {
    const views = await call(api.hub, 'GET', '/collections/blocklist/views', { token: reader });
    expect(views.json.items.map((v: { name: string }) => v.name)).toEqual(['ip', 'domain']);
    const log = await call(api.hub, 'GET', '/collections/blocklist/views/ip/build-log', {
      token: reader,
    });
    expect(log.status).toBe(200);
    const rendered = await call(api.hub, 'POST', '/collections/blocklist/views/render', {
      token: analyst,
    });
    expect(rendered.status).toBe(200);
    const jobs = await call(api.hub, 'GET', '/jobs', { token: reader });
    expect(jobs.status).toBe(200);
    expect(jobs.json.items.map((j: { source: string }) => j.source)).toEqual(
      expect.arrayContaining(['list', 'manual']),
    );
  });

  it('keys: shown once, hashed, revoked at once; the audit log has every change', async () => {
    const created = await call(api.hub, 'POST', '/principals/ana/keys', {
      token: api.adminToken,
      body: { label: 'laptop', expiresIn: '30d' },
    });
    expect(created.status).toBe(201);
    const token = created.json.token as string;
    expect(token.startsWith(`${created.json.key.id}.`)).toBe(true);
    expect(created.json.key.id).toMatch(/^fh_/);
    const listed = await call(api.hub, 'GET', '/principals/ana/keys', { token: api.adminToken });
    expect(listed.text).not.toContain(token.split('.')[1]);
    expect((await call(api.hub, 'GET', '/me', { token })).json.name).toBe('ana');
    const revoked = await call(api.hub, 'DELETE', `/principals/ana/keys/${created.json.key.id}`, {
      token: api.adminToken,
    });
    expect(revoked.json.state).toBe('revoked');
    expect((await call(api.hub, 'GET', '/me', { token })).status).toBe(401);

    const audit = await call(api.hub, 'GET', '/audit?actor=ana&limit=1000', { token: analyst });
    expect(audit.status).toBe(200);
    const actions = new Set(audit.json.items.map((e: { action: string }) => e.action));
    for (const action of [
      'collection.create',
      'collection.update',
      'collection.delete',
      'source.create',
      'source.delete',
      'source.run',
      'allow-list.add',
      'allow-list.remove',
      'manual-entry.add',
      'manual-entry.remove',
      'manual-entry.bulk',
    ]) {
      expect(actions).toContain(action);
    }
    const keyEvents = await call(api.hub, 'GET', '/audit?action=api-key.', { token: analyst });
    expect(keyEvents.json.items.map((e: { action: string }) => e.action)).toEqual(
      expect.arrayContaining(['api-key.create', 'api-key.revoke']),
    );
    expect(keyEvents.text).not.toContain(token.split('.')[1]);
  });

  it('the collection of the file stays in force', async () => {
    const one = await call(api.hub, 'GET', `/collections/${IP_COLLECTION}`, { token: reader });
    expect(one.json.alias).toBe('blocklist');
    expect(one.json.inForce).toBe(true);
  });
});
