/**
 * The request body of the add-objects endpoint: its media type, its size
 * limit and its JSON text.
 */
import type { Context } from 'koa';

import { TaxiiError } from './errors.js';
import { TAXII_MEDIA_TYPE, isTaxiiContentType } from './media-type.js';

/** Rejects with 415 a body that is not a TAXII 2.1 envelope by its headers. */
export function requireTaxiiContentType(ctx: Context): void {
  const contentType = ctx.get('Content-Type') || undefined;
  if (!isTaxiiContentType(contentType)) {
    throw new TaxiiError(
      415,
      'unsupported_media_type',
      'Unsupported media type',
      `The body must be a TAXII envelope sent as ${TAXII_MEDIA_TYPE}; the request says ${JSON.stringify(contentType ?? '')}.`,
    );
  }
  const encoding = ctx.get('Content-Encoding').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') {
    throw new TaxiiError(
      415,
      'unsupported_media_type',
      'Unsupported content encoding',
      `Content-Encoding ${JSON.stringify(encoding)} is not supported; send the body uncompressed.`,
    );
  }
}

function tooLarge(maxBytes: number): TaxiiError {
  // The connection closes after the response, so the rest of the body is never read.
  return new TaxiiError(
    413,
    'payload_too_large',
    'Request body too large',
    `The body exceeds max_content_length, ${maxBytes} bytes; split the objects over several requests.`,
    { Connection: 'close' },
  );
}

/**
 * Reads the request body as UTF-8 text, rejecting with 413 as soon as it
 * exceeds `maxBytes`, so that no more than `maxBytes` are ever buffered.
 */
export async function readBodyText(ctx: Context, maxBytes: number): Promise<string> {
  const declared = ctx.get('Content-Length');
  if (declared !== '' && Number(declared) > maxBytes) throw tooLarge(maxBytes);

  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }

  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks, length));
  } catch {
    throw new TaxiiError(
      400,
      'invalid_body',
      'Invalid request body',
      'The body is not valid UTF-8 text; send the envelope as UTF-8 JSON.',
    );
  }
}

/** Parses the body as JSON, rejecting with 400 and the parser's message when it is not. */
export function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new TaxiiError(
      400,
      'invalid_json',
      'Invalid JSON',
      `The body is not valid JSON: ${(error as Error).message}.`,
    );
  }
}

/**
 * Returns the objects of a TAXII envelope, rejecting with 422 a body that is
 * not one. The envelope's `objects` is optional, so `{}` has no objects.
 */
export function envelopeObjects(body: unknown): unknown[] {
  const notEnvelope = (description: string) =>
    new TaxiiError(422, 'not_an_envelope', 'Not a TAXII envelope', description);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw notEnvelope('The body must be a JSON object with an "objects" list (a TAXII envelope).');
  }
  const envelope = body as Record<string, unknown>;
  if (envelope['type'] === 'bundle') {
    throw notEnvelope(
      'The body is a STIX bundle; send its "objects" inside a TAXII envelope {"objects": [...]}.',
    );
  }
  const objects = envelope['objects'];
  if (objects === undefined) return [];
  if (!Array.isArray(objects)) {
    throw notEnvelope('The envelope property "objects" must be a list of STIX objects.');
  }
  return objects;
}
