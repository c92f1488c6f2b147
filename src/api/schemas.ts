/**
 * The JSON Schemas of the REST API: every file of `schemas/api/` and the
 * collection definition schema, compiled in one ajv instance. Routes name a
 * schema as `<file stem>#/$defs/<Name>` (or `<file stem>` for a root); the
 * OpenAPI document is built from the same files.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Ajv2020, type AnySchema, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

import { SCHEMAS_DIR } from '../app/schemas.js';

/** The base of every `$id` in `schemas/`. */
export const SCHEMA_BASE = 'https://feedhub.invalid/schemas/';

export interface SchemaFile {
  /** `collection` for schemas/collection.schema.json, `api/collections` for schemas/api/collections.schema.json. */
  stem: string;
  schema: Record<string, unknown>;
}

/** Reads the schema files the API uses. */
export function readApiSchemaFiles(): SchemaFile[] {
  const files: SchemaFile[] = [
    { stem: 'collection', schema: readJson(join(SCHEMAS_DIR, 'collection.schema.json')) },
  ];
  const dir = join(SCHEMAS_DIR, 'api');
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith('.schema.json')) continue;
    files.push({
      stem: `api/${name.slice(0, -'.schema.json'.length)}`,
      schema: readJson(join(dir, name)),
    });
  }
  return files;
}

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;

/** Compiles schema references of routes, once each. */
export class ApiSchemas {
  private readonly ajv: Ajv2020;
  /** Query parameters arrive as text: this instance coerces them to the declared types. */
  private readonly queryAjv: Ajv2020;
  private readonly compiled = new Map<string, ValidateFunction>();
  readonly files: SchemaFile[];

  constructor() {
    this.files = readApiSchemaFiles();
    const options = {
      allErrors: true,
      strict: true,
      strictRequired: false,
      allowUnionTypes: true,
      discriminator: true,
    } as const;
    this.ajv = new Ajv2020(options);
    this.queryAjv = new Ajv2020({ ...options, coerceTypes: 'array' });
    addFormats(this.ajv);
    addFormats(this.queryAjv);
    for (const file of this.files) this.ajv.addSchema(file.schema as AnySchema);
  }

  /** Returns the validator of a reference such as `api/collections#/$defs/Collection`. */
  validator(ref: string): ValidateFunction {
    let validate = this.compiled.get(ref);
    if (validate === undefined) {
      const [stem, fragment] = ref.split('#');
      const id = `${SCHEMA_BASE}${stem}.schema.json${fragment ? `#${fragment}` : ''}`;
      const found = this.ajv.getSchema(id);
      if (found === undefined) throw new Error(`schema ${ref} is not defined in schemas/`);
      validate = found;
      this.compiled.set(ref, validate);
    }
    return validate;
  }

  /** Compiles an inline schema of query parameters, which coerces text to the declared types. */
  queryValidator(schema: Record<string, unknown>): ValidateFunction {
    return this.queryAjv.compile(schema);
  }
}

/** Returns the first error of each instance path, the most useful one for a person. */
export function firstErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  const seen = new Set<string>();
  const out: ErrorObject[] = [];
  for (const error of errors) {
    // The branches of a oneOf or anyOf explain nothing that its own message does not.
    if (/\/(oneOf|anyOf)\/\d+\//.test(error.schemaPath) && errors.length > 1) continue;
    const key = `${error.instancePath}\u0000${error.keyword === 'additionalProperties' ? String(error.params.additionalProperty) : ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(error);
  }
  return out.length > 0 ? out : errors.slice(0, 1);
}

/** Describes one schema error as a field and a sentence for a person. */
export function describeSchemaError(error: ErrorObject): { field: string; message: string } {
  const field = error.instancePath || '/';
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(error.params.additionalProperty);
      return {
        field: `${error.instancePath}/${key}`,
        message: `unknown field ${JSON.stringify(key)}; remove it or fix its spelling`,
      };
    }
    case 'required':
      return {
        field: `${error.instancePath}/${String(error.params.missingProperty)}`,
        message: `field ${JSON.stringify(String(error.params.missingProperty))} is required`,
      };
    case 'enum':
      return {
        field,
        message: `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      };
    case 'type':
      return { field, message: `must be of type ${String(error.params.type)}` };
    default:
      return { field, message: error.message ?? 'is invalid' };
  }
}
