import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

/** The schemas folder at the top of the repository, from `src/app` and from `dist/app` alike. */
export const SCHEMAS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schemas');

// One ajv instance compiles every schema once; allErrors makes a config check report every problem.
const ajv = new Ajv2020({
  allErrors: true,
  strict: true,
  strictRequired: false,
  allowUnionTypes: true,
  // Sources pick their keys by `kind`; see the `discriminator` keywords of collection.schema.json.
  discriminator: true,
});
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
addFormats(ajv);

const compiled = new Map<string, ValidateFunction>();

/** Returns the compiled validator of a schema file in `schemas/`, compiling it on first use. */
export function loadSchemaValidator(name: string): ValidateFunction {
  let validate = compiled.get(name);
  if (!validate) {
    const schema = JSON.parse(readFileSync(join(SCHEMAS_DIR, name), 'utf8')) as object;
    validate = ajv.compile(schema);
    compiled.set(name, validate);
  }
  return validate;
}
