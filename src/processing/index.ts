export {
  VALUE_TYPES,
  isValueType,
  valueTypeToStixType,
  type CanonicalResult,
  type StixObservableType,
  type ValueType,
} from './value-types.js';
export { canonicalize, detectAndCanonicalize, detectValueType } from './canonical.js';
export { ipv4RangeToCidrs, parseIpv4, formatIpv4 } from './ip.js';
export {
  IntervalSet,
  ipInterval,
  parseIpv6BigInt,
  formatIpv6BigInt,
  type IpInterval,
  type TypedValue,
} from './ip-intervals.js';
export { urlHost } from './url.js';
export {
  DEFAULT_GUARD_SETTINGS,
  GUARD_RULES,
  Guards,
  isPublicSuffix,
  type GuardRule,
  type GuardSettings,
} from './guards.js';
export {
  AllowList,
  BUILTIN_ALLOW_LISTS,
  DEFAULT_ALLOW_LIST_SETTINGS,
  parseAllowEntry,
  type AllowDecision,
  type AllowListSettings,
  type BuiltinAllowList,
} from './allow-list.js';
export {
  DEFAULT_SCREEN_SETTINGS,
  Screen,
  emptyScreenCounts,
  nonZeroRefused,
  type ScreenCounts,
  type ScreenExample,
  type ScreenSettings,
  type ScreenVerdict,
} from './screen.js';
