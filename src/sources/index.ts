export { FetchError, type FetchFailure } from './fetch-error.js';
export { fetchFeed, redactUrl, type FetchOptions, type FetchResult } from './fetch.js';
export {
  CATALOGUE,
  catalogueEntry,
  expandCatalogue,
  renderCatalogueTable,
  type CatalogueEntry,
} from './catalogue.js';
export { DROP_FORMATS, dropFormat, type DirectorySettings, type DropFormat } from './directory.js';
export {
  backoffDelayMs,
  closeDispatchers,
  HostLimiter,
  SHARED_HOST_LIMITER,
  type HttpSettings,
  type HttpTls,
} from './http-client.js';
export {
  compileExtract,
  judgeBody,
  MAX_LINE_LENGTH,
  parseTextList,
  type InvalidExample,
  type TextListEntry,
  type TextListOptions,
  type TextListResult,
  type TextListStats,
} from './text-list.js';
export {
  judgeCsv,
  MAX_RECORD_LENGTH,
  parseCsv,
  parseFeedTime,
  CSV_ATTRIBUTE_KINDS,
  type CsvAttributeColumn,
  type CsvAttributeKind,
  type CsvColumn,
  type CsvColumnRef,
  type CsvResult,
  type CsvSettings,
  type CsvSkipRule,
  type CsvStats,
} from './csv.js';
export {
  compileExpression,
  judgeJson,
  MAX_JSON_LINE_LENGTH,
  parseJson,
  type JsonResult,
  type JsonSettings,
  type JsonStats,
} from './json.js';
export { parseElementPath } from './json-elements.js';
export {
  GITHUB_META_IP_KEYS,
  JSON_PRESETS,
  PRESET_OPTIONS,
  presetExpression,
  type JsonPreset,
  type JsonPresetOptions,
} from './presets.js';
export {
  SOURCE_KINDS,
  SourceRejectedError,
  type ReadContext,
  type ReadResult,
  type ReadStats,
  type SourceEntry,
  type SourceKind,
  type SourceSettings,
} from './kinds.js';
export {
  pollSource,
  storedAllowEntries,
  type PollDeps,
  type PollOutcome,
  type PollReport,
  type PollSource,
} from './poll.js';
export {
  taxii21,
  TaxiiResponseError,
  type Taxii21Cursor,
  type Taxii21Settings,
} from './taxii21.js';
export { TaxiiRequestError, type TlsFiles } from './taxii21-http.js';
export { mispFeedKind, DEFAULT_MISP_SETTINGS, type MispSettings } from './misp.js';
export {
  stixBundleKind,
  parseStixBundle,
  upgradeObject,
  BundleSyntaxError,
  type StixBundleStats,
} from './stix-bundle.js';
