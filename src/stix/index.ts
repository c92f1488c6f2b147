export { StixError } from './errors.js';
export { formatTimestamp, parseTimestamp, versionKey } from './timestamp.js';
export {
  HUB_NAMESPACE,
  STIX_SCO_NAMESPACE,
  identityId,
  indicatorId,
  observableId,
  successorIndicatorId,
  uuidV5,
} from './ids.js';
export {
  escapePatternString,
  parseSimplePattern,
  patternFor,
  type PatternValue,
} from './pattern.js';
export {
  TLP2_EXTENSION_ID,
  TLP_LEVELS,
  allTlpMarkings,
  isTlpLevel,
  tlpMarking,
  tlpMarkingById,
  type TlpLevel,
  type TlpMarking,
  type TlpVersion,
} from './tlp.js';
export {
  IDENTITY_TIMESTAMP,
  buildIdentity,
  buildIndicator,
  toStoredVersion,
  type IdentityInput,
  type IndicatorInput,
} from './objects.js';
export { AUTHORED_TYPES, validateStixObject, type ValidationResult } from './validate.js';
