import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ConfigError, loadConfig, type SourceConfig } from '../../src/app/config.js';

const HEAD = `id: 0f6b5d0e-8a43-4c1f-9a44-2f7c1a0b9c11
alias: sample
title: Sample
sources:
`;
const dirs: string[] = [];

afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Loads one collection whose sources are `sources`, with `env` as the environment. */
function load(sources: string, env: Record<string, string> = {}): SourceConfig[] {
  const dir = mkdtempSync(join(tmpdir(), 'feedhub-http-config-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'collections'));
  mkdirSync(join(dir, 'tls'));
  writeFileSync(join(dir, 'tls', 'ca.pem'), 'not read at load time\n');
  writeFileSync(join(dir, 'collections', 'a.yaml'), HEAD + sources);
  const config = loadConfig({ ...env, FEEDHUB_COLLECTIONS_DIR: join(dir, 'collections') }, dir);
  return config.collections[0]!.sources.filter((source) => source.kind !== 'manual');
}

function problemsOf(sources: string, env: Record<string, string> = {}): string[] {
  let caught: unknown;
  try {
    load(sources, env);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  return (caught as ConfigError).problems;
}

describe('HTTP source keys', () => {
  test('defaults', () => {
    const [source] = load(`  - id: list
    kind: text-list
    url: https://feeds.example.org/list.txt
    interval: 1h
`);
    expect(source!.http).toEqual({ maxRetries: 3, retryDelayMs: 1000 });
  });

  test('every key resolved', () => {
    const [source] = load(
      `  - id: list
    kind: csv
    url: https://feeds.example.org/list.zip
    interval: 1h
    columns: { ip: ipv4 }
    auth: { type: header, name: X-API-Key, valueEnv: LIST_KEY }
    tls: { caPath: ../tls/ca.pem, verify: false }
    proxyEnv: LIST_PROXY
    maxRetries: 0
    retryDelay: 5s
    zipEntry: data/list.csv
`,
      { LIST_KEY: 'k3y', LIST_PROXY: 'http://user:pw@proxy.example.org:3128' },
    );
    const http = source!.http!;
    expect(http.authHeader).toEqual({ name: 'X-API-Key', value: 'k3y' });
    expect(http.tls?.caPath).toMatch(/\/tls\/ca\.pem$/);
    expect(http.tls?.verify).toBe(false);
    expect(http.proxy).toBe('http://user:pw@proxy.example.org:3128');
    expect(http.maxRetries).toBe(0);
    expect(http.retryDelayMs).toBe(5000);
    expect(http.zipEntry).toBe('data/list.csv');
  });

  test('basic and bearer', () => {
    const [basic, bearer] = load(
      `  - id: a
    kind: text-list
    url: https://feeds.example.org/a.txt
    interval: 1h
    auth: { type: basic, usernameEnv: A_USER, passwordEnv: A_PASSWORD }
  - id: b
    kind: stix-bundle
    url: https://feeds.example.org/b.json
    interval: 1h
    auth: { type: bearer, tokenEnv: B_TOKEN }
`,
      { A_USER: 'feed', A_PASSWORD: 's@cret', B_TOKEN: 't0ken' },
    );
    expect(basic!.http?.authHeader).toEqual({
      name: 'Authorization',
      value: `Basic ${Buffer.from('feed:s@cret').toString('base64')}`,
    });
    expect(bearer!.http?.authHeader).toEqual({ name: 'Authorization', value: 'Bearer t0ken' });
  });

  test('unset variable named', () => {
    expect(
      problemsOf(`  - id: list
    kind: json
    url: https://feeds.example.org/list.json
    interval: 1h
    expression: ips
    auth: { type: header, name: Auth-Key, valueEnv: MISSING_KEY }
`),
    ).toEqual([
      expect.stringMatching(
        /\/sources\/0\/auth\/valueEnv: environment variable MISSING_KEY is not set; export it or change auth\/valueEnv$/,
      ),
    ]);
  });

  test('credentials in proxy rejected', () => {
    const problems = problemsOf(`  - id: list
    kind: text-list
    url: https://feeds.example.org/list.txt
    interval: 1h
    proxy: http://user:pw@proxy.example.org:3128
`);
    expect(problems).toEqual([
      expect.stringMatching(
        /\/sources\/0\/proxy: the proxy URL holds credentials, which do not belong in this file; put the URL in an environment variable and name it in proxyEnv$/,
      ),
    ]);
    expect(problems[0]).not.toContain('pw');
  });

  test('proxyEnv value checked', () => {
    expect(
      problemsOf(
        `  - id: list
    kind: text-list
    url: https://feeds.example.org/list.txt
    interval: 1h
    proxyEnv: LIST_PROXY
`,
        { LIST_PROXY: 'proxy.example.org:3128' },
      ),
    ).toEqual([
      expect.stringMatching(
        /\/sources\/0\/proxyEnv: the value of LIST_PROXY is not a proxy URL; use http:\/\/\[user:password@\]host:port$/,
      ),
    ]);
  });

  test('missing CA file named', () => {
    expect(
      problemsOf(`  - id: list
    kind: misp-feed
    url: https://feeds.example.org/misp/
    interval: 1h
    tls: { caPath: ../tls/absent.pem }
`),
    ).toEqual([
      expect.stringMatching(/\/sources\/0\/tls\/caPath: file .*\/tls\/absent\.pem not found$/),
    ]);
  });

  test('header name checked', () => {
    const problems = problemsOf(
      `  - id: list
    kind: text-list
    url: https://feeds.example.org/list.txt
    interval: 1h
    auth: { type: header, name: "X Key", valueEnv: KEY }
`,
      { KEY: 'k' },
    );
    expect(problems).toEqual([
      expect.stringMatching(/\/sources\/0\/auth\/name: must match pattern/),
    ]);
  });

  test('taxii21 tls verify', () => {
    const [source] = load(`  - id: partner
    kind: taxii21
    apiRoot: https://taxii.example.org/api1/
    collectionId: c1
    interval: 1h
    tls: { verify: false }
`);
    expect(source!.http?.tls?.verify).toBe(false);
  });
});

describe('json preset keys', () => {
  test('microsoft-365 needs output', () => {
    expect(
      problemsOf(`  - id: m365
    kind: json
    url: https://endpoints.example.org/endpoints/worldwide
    interval: 1h
    preset: microsoft-365
`),
    ).toEqual([
      expect.stringMatching(
        /\/sources\/0: set output to ips or urls; the preset microsoft-365 reads one of them, so use two sources for both$/,
      ),
    ]);
  });

  test('azure option on other preset', () => {
    expect(
      problemsOf(`  - id: aws
    kind: json
    url: https://ip-ranges.example.org/ip-ranges.json
    interval: 1h
    preset: aws-ip-ranges
    systemService: [AzureStorage]
`),
    ).toEqual([
      expect.stringMatching(
        /\/sources\/0\/systemService: systemService applies only to preset azure-service-tags, not aws-ip-ranges; remove it$/,
      ),
    ]);
  });

  test('versionUrl kept', () => {
    const [source] = load(`  - id: m365
    kind: json
    url: https://endpoints.example.org/endpoints/worldwide
    versionUrl: https://endpoints.example.org/version/Worldwide
    interval: 1h
    preset: microsoft-365
    output: ips
    required: true
`);
    expect(source!.json?.versionUrl).toBe('https://endpoints.example.org/version/Worldwide');
    expect(source!.json?.expression).toBe('[?required == `true`].ips[]');
  });
});
