/** A hub with the REST API on a temporary store, and a client for it. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { generateApiKey } from '../../src/auth/index.js';
import { loadConfig } from '../../src/app/config.js';
import { startHub, type Hub } from '../../src/app/hub.js';
import { createLogger } from '../../src/app/logger.js';
import type { TestStore } from '../helpers/stores.js';

export const IP_COLLECTION = '6a1d0c52-4b1e-4c2a-9d43-1f7e2b3c4d01';

export interface ApiHub {
  hub: Hub;
  dir: string;
  /** Bearer token of `root`, an admin from the principals file. */
  adminToken: string;
  /** Bearer token of `partner-a`, a principal of the file without a role. */
  partnerToken: string;
  stop(): Promise<void>;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  /** A raw body, sent as is. */
  raw?: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  text: string;
  /** The JSON body, when there is one. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read bodies of many shapes
  json: any;
}

export async function call(
  hub: Hub,
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<CallResult> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body: string | Buffer | undefined;
  if (options.raw !== undefined) body = options.raw;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const response = await fetch(`${hub.url}/api/v1${path}`, { method, headers, body });
  const text = await response.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** The collection file of the tests: one text-list source served by `feedUrl`. */
export function ipCollectionYaml(feedUrl: string): string {
  return `id: ${IP_COLLECTION}
alias: blocklist
title: Test blocklist
sources:
  - id: list
    kind: text-list
    url: ${feedUrl}
    interval: 1h
    valueType: auto
# The tests use documentation addresses, which the bogons list would keep out.
allowList:
  builtin: [public-dns]
views:
  - name: ip
    kind: edl-ip
  - name: domain
    kind: edl-domain
`;
}

/** Starts a hub whose principals file holds an admin and a partner, with the given collection files. */
export async function startApiHub(
  testStore: TestStore,
  collections: Record<string, string>,
): Promise<ApiHub> {
  const dir = mkdtempSync(join(tmpdir(), 'feedhub-api-'));
  mkdirSync(join(dir, 'collections'));
  for (const [name, text] of Object.entries(collections)) {
    writeFileSync(join(dir, 'collections', name), text);
  }
  const admin = await generateApiKey('root-key');
  const partner = await generateApiKey('partner-key');
  writeFileSync(
    join(dir, 'principals.yaml'),
    `principals:
  - name: root
    role: admin
    apiKeys:
      - id: root-key
        hash: "${admin.hash}"
  - name: partner-a
    apiKeys:
      - id: partner-key
        hash: "${partner.hash}"
`,
  );
  const config = loadConfig({
    ...testStore.env(),
    FEEDHUB_PORT: '0',
    FEEDHUB_DATA_DIR: join(dir, 'data'),
    FEEDHUB_COLLECTIONS_DIR: join(dir, 'collections'),
    FEEDHUB_PRINCIPALS_FILE: join(dir, 'principals.yaml'),
    FEEDHUB_LOG_LEVEL: 'silent',
  });
  const hub = await startHub(config, createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'), {
    processEveryMs: 200,
    lockLifetimeMs: 5000,
    viewDebounceMs: 50,
    catalogRefreshMs: 500,
    checkApiResponses: true,
  });
  return {
    hub,
    dir,
    adminToken: admin.token,
    partnerToken: partner.token,
    async stop() {
      await hub.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Creates a user of a role with a key through the API and returns the token. */
export async function userToken(
  api: ApiHub,
  name: string,
  role: 'admin' | 'analyst' | 'read-only',
): Promise<string> {
  const created = await call(api.hub, 'POST', '/principals', {
    token: api.adminToken,
    body: { name, kind: 'user', role },
  });
  if (created.status !== 201) throw new Error(`principal ${name} not created: ${created.text}`);
  const key = await call(api.hub, 'POST', `/principals/${name}/keys`, {
    token: api.adminToken,
    body: { label: 'test' },
  });
  if (key.status !== 201) throw new Error(`key of ${name} not created: ${key.text}`);
  return key.json.token as string;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
