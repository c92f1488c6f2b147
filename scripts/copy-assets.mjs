// Copies the data files that src/ ships beside its code (the built-in
// allow-lists) into dist/, since tsc copies only what it compiles.
//
//   node scripts/copy-assets.mjs [OUT_DIR]    default: dist
import { cpSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = resolve(root, process.argv[2] ?? 'dist');
const ASSETS = ['processing/data'];

for (const asset of ASSETS) {
  cpSync(join(root, 'src', asset), join(outDir, asset), { recursive: true });
}
