/** Principals and their hashed credentials, as read from the principals file. */
import { readFileSync } from 'node:fs';

import { parse } from 'yaml';

import { loadSchemaValidator } from '../app/schemas.js';
import { isSecretHash } from './secrets.js';
import type { Role } from './roles.js';

export interface ApiKeyConfig {
  /** The part of the bearer token before the dot. */
  id: string;
  /** scrypt hash of the part after the dot. */
  hash: string;
}

export interface PrincipalConfig {
  name: string;
  /** Role on the analyst REST API; absent means no access to it. */
  role?: Role;
  /** scrypt hash of the HTTP Basic password; absent disables HTTP Basic for the principal. */
  password?: string;
  apiKeys: ApiKeyConfig[];
}

/**
 * Reads and checks a principals file (YAML or JSON, which is YAML too).
 * Problems are appended to `problems`, each naming the file and the path in it.
 */
export function readPrincipalsFile(file: string, problems: string[]): PrincipalConfig[] {
  let data: unknown;
  try {
    data = parse(readFileSync(file, 'utf8'), { uniqueKeys: true });
  } catch (error) {
    problems.push(`${file}: principals file could not be read: ${(error as Error).message}`);
    return [];
  }

  const validate = loadSchemaValidator('principals.schema.json');
  if (!validate(data)) {
    for (const error of validate.errors ?? []) {
      const isHash = /\/(password|hash)$/.test(error.instancePath);
      const detail =
        error.keyword === 'additionalProperties'
          ? `unknown key ${JSON.stringify(error.params.additionalProperty)}`
          : error.keyword === 'pattern' && isHash
            ? 'is not an scrypt hash; produce one with scripts/hash-secret (never put the secret itself here)'
            : (error.message ?? 'is invalid');
      problems.push(`${file} ${error.instancePath || '/'}: ${detail}`);
    }
    return [];
  }

  const principals = (data as { principals: PrincipalConfig[] }).principals.map((raw) => ({
    name: raw.name,
    ...(raw.role === undefined ? {} : { role: raw.role }),
    ...(raw.password === undefined ? {} : { password: raw.password }),
    apiKeys: raw.apiKeys ?? [],
  }));

  const names = new Set<string>();
  const keyIds = new Set<string>();
  principals.forEach((principal, index) => {
    const where = `${file} /principals/${index}`;
    if (names.has(principal.name)) {
      problems.push(`${where}/name: principal ${JSON.stringify(principal.name)} is defined twice`);
    }
    names.add(principal.name);
    if (principal.password !== undefined && !isSecretHash(principal.password)) {
      problems.push(
        `${where}/password: scrypt parameters are invalid; hash it again with scripts/hash-secret`,
      );
    }
    principal.apiKeys.forEach((key, keyIndex) => {
      if (keyIds.has(key.id)) {
        problems.push(
          `${where}/apiKeys/${keyIndex}/id: key id ${JSON.stringify(key.id)} is used twice`,
        );
      }
      keyIds.add(key.id);
      if (!isSecretHash(key.hash)) {
        problems.push(
          `${where}/apiKeys/${keyIndex}/hash: scrypt parameters are invalid; create the key again with scripts/hash-secret`,
        );
      }
    });
  });
  return principals;
}
