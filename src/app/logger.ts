import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Builds the process logger. Messages are constant strings and values go in
 * fields with fixed names (collectionId, sourceId, jobId, durationMs, count).
 * Credentials never reach the output, whatever field they arrive in.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'feedhub' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'password',
          '*.password',
          'authorization',
          '*.authorization',
          'headers.authorization',
          '*.headers.authorization',
          'apiKey',
          '*.apiKey',
          'secret',
          '*.secret',
        ],
        censor: '[redacted]',
      },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}
