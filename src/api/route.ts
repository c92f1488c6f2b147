/**
 * How an endpoint of the REST API is declared, and the one piece of code that
 * serves every declaration: authentication, the role check, parsing and
 * validating parameters and bodies, error bodies, and (when asked) checking
 * each response against its declared schema. The OpenAPI document is built
 * from the same declarations, so it says what the server does.
 */
import type { Context } from 'koa';
import Router from '@koa/router';
import type { Logger } from 'pino';
import type { ValidateFunction } from 'ajv';

import type { Authenticator, PrincipalDirectory, PrincipalInfo, Role } from '../auth/index.js';
import { roleAllows } from '../auth/index.js';
import { StoreError } from '../store/index.js';
import { ApiError, echoable, quote } from './errors.js';
import { ApiSchemas, describeSchemaError, firstErrors } from './schemas.js';

export const API_PREFIX = '/api/v1';
/** Default largest JSON body, in bytes. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export type HttpMethod = 'get' | 'post' | 'put' | 'delete';

export interface ParamSpec {
  description: string;
  /** JSON Schema of the value; query values are coerced from text to its type. */
  schema: Record<string, unknown>;
  required?: boolean;
}

export interface BodySpec {
  /** Media type to schema reference (`api/x#/$defs/Y`), or `text` for a text body of that type. */
  content: Record<string, string>;
  /** Largest accepted body, in bytes. Default 1 MiB. */
  maxBytes?: number;
  description?: string;
}

export interface ResponseSpec {
  description: string;
  /**
   * Schema reference of the body; absent for no body, or for a text body
   * described only as a string. With `mediaType` it describes the parsed
   * body (e.g. the YAML document), which `checkResponses` does not check.
   */
  schema?: string;
  /** Media type of a non-JSON body (e.g. `application/yaml`); the handler sends it as text. */
  mediaType?: string;
  /** Response headers, by name, with a description. */
  headers?: Record<string, string>;
}

export interface ApiRequest {
  ctx: Context;
  principal: PrincipalInfo;
  params: Record<string, string>;
  query: Record<string, unknown>;
  /** The parsed JSON body, or the text of a text body. */
  body: unknown;
  /** Media type of the body as sent, without parameters, lower case. */
  mediaType?: string;
}

export interface ApiResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Media type of a text body; a JSON body is sent as application/json. */
  mediaType?: string;
}

export interface RouteSpec {
  operationId: string;
  method: HttpMethod;
  /** OpenAPI form, e.g. `/collections/{collection}/sources/{source}`. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  /** The minimum role that may call it. */
  role: Role;
  params?: Record<string, ParamSpec>;
  query?: Record<string, ParamSpec>;
  body?: BodySpec;
  /** Success responses by status. The framework adds the error responses it can return. */
  responses: Record<number, ResponseSpec>;
  /** Other error statuses that the handler itself returns, e.g. 409 or 422. */
  errors?: number[];
  handle(request: ApiRequest): Promise<ApiResponse>;
}

export interface ApiRouterOptions {
  routes: readonly RouteSpec[];
  schemas: ApiSchemas;
  authenticator: Authenticator;
  directory: PrincipalDirectory;
  logger: Logger;
  /** Check every response against its declared schema and fail loudly on a mismatch (tests). */
  checkResponses?: boolean;
}

interface CompiledRoute {
  spec: RouteSpec;
  params?: ValidateFunction;
  query?: ValidateFunction;
  bodies: Map<string, ValidateFunction | 'text'>;
  responses: Map<number, ValidateFunction>;
}

/**
 * Statuses every authenticated route can answer, whatever it does. 431 comes
 * from Node's HTTP server, before any route runs.
 */
export function frameworkErrors(spec: RouteSpec): number[] {
  const statuses = new Set([400, 401, 403, 429, 431, ...(spec.errors ?? [])]);
  if (spec.params !== undefined) statuses.add(404);
  if (spec.body !== undefined) {
    statuses.add(413);
    statuses.add(415);
  }
  return [...statuses].sort((a, b) => a - b);
}

