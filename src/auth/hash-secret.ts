/**
 * Prints hashes for the principals file.
 *
 *   node dist/auth/hash-secret.js            reads a password from standard input
 *   node dist/auth/hash-secret.js --key ID   creates an API key with that id
 *
 * The password is read from standard input so that it stays out of the
 * shell history and the process list.
 */
import { parseArgs } from 'node:util';

import { generateApiKey, hashSecret } from './secrets.js';

const HELP = `Usage: scripts/hash-secret [--key KEY_ID]

Without options, reads a password from standard input (one line) and prints
its scrypt hash for the "password" key of a principal.

  --key KEY_ID   create a random API key with this id; prints the bearer token
                 to hand to the client once, and the hash for "apiKeys"
  -h, --help     show this help
`;

async function readLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { key: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.key !== undefined) {
    const { token, hash } = await generateApiKey(values.key);
    process.stdout.write(
      `token: ${token}\napiKeys entry: { id: ${values.key}, hash: "${hash}" }\n`,
    );
    return 0;
  }
  if (process.stdin.isTTY) process.stderr.write('password (end with Enter, then Ctrl-D): ');
  process.stdout.write(`${await hashSecret(await readLine())}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`hash-secret failed: ${(error as Error).message}\n${HELP}`);
    process.exit(1);
  },
);
