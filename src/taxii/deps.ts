import type { Logger } from 'pino';

import type { Authenticator } from '../auth/index.js';
import type { Store } from '../store/index.js';

/** Dependencies and settings of the TAXII routes. */
export interface TaxiiDeps {
  store: Store;
  logger: Logger;
  /** Base URL of the hub as clients reach it, e.g. `https://hub.example.org`; the discovery resource builds absolute URLs from it. */
  publicUrl: string;
  /** Title of the discovery resource and of the API root. */
  title: string;
  description?: string;
  /** The one API root, a single path segment such as `hub`. */
  apiRootPath: string;
  /** Maximum number of items per page; a larger `limit` is lowered to it. Default 1000. */
  maxPageSize?: number;
  /** Key of the HMAC that signs `next` cursors. */
  cursorSecret: string;
  /** Maximum request body in bytes, advertised by the API root and enforced on POST. Default 10 MiB. */
  maxContentLength?: number;
  /** Checks credentials. Without it every caller is anonymous, so nothing can be written. */
  authenticator?: Authenticator;
  /** How long status resources stay readable, in ms. Default 24 hours. */
  statusRetentionMs?: number;
}

/** `TaxiiDeps` with defaults applied. */
export interface ResolvedTaxiiDeps extends TaxiiDeps {
  maxPageSize: number;
  maxContentLength: number;
  statusRetentionMs: number;
}

export const DEFAULT_MAX_PAGE_SIZE = 1000;
export const DEFAULT_MAX_CONTENT_LENGTH = 10 * 1024 * 1024;
export const DEFAULT_STATUS_RETENTION_MS = 24 * 60 * 60 * 1000;