function objectSchema(params: Record<string, ParamSpec>): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    required: Object.entries(params)
      .filter(([, p]) => p.required === true)
      .map(([name]) => name),
    properties: Object.fromEntries(Object.entries(params).map(([name, p]) => [name, p.schema])),
  };
}

function compile(spec: RouteSpec, schemas: ApiSchemas): CompiledRoute {
  const bodies = new Map<string, ValidateFunction | 'text'>();
  for (const [type, ref] of Object.entries(spec.body?.content ?? {})) {
    bodies.set(type, ref === 'text' ? 'text' : schemas.validator(ref));
  }
  const responses = new Map<number, ValidateFunction>();
  for (const [status, response] of Object.entries(spec.responses)) {
    // A text body is sent as the handler wrote it, so only JSON bodies are checked.
    if (response.schema !== undefined && response.mediaType === undefined) {
      responses.set(Number(status), schemas.validator(response.schema));
    }
  }
  return {
    spec,
    ...(spec.params ? { params: schemas.queryValidator(objectSchema(spec.params)) } : {}),
    ...(spec.query ? { query: schemas.queryValidator(objectSchema(spec.query)) } : {}),
    bodies,
    responses,
  };
}

/** Builds the Koa router of the API: every declared route, JSON 404s and 405s under the prefix. */
export function createApiRouter(options: ApiRouterOptions): Router {
  const router = new Router({ prefix: API_PREFIX });
  const compiled = options.routes.map((spec) => compile(spec, options.schemas));
  const errorValidator = options.schemas.validator('api/common#/$defs/Error');

  for (const route of compiled) {
    const koaPath = route.spec.path.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1');
    router[route.spec.method](route.spec.operationId, koaPath, async (ctx) => {
      try {
        const response = await serve(route, ctx, options);
        if (options.checkResponses) checkResponse(route, response);
        send(ctx, response);
      } catch (error) {
        sendError(ctx, error, options, errorValidator);
      }
    });
  }

  // Anything else under the prefix: a JSON 405 when the path exists, else a JSON 404.
  router.all('/{*rest}', (ctx) => {
    const path = ctx.path.slice(API_PREFIX.length) || '/';
    const allowed = compiled
      .filter((route) => pathMatches(route.spec.path, path))
      .map((route) => route.spec.method.toUpperCase());
    const error =
      allowed.length > 0
        ? new ApiError(
            405,
            'method_not_allowed',
            `${ctx.method} is not allowed on ${path}; use ${allowed.join(', ')}`,
            {},
            { Allow: allowed.join(', ') },
          )
        : new ApiError(
            404,
            'not_found',
            `no endpoint ${quote(path)}; see ${API_PREFIX}/openapi.json for the endpoints`,
          );
    sendError(ctx, error, options, errorValidator);
  });
  return router;
}

