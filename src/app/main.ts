import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config.js';
import { startHub } from './hub.js';
import { createLogger } from './logger.js';

const HELP = `Usage: node dist/app/main.js [options]

Starts the feedhub TAXII 2.1 server and feed hub.

Options:
  --check-config       validate the environment settings and collection files, then exit
  --role ROLE          what this process runs: api, worker or all (default: FEEDHUB_ROLE or all)
  -h, --help           show this help

Settings come from environment variables; see docs/configuration.md.
`;

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        'check-config': { type: 'boolean' },
        role: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(HELP);
    return 0;
  }

  const env = { ...process.env };
  if (args.values.role !== undefined) env.FEEDHUB_ROLE = args.values.role;

  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }

  if (args.values['check-config']) {
    // Every collection also has the `manual` source of the values analysts add; it is not counted.
    const sources = config.collections.reduce(
      (n, c) => n + c.sources.filter((s) => s.kind !== 'manual').length,
      0,
    );
    process.stdout.write(
      `configuration is valid: ${config.collections.length} collections, ${sources} sources\n`,
    );
    return 0;
  }

  const logger = createLogger(config.settings.logLevel);
  const hub = await startHub(config, logger);

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) return;
    signalled = true;
    logger.info({ signal }, 'shutdown requested');
    const deadline = setTimeout(() => {
      logger.error(
        { durationMs: config.settings.shutdownTimeoutMs },
        'shutdown deadline passed; exiting',
      );
      process.exit(1);
    }, config.settings.shutdownTimeoutMs);
    deadline.unref();
    hub.stop().then(
      () => {
        logger.info('hub stopped');
        // Agenda leaves a lock-renewal timer behind after each job; exit rather than wait for it.
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`feedhub failed to start: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
