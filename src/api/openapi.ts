/**
 * The OpenAPI 3.1 document of the REST API, built from the route
 * declarations and the schema files that the server validates with, so
 * that the two cannot drift apart.
 */
import { API_PREFIX, frameworkErrors, type RouteSpec } from './route.js';
import { SCHEMA_BASE, type SchemaFile } from './schemas.js';

const STATUS_TEXT: Record<number, string> = {
  400: 'The request is malformed: a parameter or the body breaks its schema.',
  401: 'Credentials are missing, invalid, expired or revoked.',
  403: "The principal's role does not allow this.",
  404: 'The resource does not exist.',
  405: 'The method is not allowed on this path.',
  409: 'A conflict: the resource exists already, or the revision sent is stale.',
  413: 'The body is too large.',
  415: 'The Content-Type or Content-Encoding is not accepted.',
  422: 'The body is well formed but cannot be applied.',
  429: 'Too many failed logins; retry after the time in Retry-After.',
  431:
    "The request line and headers exceed Node's default limit of 16 KiB, and Node's HTTP server responds without a body. " +
    'A long query value of non-ASCII characters can exceed it, because each such character takes up to 12 bytes percent-encoded.',
  503: 'The store is unavailable.',
};

/** Errors that Node's HTTP server sends itself, without the JSON error body. */
const BODYLESS_ERRORS = new Set([431]);