function pathMatches(template: string, path: string): boolean {
  const pattern = template
    .split('/')
    .map((part) => (/^\{.+\}$/.test(part) ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${pattern}$`).test(path);
}

async function serve(
  route: CompiledRoute,
  ctx: Context,
  options: ApiRouterOptions,
): Promise<ApiResponse> {
  const principal = await authenticate(ctx, options);
  if (!roleAllows(principal.role, route.spec.role)) {
    throw new ApiError(
      403,
      'forbidden',
      principal.role === undefined
        ? `principal ${quote(principal.name)} has no role on this API; an admin can give it one`
        : `this needs the ${route.spec.role} role; principal ${quote(principal.name)} is ${principal.role}`,
    );
  }
  const params = validateParams(route, ctx.params as Record<string, string>);
  const query = validateQuery(route, ctx);
  const { body, mediaType } = await readBody(route, ctx);
  return route.spec.handle({
    ctx,
    principal,
    params,
    query,
    body,
    ...(mediaType === undefined ? {} : { mediaType }),
  });
}

async function authenticate(ctx: Context, options: ApiRouterOptions): Promise<PrincipalInfo> {
  const challenge = { 'WWW-Authenticate': options.authenticator.challenges.join(', ') };
  const outcome = await options.authenticator.authenticate(ctx.req, ctx.res, ctx.ip);
  switch (outcome.kind) {
    case 'anonymous':
      throw new ApiError(
        401,
        'unauthorized',
        'this API needs credentials: send an API key as "Authorization: Bearer KEYID.SECRET" or HTTP Basic credentials',
        {},
        challenge,
      );
    case 'rejected':
      throw new ApiError(
        401,
        'unauthorized',
        'the credentials are invalid, expired or revoked; ask an admin for a new API key',
        {},
        challenge,
      );
    case 'throttled':
      throw new ApiError(
        429,
        'too_many_requests',
        `too many failed logins from this address or for this principal; retry in ${outcome.retryAfterSeconds} s`,
        {},
        { 'Retry-After': String(outcome.retryAfterSeconds) },
      );
    case 'principal': {
      const info = await options.directory.principal(outcome.name);
      if (info === undefined || info.disabled) {
        throw new ApiError(
          401,
          'unauthorized',
          `principal ${quote(outcome.name)} is disabled or removed`,
          {},
          challenge,
        );
      }
      return info;
    }
  }
}

function validateParams(route: CompiledRoute, raw: Record<string, string>): Record<string, string> {
  const params: Record<string, string> = {};
  for (const name of Object.keys(route.spec.params ?? {})) {
    const value = raw[name];
    if (value !== undefined) params[name] = value;
  }
  if (route.params && !route.params(params)) {
    const error = firstErrors(route.params.errors ?? [])[0]!;
    const name = error.instancePath.slice(1);
    const value = params[name];
    // A path that cannot name anything exists as well as one that names nothing.
    throw new ApiError(
      404,
      'not_found',
      `${name} ${quote(value)} ${describeSchemaError(error).message}`,
      {
        field: name,
        ...(echoable(value) ? { value } : {}),
      },
    );
  }
  return params;
}

function validateQuery(route: CompiledRoute, ctx: Context): Record<string, unknown> {
  const query: Record<string, unknown> = {};
  const search = new URLSearchParams(ctx.querystring);
  const specs = route.spec.query ?? {};
  for (const name of new Set(search.keys())) {
    const spec = specs[name];
    if (spec === undefined) {
      const known = Object.keys(specs);
      throw new ApiError(
        400,
        'invalid_query',
        known.length === 0
          ? `query parameter ${quote(name)} is not accepted here; this endpoint takes none`
          : `query parameter ${quote(name)} is not accepted here; use ${known.join(', ')}`,
        { field: name },
      );
    }
    const values = search.getAll(name);
    if (spec.schema.type === 'array') query[name] = values.flatMap((v) => v.split(','));
    else if (values.length > 1) {
      throw new ApiError(
        400,
        'invalid_query',
        `query parameter ${quote(name)} is given ${values.length} times; give it once`,
        {
          field: name,
        },
      );
    } else query[name] = values[0];
  }
  if (route.query && !route.query(query)) {
    const problems = firstErrors(route.query.errors ?? []).map(describeSchemaError);
    const first = problems[0]!;
    const name = first.field.split('/')[1] ?? '';
    const value = new URLSearchParams(ctx.querystring).get(name);
    throw new ApiError(
      400,
      'invalid_query',
      `query parameter ${quote(name)}${value === null ? '' : ` = ${quote(value)}`}: ${first.message}`,
      { field: name, ...(value !== null && echoable(value) ? { value } : {}) },
    );
  }
  return query;
}

async function readBody(
  route: CompiledRoute,
  ctx: Context,
): Promise<{ body: unknown; mediaType?: string }> {
  const spec = route.spec.body;
  const hasBody = ctx.request.length > 0 || ctx.get('Transfer-Encoding') !== '';
  if (spec === undefined) {
    if (hasBody && ctx.request.length !== 0) {
      throw new ApiError(
        400,
        'invalid_request',
        `${ctx.method} ${ctx.path} takes no body; send none`,
      );
    }
    return { body: undefined };
  }
  const contentType = ctx.get('Content-Type');
  const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
  const accepted = [...route.bodies.keys()];
  const validate = route.bodies.get(mediaType);
  if (validate === undefined) {
    throw new ApiError(
      415,
      'unsupported_media_type',
      contentType === ''
        ? `the body needs a Content-Type; send one of ${accepted.join(', ')}`
        : `Content-Type ${quote(contentType)} is not accepted here; send one of ${accepted.join(', ')}`,
    );
  }
  const charset = /;\s*charset\s*=\s*"?([^";]+)"?/i.exec(contentType)?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new ApiError(
      415,
      'unsupported_media_type',
      `charset ${quote(charset)} is not accepted; send UTF-8`,
    );
  }
  const encoding = ctx.get('Content-Encoding').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') {
    throw new ApiError(
      415,
      'unsupported_media_type',
      `Content-Encoding ${quote(encoding)} is not accepted; send the body uncompressed`,
    );
  }
  const text = await readText(ctx, spec.maxBytes ?? DEFAULT_MAX_BODY_BYTES);
  if (validate === 'text') return { body: text, mediaType };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new ApiError(400, 'invalid_body', `the body is not JSON: ${(error as Error).message}`);
  }
  if (!validate(body)) {
    const problems = firstErrors(validate.errors ?? []).map(describeSchemaError);
    const first = problems[0]!;
    const value = valueAt(body, first.field);
    throw new ApiError(
      400,
      'invalid_body',
      `${first.field}: ${first.message}${value !== undefined && echoable(value) ? ` (value ${quote(value)})` : ''}`,
      {
        field: first.field,
        ...(value !== undefined && echoable(value) ? { value } : {}),
        ...(problems.length > 1 ? { problems: problems.slice(0, 20) } : {}),
      },
    );
  }
  return { body, mediaType };
}

function valueAt(body: unknown, pointer: string): unknown {
  let node = body;
  for (const part of pointer.split('/').slice(1)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

async function readText(ctx: Context, maxBytes: number): Promise<string> {
  const tooLarge = () =>
    new ApiError(
      413,
      'payload_too_large',
      `the body exceeds ${maxBytes} bytes; split it into several requests`,
      {},
      { Connection: 'close' },
    );
  const declared = ctx.get('Content-Length');
  if (declared !== '' && Number(declared) > maxBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(
      Buffer.concat(chunks, length),
    );
  } catch {
    throw new ApiError(
      400,
      'invalid_encoding',
      'the body is not valid UTF-8; send it encoded as UTF-8',
    );
  }
}

function checkResponse(route: CompiledRoute, response: ApiResponse): void {
  const declared = route.spec.responses[response.status];
  if (declared === undefined) {
    throw new Error(
      `${route.spec.operationId} returned status ${response.status}, which it does not declare`,
    );
  }
  const validate = route.responses.get(response.status);
  if (validate && !validate(response.body)) {
    throw new Error(
      `${route.spec.operationId} ${response.status} breaks ${declared.schema}: ${JSON.stringify(validate.errors?.slice(0, 3))}`,
    );
  }
}

function send(ctx: Context, response: ApiResponse): void {
  ctx.status = response.status;
  ctx.set('Cache-Control', 'no-store');
  for (const [name, value] of Object.entries(response.headers ?? {})) ctx.set(name, value);
  if (response.body === undefined) {
    ctx.body = null;
    return;
  }
  if (response.mediaType !== undefined) {
    ctx.type = response.mediaType;
    ctx.body = response.body as string;
    return;
  }
  ctx.type = 'application/json';
  ctx.body = JSON.stringify(response.body);
}

function sendError(
  ctx: Context,
  error: unknown,
  options: ApiRouterOptions,
  errorValidator: ValidateFunction,
): void {
  let apiError: ApiError;
  if (error instanceof ApiError) {
    apiError = error;
  } else if (error instanceof StoreError) {
    options.logger.error({ err: error, path: ctx.path }, 'API request failed: store unavailable');
    apiError = new ApiError(
      503,
      'unavailable',
      'the store is unavailable; retry shortly',
      {},
      { 'Retry-After': '5' },
    );
  } else {
    throw error;
  }
  const body = apiError.toBody();
  if (options.checkResponses && !errorValidator(body)) {
    throw new Error(`error body breaks the Error schema: ${JSON.stringify(errorValidator.errors)}`);
  }
  ctx.status = apiError.status;
  ctx.set('Cache-Control', 'no-store');
  for (const [name, value] of Object.entries(apiError.headers)) ctx.set(name, value);
  ctx.type = 'application/json';
  ctx.body = JSON.stringify(body);
}
