import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

/** `schemas/stix` at the top of the repository, from `src/stix` and from `dist/stix` alike. */
const STIX_SCHEMAS_DIR = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'schemas',
  'stix',
);

/** Object types that the hub authors, each with a schema file of the same name. */
export const AUTHORED_TYPES = ['indicator', 'identity', 'marking-definition'] as const;

export type ValidationResult = { ok: true } | { ok: false; errors: string[] };

let validators: Map<string, ValidateFunction> | undefined;

function readSchema(name: string): object {
  return JSON.parse(readFileSync(join(STIX_SCHEMAS_DIR, `${name}.json`), 'utf8')) as object;
}

/** Compiles the schemas on first use, once per process. */
function loadValidators(): Map<string, ValidateFunction> {
  if (validators) return validators;
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    strictRequired: false,
    allowUnionTypes: true,
  });
  ajv.addSchema(readSchema('common'));
  validators = new Map(AUTHORED_TYPES.map((type) => [type, ajv.compile(readSchema(type))]));
  return validators;
}

/**
 * Validates a hub-authored STIX object (JSON text or parsed) against the
 * schema of its type. Only the types in `AUTHORED_TYPES` have a schema;
 * any other type is reported as invalid.
 */
export function validateStixObject(object: string | object): ValidationResult {
  const parsed: unknown = typeof object === 'string' ? JSON.parse(object) : object;
  const type = (parsed as { type?: unknown } | null)?.type;
  const validate = typeof type === 'string' ? loadValidators().get(type) : undefined;
  if (!validate) return { ok: false, errors: [`no schema for STIX type ${JSON.stringify(type)}`] };

  if (validate(parsed)) return { ok: true };
  const errors = (validate.errors ?? []).map(
    (error) => `${error.instancePath || '/'} ${error.message ?? 'is invalid'}`,
  );
  return { ok: false, errors };
}
