/**
 * Passport strategies for the two credential kinds: HTTP Basic (RFC 7617)
 * and API keys as bearer tokens (RFC 6750). They parse the `Authorization`
 * header and hand the credentials to a verify function; the verify function
 * owns hashing, throttling and logging.
 */
import type { IncomingMessage } from 'node:http';

import { Strategy } from 'passport';

/** Resolves to the principal name when the credentials are valid, else undefined. */
export type VerifyCredentials = (
  req: IncomingMessage,
  identity: string,
  secret: string,
) => Promise<string | undefined>;

export const BASIC_CHALLENGE = 'Basic realm="feedhub", charset="UTF-8"';
export const BEARER_CHALLENGE = 'Bearer realm="feedhub"';

/** The authenticated caller that the strategies pass to Passport. */
export interface AuthenticatedUser {
  name: string;
}

/** Splits `Authorization: <scheme> <credentials>`; the scheme is case-insensitive (RFC 9110, section 11.1). */
function credentialsFor(req: IncomingMessage, scheme: string): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+) +(\S+) *$/.exec(header);
  if (match === null || match[1]?.toLowerCase() !== scheme) return undefined;
  return match[2];
}

/** The action functions that Passport adds to a strategy for one request. */
interface StrategyActions {
  success(user: AuthenticatedUser): void;
  fail(challenge: string, status: number): void;
  error(error: unknown): void;
}

function settle(
  actions: StrategyActions,
  challenge: string,
  result: Promise<string | undefined>,
): void {
  result.then(
    (name) => (name === undefined ? actions.fail(challenge, 401) : actions.success({ name })),
    (error: unknown) => actions.error(error),
  );
}

/** HTTP Basic: `user-id ":" password` in base64; the user id is the principal name. */
export class BasicStrategy extends Strategy {
  readonly name = 'basic';

  constructor(private readonly verify: VerifyCredentials) {
    super();
  }

  override authenticate(req: IncomingMessage): void {
    const actions = this as unknown as StrategyActions;
    const encoded = credentialsFor(req, 'basic');
    const decoded =
      encoded === undefined || !/^[A-Za-z0-9+/]+=*$/.test(encoded)
        ? undefined
        : Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded?.indexOf(':') ?? -1;
    if (decoded === undefined || colon <= 0) {
      actions.fail(BASIC_CHALLENGE, 401);
      return;
    }
    settle(
      actions,
      BASIC_CHALLENGE,
      this.verify(req, decoded.slice(0, colon), decoded.slice(colon + 1)),
    );
  }
}

/** API keys: `Bearer <key id>.<secret>`. */
export class BearerStrategy extends Strategy {
  readonly name = 'bearer';

  constructor(private readonly verify: VerifyCredentials) {
    super();
  }

  override authenticate(req: IncomingMessage): void {
    const actions = this as unknown as StrategyActions;
    const token = credentialsFor(req, 'bearer');
    const dot = token?.indexOf('.') ?? -1;
    if (token === undefined || dot <= 0 || dot === token.length - 1) {
      actions.fail(BEARER_CHALLENGE, 401);
      return;
    }
    settle(actions, BEARER_CHALLENGE, this.verify(req, token.slice(0, dot), token.slice(dot + 1)));
  }
}
