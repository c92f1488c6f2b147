export { FetchError, type FetchFailure } from './fetch-error.js';
export { fetchFeed, type FetchOptions, type FetchResult } from './fetch.js';
export {
  judgeBody,
  parseTextList,
  type InvalidExample,
  type TextListEntry,
  type TextListOptions,
  type TextListResult,
  type TextListStats,
} from './text-list.js';
