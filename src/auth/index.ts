export {
  ANY_PRINCIPAL,
  checkGrantedPrincipals,
  defaultAccess,
  permissionsFor,
  resolveAccess,
  type Permissions,
  type RawAccess,
} from './access.js';
export {
  createAuthenticator,
  type AuthOutcome,
  type Authenticator,
  type AuthenticatorOptions,
} from './authenticator.js';
export { readPrincipalsFile, type ApiKeyConfig, type PrincipalConfig } from './principals.js';
export { generateApiKey, hashSecret, isSecretHash, verifySecret } from './secrets.js';
export { BASIC_CHALLENGE, BEARER_CHALLENGE } from './strategies.js';
export { LoginThrottle, type ThrottleOptions } from './throttle.js';
export {
  PrincipalDirectory,
  type PrincipalInfo,
  type StoredApiKey,
  type StoredPrincipal,
} from './directory.js';
export { PRINCIPAL_KINDS, ROLES, roleAllows, type PrincipalKind, type Role } from './roles.js';
