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
