import { join } from 'node:path';

import { loadConfig } from '../../src/app/config.js';
import { startHub, type Hub } from '../../src/app/hub.js';
import { createLogger } from '../../src/app/logger.js';

/**
 * Starts a silent hub on a free port of 127.0.0.1, with its data in
 * `dir/data` and its collections from `collectionsDir`. Sources are polled
 * only through `pollNow`, and views render only on request, so every test of
 * a file reads the same data. `env` adds settings, such as a store's.
 */
export function startHubOnRequest(
  dir: string,
  env: Record<string, string> = {},
  collectionsDir = join(dir, 'collections'),
): Promise<Hub> {
  const config = loadConfig({
    ...env,
    FEEDHUB_PORT: '0',
    FEEDHUB_DATA_DIR: join(dir, 'data'),
    FEEDHUB_COLLECTIONS_DIR: collectionsDir,
    FEEDHUB_LOG_LEVEL: 'silent',
  });
  return startHub(config, createLogger('silent'), {
    processEveryMs: 60_000,
    viewDebounceMs: 60_000,
    pollOnRequestOnly: true,
  });
}
