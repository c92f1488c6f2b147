/**
 * Checks the objects of an add-objects request against the STIX 2.1 JSON
 * Schemas in `schemas/stix/` and derives what the store keeps of each.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

import { StixError, parseTimestamp, toStoredVersion } from '../stix/index.js';
import type { ObjectVersionInput, StatusDetail } from '../store/index.js';

/** `schemas/stix` at the top of the repository, from `src/taxii` and from `dist/taxii` alike. */
const STIX_SCHEMAS_DIR = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'schemas',
  'stix',
);

/** At most this many schema errors are named in one failure message. */
const MAX_ERRORS = 5;

let validator: ValidateFunction | undefined;

/** Compiles `object.json` and the schemas it refers to, once per process. */
function objectValidator(): ValidateFunction {
  if (validator !== undefined) return validator;
  const read = (name: string) =>
    JSON.parse(readFileSync(join(STIX_SCHEMAS_DIR, `${name}.json`), 'utf8')) as object;
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
  ajv.addSchema(read('common'));
  ajv.addSchema(read('marking-definition'));
  validator = ajv.compile(read('object'));
  return validator;
}

/** An object that passed validation, with its version as a status resource names it. */
export interface AcceptedObject {
  input: ObjectVersionInput;
  /** `modified`, else `created`, as written in the object; empty when it has neither. */
  versionText: string;
}

export type ObjectCheck =
  { ok: true; object: AcceptedObject } | { ok: false; failure: StatusDetail };

function describeErrors(validate: ValidateFunction): string {
  const errors = validate.errors ?? [];
  // `if` failures only repeat the errors of their `then` branch.
  const useful = errors.filter((error) => error.keyword !== 'if');
  const messages = useful.slice(0, MAX_ERRORS).map((error) => {
    const where = error.instancePath === '' ? 'the object' : error.instancePath;
    const detail =
      error.keyword === 'required'
        ? `is missing required property ${JSON.stringify(error.params.missingProperty)}`
        : error.keyword === 'propertyNames'
          ? `has a property name that STIX 2.1 does not allow (a-z, 0-9 and _, at least 3 characters)`
          : (error.message ?? 'is invalid');
    return `${where} ${detail}`;
  });
  const more = useful.length > MAX_ERRORS ? ` (and ${useful.length - MAX_ERRORS} more)` : '';
  return `invalid STIX 2.1 object: ${messages.join('; ')}${more}`;
}

function textOf(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * Checks one element of an envelope's `objects` list. A failure names the
 * object's id and version as far as they can be read, and says what is wrong.
 */
export function checkObject(value: unknown): ObjectCheck {
  const fields =
    typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  const id = textOf(fields['id']);
  const versionText = textOf(fields['modified']) || textOf(fields['created']);
  const fail = (message: string): ObjectCheck => ({
    ok: false,
    failure: { id, version: versionText, message },
  });

  if (fields !== value) return fail('invalid STIX object: expected a JSON object');
  if (fields['type'] === 'bundle') {
    return fail(
      'a bundle cannot be an object of an envelope; send the objects of the bundle instead',
    );
  }
  const validate = objectValidator();
  if (!validate(value)) return fail(describeErrors(validate));

  const created = textOf(fields['created']);
  const modified = textOf(fields['modified']);
  if (created !== '' && modified !== '' && parseTimestamp(modified) < parseTimestamp(created)) {
    return fail(`invalid STIX object: modified ${modified} is earlier than created ${created}`);
  }

  try {
    return { ok: true, object: { input: toStoredVersion(JSON.stringify(value)), versionText } };
  } catch (error) {
    if (error instanceof StixError) return fail(error.message);
    throw error;
  }
}
