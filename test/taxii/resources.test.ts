import { TAXII, buildCollection, readError, startTaxii, type TaxiiFixture } from './helpers.js';

let hub: TaxiiFixture;

beforeAll(async () => {
  hub = await startTaxii();
});

afterAll(async () => {
  await hub.close();
});

async function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${hub.baseUrl}${path}`, { headers: { Accept: TAXII, ...headers } });
}

describe('TAXII discovery and API root', () => {
  test('discovery lists absolute API root URLs', async () => {
    const response = await get('/taxii2/');

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(TAXII);
    expect(await response.json()).toEqual({
      title: 'Test hub',
      description: 'Hub under test',
      default: 'https://hub.example.test/taxii2/hub/',
      api_roots: ['https://hub.example.test/taxii2/hub/'],
    });
  });

  test('API root shape', async () => {
    const response = await get('/taxii2/hub/');

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(TAXII);
    expect(await response.json()).toEqual({
      title: 'Test hub',
      description: 'Hub under test',
      versions: [TAXII],
      max_content_length: 10 * 1024 * 1024,
    });
  });

  test('unknown API root is 404', async () => {
    const response = await get('/taxii2/other/');

    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe(TAXII);
    const body = await readError(response);
    expect(body.http_status).toBe('404');
    expect(body.description).toContain('other');
  });

  test('unknown path is a TAXII 404', async () => {
    const response = await get('/taxii2/hub/nothing/here/');

    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe(TAXII);
    expect((await readError(response)).title).toBe('Not found');
  });

  test('unsupported method is a TAXII 405', async () => {
    const response = await fetch(`${hub.baseUrl}/taxii2/hub/`, {
      method: 'DELETE',
      headers: { Accept: TAXII },
    });

    expect(response.status).toBe(405);
    expect(response.headers.get('content-type')).toBe(TAXII);
    expect(response.headers.get('allow')).toContain('GET');
  });
});

describe('TAXII collections', () => {
  test('empty list is {}', async () => {
    const response = await get('/taxii2/hub/collections/');

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({});
  });

  test('list and single collection shapes', async () => {
    const described = buildCollection({
      title: 'Described',
      description: 'With text',
      canWrite: true,
    });
    const plain = buildCollection({ title: 'Plain' });
    await hub.store.upsertCollection(described);
    await hub.store.upsertCollection(plain);

    const list = await get('/taxii2/hub/collections/');
    const single = await get(`/taxii2/hub/collections/${plain.id}/`);

    expect(list.status).toBe(200);
    const { collections } = (await list.json()) as { collections: unknown[] };
    expect(collections).toHaveLength(2);
    expect(collections).toContainEqual({
      id: described.id,
      title: 'Described',
      description: 'With text',
      alias: described.alias,
      can_read: true,
      // No principal is granted write access, and the caller is anonymous.
      can_write: false,
      media_types: ['application/stix+json;version=2.1'],
    });
    expect(single.status).toBe(200);
    expect(single.headers.get('content-type')).toBe(TAXII);
    expect(await single.json()).toEqual({
      id: plain.id,
      title: 'Plain',
      alias: plain.alias,
      can_read: true,
      can_write: false,
      media_types: ['application/stix+json;version=2.1'],
    });
  });

  test('unknown collection is a TAXII 404', async () => {
    const response = await get(
      '/taxii2/hub/collections/00000000-0000-4000-8000-000000000000/objects/',
    );

    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe(TAXII);
    const body = await readError(response);
    expect(body.http_status).toBe('404');
    expect(body.description).toContain('00000000-0000-4000-8000-000000000000');
  });

  test('unusable collection is hidden', async () => {
    const closed = buildCollection({ canRead: false });
    await hub.store.upsertCollection(closed);

    const response = await get(`/taxii2/hub/collections/${closed.id}/objects/`);
    const list = (await (await get('/taxii2/hub/collections/')).json()) as {
      collections: { id: string }[];
    };

    expect(response.status).toBe(404);
    expect(list.collections.map((c) => c.id)).not.toContain(closed.id);
    expect(response.headers.get('content-type')).toBe(TAXII);
  });
});

describe('TAXII content negotiation', () => {
  const served = [
    TAXII,
    'application/taxii+json',
    'APPLICATION/TAXII+JSON; Version=2.1',
    'application/taxii+json ; version="2.1"; q=0.5',
    '*/*',
    'application/*',
    'application/json',
    'text/html, application/taxii+json;version=2.0;q=1, application/taxii+json;q=0.2',
  ];
  test.each(served)('serves Accept %s', async (accept) => {
    const response = await get('/taxii2/', { Accept: accept });

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(TAXII);
  });

  test('serves without Accept', async () => {
    const response = await fetch(`${hub.baseUrl}/taxii2/`, { headers: { Accept: '' } });

    expect(response.status).toBe(200);
  });

  const rejected = [
    'application/taxii+json;version=2.0',
    'application/xml',
    'text/*',
    'application/taxii+json;version=2.1;q=0',
    '*/*;q=0.5, application/taxii+json;q=0',
  ];
  test.each(rejected)('406 for Accept %s', async (accept) => {
    const response = await get('/taxii2/hub/collections/', { Accept: accept });

    expect(response.status).toBe(406);
    expect(response.headers.get('content-type')).toBe(TAXII);
    expect((await readError(response)).http_status).toBe('406');
  });
});

describe('TAXII paths', () => {
  test.each(['/taxii2', '/taxii2/hub', '/taxii2/hub/collections'])(
    '%s without trailing slash',
    async (path) => {
      const response = await get(path);

      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe(TAXII);
    },
  );

  test('HEAD on discovery', async () => {
    const response = await fetch(`${hub.baseUrl}/taxii2/`, {
      method: 'HEAD',
      headers: { Accept: TAXII },
    });

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(TAXII);
  });
});
