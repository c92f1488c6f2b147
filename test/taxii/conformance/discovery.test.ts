/**
 * TAXII 2.1 Server Discovery, API Root Information, content negotiation and
 * the error resource.
 */
import { expect, it } from '@jest/globals';

import { TAXII, collectionPath, describeOnStores, request } from './harness.js';

interface ErrorBody {
  title: string;
  description?: string;
  error_code?: string;
  http_status?: string;
}

describeOnStores('Server Discovery and API Root', (hub) => {
  it('discovery shape', async () => {
    const response = await request(hub(), '/taxii2/');

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(TAXII);
    expect(await response.json()).toEqual({
      title: 'Conformance hub',
      default: 'https://hub.example.test/taxii2/hub/',
      api_roots: ['https://hub.example.test/taxii2/hub/'],
    });
  });

  it('discovery without credentials', async () => {
    const response = await request(hub(), '/taxii2/', { headers: { Accept: '*/*' } });

    expect(response.status).toBe(200);
  });

  it('discovery with credentials', async () => {
    const response = await request(hub(), '/taxii2/', { as: 'alice' });

    expect(response.status).toBe(200);
  });

  it('api root shape', async () => {
    const response = await request(hub(), '');

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      title: 'Conformance hub',
      versions: [TAXII],
      max_content_length: 10 * 1024 * 1024,
    });
  });

  it('unknown api root is 404', async () => {
    const response = await request(hub(), '/taxii2/elsewhere/');

    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe(TAXII);
  });

  it('api root without trailing slash', async () => {
    const response = await request(hub(), '/taxii2/hub');

    expect(response.status).toBe(200);
  });
});

describeOnStores('Content negotiation', (hub) => {
  it('unversioned taxii accept', async () => {
    const response = await request(hub(), '', { headers: { Accept: 'application/taxii+json' } });

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(TAXII);
  });

  it('taxii 2.0 accept is 406', async () => {
    const response = await request(hub(), '', {
      headers: { Accept: 'application/taxii+json;version=2.0' },
    });

    expect(response.status).toBe(406);
    expect(response.headers.get('content-type')).toBe(TAXII);
  });

  it('xml accept is 406', async () => {
    const response = await request(hub(), 'collections/', {
      headers: { Accept: 'application/xml' },
    });

    expect(response.status).toBe(406);
  });

  it('stix accept on objects is 406', async () => {
    const response = await request(hub(), collectionPath(hub().collections.open, 'objects/'), {
      headers: { Accept: 'application/stix+json;version=2.1' },
    });

    expect(response.status).toBe(406);
  });

  it('media type on 404', async () => {
    const response = await request(hub(), 'no/such/resource/');

    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe(TAXII);
  });

  it('media type on 405', async () => {
    const response = await request(hub(), 'collections/', { method: 'PUT' });

    expect(response.status).toBe(405);
    expect(response.headers.get('content-type')).toBe(TAXII);
    expect(response.headers.get('allow')).toContain('GET');
  });
});

describeOnStores('Error resource', (hub) => {
  it('error shape', async () => {
    const response = await request(hub(), '/taxii2/elsewhere/');
    const body = (await response.json()) as ErrorBody;

    expect(typeof body.title).toBe('string');
    expect(body.http_status).toBe('404');
    expect(body.description).toContain('elsewhere');
    expect(
      Object.keys(body).every((key) =>
        ['title', 'description', 'error_code', 'http_status'].includes(key),
      ),
    ).toBe(true);
  });

  it('invalid parameter names it', async () => {
    const response = await request(
      hub(),
      `${collectionPath(hub().collections.open, 'objects/')}?limit=ten`,
    );
    const body = (await response.json()) as ErrorBody;

    expect(response.status).toBe(400);
    expect(body.title).toContain('limit');
    expect(body.description).toContain('"ten"');
  });
});