/** Component name of a schema reference: `api/collections#/$defs/Collection` becomes `collections.Collection`. */
export function componentName(stem: string, def?: string): string {
  const base = stem.replace(/^api\//, '');
  return def === undefined ? base : `${base}.${def}`;
}

function componentRef(ref: string): { $ref: string } {
  const [stem, fragment] = ref.split('#');
  const def = fragment?.replace(/^\/\$defs\//, '');
  return { $ref: `#/components/schemas/${componentName(stem!, def || undefined)}` };
}

/** Finds the schema a `$ref` of a schema file points to, for reading its properties. */
type DefinitionLookup = (ref: string, stem: string) => Record<string, unknown> | undefined;

/** Rewrites the `$ref`s of a schema file to component references and drops `$id`/`$schema`. */
function rewrite(value: unknown, stem: string, lookup: DefinitionLookup): unknown {
  if (Array.isArray(value)) return value.map((item) => rewrite(item, stem, lookup));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    if (key === '$id' || key === '$schema' || key === '$defs') continue;
    if (key === '$ref' && typeof child === 'string') {
      out.$ref = resolveRef(child, stem).ref;
      continue;
    }
    out[key] = rewrite(child, stem, lookup);
  }
  const mapping = discriminatorMapping(value as Record<string, unknown>, stem, lookup);
  if (mapping !== undefined) out.discriminator = { ...(out.discriminator as object), mapping };
  return out;
}

/**
 * Builds the `mapping` of a discriminator from the `const` (or `enum`) of
 * the property in each `oneOf` branch. ajv rejects `mapping`, so the schema
 * files leave it out; without it OpenAPI tools read the discriminator value
 * as a component name (`collection.textListSource`, not `text-list`).
 */
function discriminatorMapping(
  schema: Record<string, unknown>,
  stem: string,
  lookup: DefinitionLookup,
): Record<string, string> | undefined {
  const discriminator = schema.discriminator as
    { propertyName?: unknown; mapping?: unknown } | undefined;
  const property = discriminator?.propertyName;
  if (
    typeof property !== 'string' ||
    discriminator?.mapping !== undefined ||
    !Array.isArray(schema.oneOf)
  ) {
    return undefined;
  }
  const mapping: Record<string, string> = {};
  for (const branch of schema.oneOf as { $ref?: unknown }[]) {
    if (typeof branch.$ref !== 'string') return undefined;
    const target = lookup(branch.$ref, stem);
    const tag = (
      target?.properties as Record<string, { const?: unknown; enum?: unknown[] }> | undefined
    )?.[property];
    const values = tag?.const !== undefined ? [tag.const] : (tag?.enum ?? []);
    if (values.length === 0) {
      throw new Error(
        `discriminator ${property}: ${branch.$ref} in schemas/${stem} has no const or enum for it`,
      );
    }
    for (const value of values) mapping[String(value)] = resolveRef(branch.$ref, stem).ref;
  }
  return mapping;
}

function resolveRef(
  ref: string,
  stem: string,
): { ref: string; stem: string; def: string | undefined } {
  const [target, fragment = ''] = ref.split('#');
  let targetStem = stem;
  if (target !== '' && target !== undefined) {
    const absolute = new URL(target, `${SCHEMA_BASE}${stem}.schema.json`).href;
    targetStem = absolute.slice(SCHEMA_BASE.length).replace(/\.schema\.json$/, '');
  }
  const def = fragment.replace(/^\/\$defs\//, '') || undefined;
  return { ref: `#/components/schemas/${componentName(targetStem, def)}`, stem: targetStem, def };
}

export interface OpenApiOptions {
  routes: readonly RouteSpec[];
  files: readonly SchemaFile[];
  /** Public base URL of the hub, without a trailing slash. */
  publicUrl: string;
  version: string;
}

export function buildOpenApi(options: OpenApiOptions): Record<string, unknown> {
  const schemas: Record<string, unknown> = {};
  const lookup: DefinitionLookup = (ref, stem) => {
    const target = resolveRef(ref, stem);
    const file = options.files.find((f) => f.stem === target.stem)?.schema;
    if (target.def === undefined) return file;
    return (file?.$defs as Record<string, Record<string, unknown>> | undefined)?.[target.def];
  };
  for (const file of options.files) {
    const defs = (file.schema.$defs ?? {}) as Record<string, unknown>;
    for (const [name, def] of Object.entries(defs)) {
      schemas[componentName(file.stem, name)] = rewrite(def, file.stem, lookup);
    }
    const root = rewrite(file.schema, file.stem, lookup) as Record<string, unknown>;
    // A file that only gathers definitions has no root schema of its own.
    if (Object.keys(root).some((key) => !['title', 'description'].includes(key))) {
      schemas[componentName(file.stem)] = root;
    }
  }

  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of options.routes) {
    const parameters = [
      ...Object.entries(route.params ?? {}).map(([name, p]) => ({
        name,
        in: 'path',
        required: true,
        description: p.description,
        schema: p.schema,
      })),
      ...Object.entries(route.query ?? {}).map(([name, p]) => ({
        name,
        in: 'query',
        required: p.required === true,
        description: p.description,
        schema: p.schema,
        ...(p.schema.type === 'array' ? { style: 'form', explode: true } : {}),
      })),
    ];
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      responses[status] = {
        description: response.description,
        ...(response.headers
          ? {
              headers: Object.fromEntries(
                Object.entries(response.headers).map(([name, description]) => [
                  name,
                  { description, schema: { type: 'string' } },
                ]),
              ),
            }
          : {}),
        ...(response.schema === undefined && response.mediaType === undefined
          ? {}
          : {
              content: {
                [response.mediaType ?? 'application/json']: {
                  schema:
                    response.schema === undefined
                      ? { type: 'string' }
                      : componentRef(response.schema),
                },
              },
            }),
      };
    }
    for (const status of frameworkErrors(route)) {
      responses[String(status)] ??= {
        description: STATUS_TEXT[status] ?? 'An error.',
        ...(BODYLESS_ERRORS.has(status)
          ? {}
          : {
              content: { 'application/json': { schema: componentRef('api/common#/$defs/Error') } },
            }),
      };
    }
    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      tags: [route.tag],
      'x-feedhub-role': route.role,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.body
        ? {
            requestBody: {
              required: true,
              ...(route.body.description ? { description: route.body.description } : {}),
              content: Object.fromEntries(
                Object.entries(route.body.content).map(([type, ref]) => [
                  type,
                  { schema: ref === 'text' ? { type: 'string' } : componentRef(ref) },
                ]),
              ),
            },
          }
        : {}),
      responses,
    };
    (paths[route.path] ??= {})[route.method] = operation;
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'feedhub analyst API',
      version: options.version,
      description:
        'Curate collections, sources, allow-lists and manual indicators, search indicators and read the audit log. ' +
        'Every operation names the least role it needs in x-feedhub-role (read-only < analyst < admin).',
    },
    servers: [{ url: `${options.publicUrl}${API_PREFIX}` }],
    security: [{ apiKey: [] }, { basic: [] }],
    tags: [...new Set(options.routes.map((r) => r.tag))].map((name) => ({ name })),
    paths,
    components: {
      schemas,
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An API key created by the hub, sent as "Authorization: Bearer KEYID.SECRET".',
        },
        basic: { type: 'http', scheme: 'basic' },
      },
    },
  };
}
