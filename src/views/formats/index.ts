/** Format functions of the derived views: pure functions from entries to a body. */
export {
  expandIpv4Ranges,
  joinLines,
  renderDomainEdl,
  renderIpEdl,
  type DomainEdlOptions,
  type IpEdlOptions,
} from './edl.js';
export {
  PANOS_URL_MAX_LENGTH,
  convertPanosUrl,
  renderPanosUrlEdl,
  splitUrl,
  type PanosUrlOptions,
} from './panos-url.js';
export {
  BLUECOAT_CATEGORY_PATTERN,
  JSON_CONTENT_TYPE,
  JSON_SEQ_CONTENT_TYPE,
  JSON_VALUE_FIELDS,
  MWG_LIST_TYPES,
  jsonAttribute,
  renderBluecoat,
  renderJson,
  renderJsonSeq,
  renderMwg,
  type BluecoatOptions,
  type JsonOptions,
  type MwgListType,
  type MwgOptions,
} from './minemeld.js';
export {
  DEFAULT_EDL_OPTIONS,
  FEED_FORMATS,
  FeedQueryError,
  MAX_FEED_COLUMNS,
  parseFeedQuery,
  renderFeed,
  resolveFeedFormat,
  type EdlDefaults,
  type EdlViewKind,
  type FeedFormat,
  type FeedQuery,
  type FeedView,
} from './feed-query.js';
export { CSV_FIELDS, renderCsv, type CsvColumn, type CsvField, type CsvOptions } from './csv.js';
