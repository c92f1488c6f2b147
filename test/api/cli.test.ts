import { jest } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { runCli } from '../../src/app/cli.js';
import { loadConfig } from '../../src/app/config.js';
import { startHub, type Hub } from '../../src/app/hub.js';
import { createLogger } from '../../src/app/logger.js';
import { FeedServer } from '../helpers/feed-server.js';
import { call, ipCollectionYaml } from './helpers.js';

jest.setTimeout(60_000);

/** Runs the command line in this process and returns its exit code and output. */
async function cli(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out.push(String(chunk));
    return true;
  });
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    err.push(String(chunk));
    return true;
  });
  try {
    const code = await runCli(args, env);
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
  }
}

describe('command line', () => {
  const feeds = new FeedServer();
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let hub: Hub | undefined;

  beforeAll(async () => {
    await feeds.start();
    feeds.set('/list.txt', { kind: 'body', body: '198.51.100.1\n' });
    dir = mkdtempSync(join(tmpdir(), 'feedhub-cli-'));
    mkdirSync(join(dir, 'collections'));
    writeFileSync(
      join(dir, 'collections', 'blocklist.yaml'),
      ipCollectionYaml(feeds.url('/list.txt')),
    );
    env = {
      FEEDHUB_PORT: '0',
      FEEDHUB_DATA_DIR: join(dir, 'data'),
      FEEDHUB_COLLECTIONS_DIR: join(dir, 'collections'),
      FEEDHUB_LOG_LEVEL: 'silent',
    };
    mkdirSync(join(dir, 'data'));
  });

  afterAll(async () => {
    await hub?.stop();
    await feeds.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('create-admin prints a key that works; import and export through the API', async () => {
    const created = await cli(['create-admin', 'first-admin', '--expires-in', '1d'], env);
    expect(created.code).toBe(0);
    const token = created.out.trim();
    expect(token).toMatch(/^fh_[a-z0-9]+\.[A-Za-z0-9_-]{20,}$/);
    expect(created.err).toContain('shown once');

    hub = await startHub(loadConfig(env), createLogger('silent'), {
      processEveryMs: 200,
      viewDebounceMs: 50,
    });
    const me = await call(hub, 'GET', '/me', { token });
    expect(me.json).toMatchObject({ name: 'first-admin', role: 'admin', origin: 'store' });

    const list = join(dir, 'import.txt');
    writeFileSync(
      list,
      Array.from({ length: 12_000 }, (_, i) => `10.${Math.floor(i / 250)}.${i % 250}.1`).join(
        '\n',
      ) + '\nnot-a-value\n',
    );
    const imported = await cli(
      ['import', 'blocklist', list, '--url', hub.url, '--key', token, '--ttl', '7d'],
      env,
    );
    expect(imported.code).toBe(3);
    expect(imported.err).toContain('12000 added, 0 updated, 1 not added');
    expect(imported.err).toContain('line 12001: not-a-value');
    const view = await (await fetch(`${hub.url}/feeds/blocklist/ip`)).text();
    expect(view).toContain('10.47.249.1');

    const exported = await cli(['export', 'blocklist', '--url', hub.url, '--key', token], env);
    expect(exported.code).toBe(0);
    expect(exported.out).toContain('alias: blocklist');

    const denied = await cli(['export', 'blocklist', '--url', hub.url, '--key', 'fh_x.wrong'], env);
    expect(denied.code).toBe(1);
    expect(denied.err).toContain('401');
  });

  it('check-config reports valid files and stored definitions; bad usage exits 2', async () => {
    const checked = await cli(['check-config'], env);
    expect(checked.code).toBe(0);
    expect(checked.out).toContain('stored definitions are valid: 1 collections');
    expect((await cli(['frobnicate'], env)).code).toBe(2);
    const noKey = await cli(['export', 'blocklist'], { ...env, FEEDHUB_API_KEY: '' });
    expect(noKey.code).toBe(1);
    expect(noKey.err).toContain('--key');
  });
});
