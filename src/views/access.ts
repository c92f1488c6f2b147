/**
 * Access decisions for views: allowed client networks, then public access or
 * credentials (HTTP Basic or an API key) of listed principals.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import ipaddr from 'ipaddr.js';

import type { Authenticator } from '../auth/index.js';
import { BASIC_CHALLENGE, BEARER_CHALLENGE } from '../auth/index.js';
import type { ViewAccess } from './spec.js';

export type AccessDecision =
  | { allowed: true; principal?: string }
  | { allowed: false; status: 401 | 403 | 429; message: string; headers?: Record<string, string> };

type Network = [ipaddr.IPv4 | ipaddr.IPv6, number];

const compiled = new WeakMap<ViewAccess, Network[]>();

/** Parses the networks of an access rule once; the config loader has already checked them. */
function networksOf(access: ViewAccess): Network[] {
  let networks = compiled.get(access);
  if (networks === undefined) {
    networks = access.networks.map((text) =>
      text.includes('/') ? ipaddr.parseCIDR(text) : cidrOfAddress(text),
    );
    compiled.set(access, networks);
  }
  return networks;
}

function cidrOfAddress(text: string): Network {
  const address = ipaddr.parse(text);
  return [address, address.kind() === 'ipv4' ? 32 : 128];
}

/** Returns an error message when `text` is not an address or CIDR, for the config loader. */
export function checkNetwork(text: string): string | undefined {
  try {
    if (text.includes('/')) ipaddr.parseCIDR(text);
    else ipaddr.parse(text);
    return undefined;
  } catch {
    return `${JSON.stringify(text)} is not an IP address or CIDR; write e.g. 10.0.0.0/8 or 2001:db8::/32`;
  }
}

function inNetworks(clientIp: string, networks: readonly Network[]): boolean {
  let address: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    address = ipaddr.process(clientIp);
  } catch {
    return false;
  }
  return networks.some(
    ([base, bits]) => base.kind() === address.kind() && address.match([base, bits] as never),
  );
}

/** The parts of a request that access decisions read. */
export interface AccessRequest {
  req: IncomingMessage;
  res: ServerResponse;
  /** Client address as the socket reports it. */
  ip: string;
}

/** Decides whether the request may fetch a view with `access`. */
export async function decideViewAccess(
  ctx: AccessRequest,
  access: ViewAccess,
  viewLabel: string,
  authenticator: Authenticator | undefined,
): Promise<AccessDecision> {
  const networks = networksOf(access);
  if (networks.length > 0 && !inNetworks(ctx.ip, networks)) {
    return {
      allowed: false,
      status: 403,
      message: `Client address ${ctx.ip} is not in the networks allowed to fetch ${viewLabel}.`,
    };
  }
  const authorization = ctx.req.headers.authorization ?? '';
  if (access.public && authorization === '') return { allowed: true };

  const challenges = [
    ...(access.methods.includes('basic') ? [BASIC_CHALLENGE] : []),
    ...(access.methods.includes('api-key') ? [BEARER_CHALLENGE] : []),
  ];
  const unauthorized = (message: string): AccessDecision => ({
    allowed: false,
    status: 401,
    message,
    headers: { 'WWW-Authenticate': challenges.join(', ') },
  });
  if (authorization === '') {
    return unauthorized(`${viewLabel} needs credentials: ${describeMethods(access)}.`);
  }
  const scheme = authorization.trim().split(/\s+/)[0]?.toLowerCase();
  let method: 'basic' | 'api-key' | undefined;
  if (scheme === 'basic') method = 'basic';
  else if (scheme === 'bearer') method = 'api-key';
  if (method === undefined || !access.methods.includes(method)) {
    return unauthorized(
      `${viewLabel} does not accept the ${JSON.stringify(scheme ?? '')} scheme; send ${describeMethods(access)}.`,
    );
  }
  if (authenticator === undefined || !authenticator.enabled) {
    return unauthorized(`No principals are configured, so no credentials can fetch ${viewLabel}.`);
  }
  const outcome = await authenticator.authenticate(ctx.req, ctx.res, ctx.ip);
  switch (outcome.kind) {
    case 'rejected':
    case 'anonymous':
      return unauthorized(`The credentials are invalid; send ${describeMethods(access)}.`);
    case 'throttled':
      return {
        allowed: false,
        status: 429,
        message: `Too many failed logins from this address or for this principal; retry in ${outcome.retryAfterSeconds} s.`,
        headers: { 'Retry-After': String(outcome.retryAfterSeconds) },
      };
    case 'principal':
      if (access.principals.includes('*') || access.principals.includes(outcome.name)) {
        return { allowed: true, principal: outcome.name };
      }
      if (access.public) return { allowed: true, principal: outcome.name };
      return {
        allowed: false,
        status: 403,
        message: `Principal ${JSON.stringify(outcome.name)} may not fetch ${viewLabel}.`,
      };
  }
}

function describeMethods(access: ViewAccess): string {
  const names = access.methods.map((method) =>
    method === 'basic' ? 'HTTP Basic credentials' : 'an API key as "Bearer KEYID.SECRET"',
  );
  return names.join(' or ');
}
