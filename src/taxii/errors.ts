/**
 * TAXII error resources and the one place where errors of the TAXII routes
 * become HTTP responses.
 */
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';

import { TAXII_MEDIA_TYPE } from './media-type.js';

/** The TAXII 2.1 error resource. */
export interface TaxiiErrorBody {
  title: string;
  description?: string;
  error_code?: string;
  http_status?: string;
}

/** An error that the client caused or may act on, sent as a TAXII error resource. */
export class TaxiiError extends Error {
  readonly status: number;
  readonly title: string;
  readonly description: string | undefined;
  readonly errorCode: string;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    errorCode: string,
    title: string,
    description?: string,
    headers: Record<string, string> = {},
  ) {
    super(description === undefined ? title : `${title}: ${description}`);
    this.name = 'TaxiiError';
    this.status = status;
    this.errorCode = errorCode;
    this.title = title;
    this.description = description;
    this.headers = headers;
  }

  toBody(): TaxiiErrorBody {
    const body: TaxiiErrorBody = { title: this.title };
    if (this.description !== undefined) {
      body.description = this.description;
    }
    body.error_code = this.errorCode;
    body.http_status = String(this.status);
    return body;
  }
}

/** Creates the 400 error for a query parameter with an invalid value, naming the parameter. */
export function invalidParameter(name: string, description: string): TaxiiError {
  return new TaxiiError(400, 'invalid_parameter', `Invalid query parameter ${name}`, description);
}

export function notFound(description: string): TaxiiError {
  return new TaxiiError(404, 'not_found', 'Not found', description);
}

/**
 * Maps every error thrown below it to a TAXII error resource. A `TaxiiError`
 * keeps its status and is logged at info. Anything else becomes a plain 500
 * whose details stay in the log, with the stack.
 */
export function taxiiErrorMiddleware(logger: Logger) {
  return async function mapTaxiiErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } catch (error) {
      const taxiiError =
        error instanceof TaxiiError
          ? error
          : new TaxiiError(
              500,
              'internal_error',
              'Internal server error',
              'The server failed to process the request; the cause is in its log.',
            );

      if (taxiiError.status >= 500) {
        logger.error({ err: error, method: ctx.method, path: ctx.path }, 'TAXII request failed');
      } else {
        logger.info(
          {
            method: ctx.method,
            path: ctx.path,
            status: taxiiError.status,
            errorCode: taxiiError.errorCode,
          },
          'TAXII request rejected',
        );
      }

      ctx.status = taxiiError.status;
      ctx.set(taxiiError.headers);
      ctx.body = JSON.stringify(taxiiError.toBody());
      ctx.set('Content-Type', TAXII_MEDIA_TYPE);
    }
  };
}
