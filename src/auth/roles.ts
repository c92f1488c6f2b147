/** Roles on the analyst REST API, from the least to the most powerful. */
export const ROLES = ['read-only', 'analyst', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Whether `role` grants at least what `needed` does. */
export function roleAllows(role: Role | undefined, needed: Role): boolean {
  return role !== undefined && ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/**
 * What a principal is for. Users curate through the REST API; partners read
 * and write collections over TAXII; consumers fetch views. Only users have a role.
 */
export const PRINCIPAL_KINDS = ['user', 'partner', 'consumer'] as const;
export type PrincipalKind = (typeof PRINCIPAL_KINDS)[number];
