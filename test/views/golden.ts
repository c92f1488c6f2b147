/**
 * Golden files of the view formats, in `test/views/golden/`. A test compares
 * a rendered body with its file; `UPDATE_GOLDEN=1 npm test -- test/views`
 * rewrites the files instead, to be reviewed in the diff before committing.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// import.meta.dirname is not set under jest's ESM support.
const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), 'golden');

/** Returns the stored golden text of `name`, writing `actual` first when updating or missing. */
export function golden(name: string, actual: string): string {
  const file = join(GOLDEN_DIR, name);
  if (process.env['UPDATE_GOLDEN'] === '1' || !existsSync(file)) {
    if (process.env['CI'] !== undefined && !existsSync(file)) {
      throw new Error(`golden file ${name} is missing; run UPDATE_GOLDEN=1 npm test and commit it`);
    }
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
  }
  return readFileSync(file, 'utf8');
}
