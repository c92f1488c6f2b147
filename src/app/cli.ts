/**
 * The operator's command line, `scripts/feedhub`. Its commands are listed in
 * HELP. create-admin and check-config open the store of the settings, and
 * import and export call a running hub over its REST API.
 */
import { createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { createKey } from '../api/index.js';
import { ConfigError, loadConfig, resolveCollectionDocument } from './config.js';
import { createLogger } from './logger.js';
import { openStore } from './store.js';
import { RecordConflictError } from '../store/index.js';

const HELP = `Usage: scripts/feedhub COMMAND [options]

Commands:
  create-admin NAME [--expires-in 90d]
        Create the user NAME with the admin role (if missing) and a new API key
        for it. Prints the bearer token once; the hub keeps only its hash.
  import COLLECTION FILE [--ttl 30d] [--confidence N] [--tlp LEVEL] [--comment TEXT]
        Add the values of FILE to COLLECTION as manual entries, through the API
        of a running hub, with a progress bar. FILE is a text list (one value per
        line), a CSV with a "value" column (.csv) or a STIX bundle (.json).
        Exits with status 3 when some values were not added.
  export COLLECTION
        Print the collection's definition as YAML, through the API.
  check-config
        Check the environment settings, the collection files and the definitions
        stored in the store, and report every problem.

Options for import and export:
  --url URL      base URL of the hub (default FEEDHUB_URL or http://127.0.0.1:8080)
  --key TOKEN    API key (default FEEDHUB_API_KEY)

Settings come from the same environment variables as the hub; see docs/configuration.md.
`;

/** Values per request of an import: small enough for the API's body limit, large enough to be quick. */
const IMPORT_BATCH = 5000;

function fail(message: string): never {
  throw new CliError(message);
}

class CliError extends Error {}

export async function runCli(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        key: { type: 'string' },
        ttl: { type: 'string' },
        confidence: { type: 'string' },
        tlp: { type: 'string' },
        comment: { type: 'string' },
        'expires-in': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  const [command, ...rest] = args.positionals;
  if (args.values.help || command === undefined) {
    process.stdout.write(HELP);
    return command === undefined && !args.values.help ? 2 : 0;
  }
  try {
    switch (command) {
      case 'create-admin':
        return await createAdmin(rest, args.values['expires-in'], env);
      case 'import':
        return await importFile(rest, args.values, env);
      case 'export':
        return await exportCollection(rest, args.values, env);
      case 'check-config':
        return await checkConfig(env);
      default:
        process.stderr.write(`unknown command ${JSON.stringify(command)}\n\n${HELP}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof CliError || error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

async function createAdmin(
  rest: string[],
  expiresIn: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const [name] = rest;
  if (name === undefined || !/^[A-Za-z0-9._@-]{1,64}$/.test(name)) {
    fail('create-admin needs a NAME of 1 to 64 letters, digits, ".", "_", "@" or "-"');
  }
  let expiresAt: number | undefined;
  if (expiresIn !== undefined) {
    const match = /^([1-9][0-9]{0,5})([mhd])$/.exec(expiresIn);
    if (!match)
      fail(`--expires-in ${JSON.stringify(expiresIn)} is not a duration; use e.g. 90d, 12h or 30m`);
    expiresAt =
      (Date.now() +
        Number(match[1]) * { m: 60e3, h: 3600e3, d: 86400e3 }[match[2] as 'm' | 'h' | 'd']) *
      1000;
  }
  const config = loadConfig(env);
  const opened = await openStore(config.settings, createLogger('silent'));
  const { store } = opened;
  try {
    await store.init();
    if (config.principals.some((p) => p.name === name)) {
      fail(
        `principal ${JSON.stringify(name)} is defined in the principals file; choose another name`,
      );
    }
    const at = Date.now() * 1000;
    const existing = await store.getRecord('principal', name);
    if (existing === undefined) {
      try {
        await store.putRecord(
          'principal',
          name,
          { kind: 'user', role: 'admin' },
          { at, expectedRevision: 'absent' },
        );
      } catch (error) {
        if (!(error instanceof RecordConflictError)) throw error;
      }
    } else if ((existing.body as { role?: string }).role !== 'admin') {
      fail(
        `principal ${JSON.stringify(name)} exists and is not an admin; an admin can change its role through the API`,
      );
    }
    const { record, token } = await createKey({ store }, name, {
      at,
      label: 'created by scripts/feedhub create-admin',
      ...(expiresAt === undefined ? {} : { expiresAt }),
    });
    await store.appendAudit({
      at,
      actor: 'system',
      action: existing === undefined ? 'principal.create' : 'api-key.create',
      targetKind: existing === undefined ? 'principal' : 'api-key',
      targetId: existing === undefined ? name : record.id,
      details: { via: 'command line', role: 'admin', key: record.id },
    });
    process.stderr.write(
      `Admin ${name} ${existing === undefined ? 'created' : 'exists'}; new API key ${record.id}. The token is shown once:\n`,
    );
    process.stdout.write(`${token}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

interface ApiTarget {
  url: string;
  key: string;
}

function apiTarget(values: { url?: string; key?: string }, env: NodeJS.ProcessEnv): ApiTarget {
  const url = (values.url ?? env.FEEDHUB_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const key = values.key ?? env.FEEDHUB_API_KEY;
  if (key === undefined || key === '')
    fail(
      'an API key is needed: pass --key TOKEN or set FEEDHUB_API_KEY (create one with create-admin)',
    );
  return { url, key };
}

async function request(
  target: ApiTarget,
  method: string,
  path: string,
  body?: { type: string; text: string },
): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(`${target.url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${target.key}`,
        ...(body ? { 'content-type': body.type } : {}),
      },
      ...(body ? { body: body.text } : {}),
    });
  } catch (error) {
    fail(
      `connecting to the hub at ${target.url} failed (${(error as Error).message}); start the hub or pass --url`,
    );
  }
  if (!response.ok) {
    const text = await response.text();
    let message = text;
    try {
      message = (JSON.parse(text) as { message: string }).message;
    } catch {
      // Not a JSON error body; show it as it came.
    }
    fail(`${method} ${path} failed with ${response.status}: ${message}`);
  }
  return response;
}

/** Draws a progress bar on standard error when it is a terminal, else a line per tenth. */
class Progress {
  private lastTenth = -1;

  constructor(private readonly total: number) {}

  update(done: number, extra: string): void {
    const share = this.total === 0 ? 1 : Math.min(1, done / this.total);
    if (process.stderr.isTTY) {
      const width = 30;
      const filled = Math.round(share * width);
      process.stderr.write(
        `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round(share * 100)}% ${extra}`,
      );
    } else if (Math.floor(share * 10) > this.lastTenth) {
      this.lastTenth = Math.floor(share * 10);
      process.stderr.write(`${Math.round(share * 100)}% ${extra}\n`);
    }
  }

  end(): void {
    if (process.stderr.isTTY) process.stderr.write('\n');
  }
}

async function importFile(
  rest: string[],
  values: {
    url?: string;
    key?: string;
    ttl?: string;
    confidence?: string;
    tlp?: string;
    comment?: string;
  },
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const [collection, file] = rest;
  if (collection === undefined || file === undefined) fail('import needs COLLECTION and FILE');
  let size: number;
  try {
    size = statSync(file).size;
  } catch (error) {
    fail(`reading ${file} failed: ${(error as Error).message}`);
  }
  const target = apiTarget(values, env);
  const query = new URLSearchParams();
  for (const key of ['ttl', 'confidence', 'tlp', 'comment'] as const) {
    if (values[key] !== undefined) query.set(key, values[key]!);
  }
  const path = `/collections/${encodeURIComponent(collection)}/manual/bulk${query.size > 0 ? `?${query}` : ''}`;
  const totals = { added: 0, updated: 0, rejected: 0 };
  const send = async (type: string, text: string, firstLine: number) => {
    const response = await request(target, 'POST', path, { type, text });
    const result = (await response.json()) as {
      added: number;
      updated: number;
      rejected: { line?: number; input: string; reason: string }[];
    };
    totals.added += result.added;
    totals.updated += result.updated;
    totals.rejected += result.rejected.length;
    for (const reject of result.rejected.slice(0, 5)) {
      const line = reject.line === undefined ? '' : `line ${reject.line + firstLine - 1}: `;
      // Clears a progress bar drawn on the same terminal line first.
      const clear = process.stderr.isTTY ? '\r\x1b[K' : '';
      process.stderr.write(`${clear}  not added: ${line}${reject.input}: ${reject.reason}\n`);
    }
  };
  const progress = new Progress(size);
  const summary = () =>
    `${totals.added} added, ${totals.updated} updated, ${totals.rejected} not added`;

  if (/\.json$/i.test(file)) {
    // A bundle is sent in slices of objects, each a bundle of its own.
    const { readFileSync } = await import('node:fs');
    let bundle: unknown;
    try {
      bundle = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      fail(`${file} is not JSON: ${(error as Error).message}`);
    }
    const objects = Array.isArray(bundle) ? bundle : (bundle as { objects?: unknown[] }).objects;
    if (!Array.isArray(objects)) fail(`${file} is not a STIX bundle: it has no "objects" array`);
    const slices = new Progress(objects.length);
    for (let i = 0; i < objects.length; i += IMPORT_BATCH) {
      await send(
        'application/stix+json',
        JSON.stringify({
          type: 'bundle',
          id: 'bundle--00000000-0000-4000-8000-000000000000',
          objects: objects.slice(i, i + IMPORT_BATCH),
        }),
        1,
      );
      slices.update(Math.min(objects.length, i + IMPORT_BATCH), summary());
    }
    slices.end();
  } else {
    const csv = /\.csv$/i.test(file);
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    let header: string | undefined;
    let batch: string[] = [];
    let bytes = 0;
    let lineNumber = 0;
    let batchStart = 1;
    for await (const line of lines) {
      lineNumber += 1;
      bytes += Buffer.byteLength(line) + 1;
      if (csv && header === undefined) {
        header = line;
        batchStart = 2;
        continue;
      }
      batch.push(line);
      if (batch.length >= IMPORT_BATCH) {
        await send(
          csv ? 'text/csv' : 'text/plain',
          `${csv ? `${header}\n` : ''}${batch.join('\n')}\n`,
          csv ? batchStart - 1 : batchStart,
        );
        batch = [];
        batchStart = lineNumber + 1;
        progress.update(bytes, summary());
      }
    }
    if (batch.length > 0) {
      await send(
        csv ? 'text/csv' : 'text/plain',
        `${csv ? `${header}\n` : ''}${batch.join('\n')}\n`,
        csv ? batchStart - 1 : batchStart,
      );
    }
    progress.update(size, summary());
    progress.end();
  }
  process.stderr.write(`import finished: ${summary()}\n`);
  return totals.rejected > 0 ? 3 : 0;
}

async function exportCollection(
  rest: string[],
  values: { url?: string; key?: string },
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const [collection] = rest;
  if (collection === undefined) fail('export needs COLLECTION');
  const response = await request(
    apiTarget(values, env),
    'GET',
    `/collections/${encodeURIComponent(collection)}/export`,
  );
  process.stdout.write(await response.text());
  return 0;
}

async function checkConfig(env: NodeJS.ProcessEnv): Promise<number> {
  const config = loadConfig(env);
  const sources = config.collections.reduce(
    (n, c) => n + c.sources.filter((s) => s.kind !== 'manual').length,
    0,
  );
  process.stdout.write(
    `collection files are valid: ${config.collections.length} collections, ${sources} sources\n`,
  );
  const opened = await openStore(config.settings, createLogger('silent'));
  const { store } = opened;
  let problems = 0;
  try {
    await store.init();
    let after: string | undefined;
    let count = 0;
    for (;;) {
      const page = await store.listRecords('collection', {
        limit: 200,
        ...(after ? { after } : {}),
      });
      for (const record of page.items) {
        count += 1;
        const found: string[] = [];
        const document = (record.body as { document: { alias?: string } }).document;
        resolveCollectionDocument(
          document,
          `stored collection ${JSON.stringify(document.alias ?? record.id)}`,
          config.settings.collectionsDir,
          env,
          found,
        );
        for (const problem of found) process.stdout.write(`  ${problem}\n`);
        problems += found.length;
      }
      if (!page.more || page.items.length === 0) break;
      after = page.items[page.items.length - 1]!.id;
    }
    process.stdout.write(
      problems === 0
        ? `stored definitions are valid: ${count} collections\n`
        : `stored definitions: ${problems} problems in ${count} collections\n`,
    );
  } finally {
    await store.close();
  }
  return problems === 0 ? 0 : 1;
}

// Run when started as a program, not when imported by tests.
if (process.argv[1] !== undefined && /cli\.js$/.test(process.argv[1])) {
  runCli(process.argv.slice(2), process.env).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
