/** Principals, their API keys, the caller itself, and the audit log. */
import { randomBytes } from 'node:crypto';

import {
  generateApiKey,
  hashSecret,
  type StoredApiKey,
  type StoredPrincipal,
} from '../../auth/index.js';
import { RecordConflictError, type AdminRecord } from '../../store/index.js';
import { audit, isoMicros, nowMicros, type ApiDeps } from '../deps.js';
import { staleRevision } from '../definitions.js';
import { ApiError, quote } from '../errors.js';
import { decodeCursor, encodeCursor, isNumber, isString, PAGE_QUERY } from '../paging.js';
import type { RouteSpec } from '../route.js';
import { DURATION_MICROS, futureMicros, limitOf } from './common.js';

const NAME_PARAM = {
  name: {
    description: 'Principal name.',
    schema: { type: 'string', pattern: '^[A-Za-z0-9._@-]{1,64}$' },
  },
};
const KEY_PARAM = {
  ...NAME_PARAM,
  key: {
    description: 'Key id: the part of the token before the dot.',
    schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
  },
};

/** A key id: a visible prefix and random characters, e.g. `fh_3kq9x2m1qa7b`. */
function newKeyId(): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(12);
  return `fh_${[...bytes].map((b) => alphabet[b % alphabet.length]).join('')}`;
}

function grantsOf(deps: ApiDeps, name: string): Record<string, string>[] {
  const grants: Record<string, string>[] = [];
  for (const collection of deps.definitions.collections()) {
    const has = (list: readonly string[]) => list.includes(name) || list.includes('*');
    if (has(collection.access.read))
      grants.push({ collection: collection.alias, access: 'taxii-read' });
    if (has(collection.access.write))
      grants.push({ collection: collection.alias, access: 'taxii-write' });
    for (const view of collection.views) {
      if (!view.access.public && has(view.access.principals))
        grants.push({ collection: collection.alias, access: 'view', view: view.name });
    }
  }
  return grants;
}

function storedBody(deps: ApiDeps, record: AdminRecord): Record<string, unknown> {
  const body = record.body as unknown as StoredPrincipal;
  return {
    name: record.id,
    kind: body.kind,
    ...(body.role === undefined ? {} : { role: body.role }),
    ...(body.displayName === undefined ? {} : { displayName: body.displayName }),
    origin: 'store',
    disabled: body.disabled === true,
    hasPassword: body.password !== undefined,
    revision: record.revision,
    createdAt: isoMicros(record.createdAt),
    updatedAt: isoMicros(record.updatedAt),
    grants: grantsOf(deps, record.id),
  };
}

function keyBody(record: AdminRecord, now: number): Record<string, unknown> {
  const key = record.body as unknown as StoredApiKey;
  const state =
    key.revokedAt !== undefined
      ? 'revoked'
      : key.expiresAt !== undefined && key.expiresAt <= now
        ? 'expired'
        : 'active';
  return {
    id: record.id,
    principal: key.principal,
    ...(key.label === undefined ? {} : { label: key.label }),
    createdAt: isoMicros(record.createdAt),
    ...(key.expiresAt === undefined ? {} : { expiresAt: isoMicros(key.expiresAt) }),
    ...(key.lastUsedAt === undefined ? {} : { lastUsedAt: isoMicros(key.lastUsedAt) }),
    ...(key.revokedAt === undefined ? {} : { revokedAt: isoMicros(key.revokedAt) }),
    state,
  };
}

async function principalBody(deps: ApiDeps, name: string): Promise<Record<string, unknown>> {
  const record = await deps.store.getRecord('principal', name);
  if (record) return storedBody(deps, record);
  const info = await deps.directory.principal(name);
  if (info === undefined) {
    throw new ApiError(
      404,
      'not_found',
      `principal ${quote(name)} does not exist; list them with GET /api/v1/principals`,
    );
  }
  return {
    name,
    kind: info.kind,
    ...(info.role === undefined ? {} : { role: info.role }),
    origin: 'file',
    disabled: false,
    hasPassword: (await deps.directory.passwordHash(name)) !== undefined,
    grants: grantsOf(deps, name),
  };
}

function fileOwned(name: string): ApiError {
  return new ApiError(
    409,
    'already_exists',
    `principal ${quote(name)} is defined in the principals file; change it there (this API manages only principals it created)`,
  );
}

/** Creates a key for a stored principal and returns the token, shown once. */
export async function createKey(
  deps: Pick<ApiDeps, 'store'>,
  principal: string,
  options: { label?: string; expiresAt?: number; at: number },
): Promise<{ record: AdminRecord; token: string }> {
  const id = newKeyId();
  const { token, hash } = await generateApiKey(id);
  const body: StoredApiKey = {
    principal,
    hash,
    ...(options.label === undefined ? {} : { label: options.label }),
    ...(options.expiresAt === undefined ? {} : { expiresAt: options.expiresAt }),
  };
  const record = await deps.store.putRecord(
    'api-key',
    id,
    { ...body },
    { at: options.at, expectedRevision: 'absent' },
  );
  return { record, token };
}

export function principalRoutes(deps: ApiDeps): RouteSpec[] {
  return [
    {
      operationId: 'getMe',
      method: 'get',
      path: '/me',
      summary: 'Who the credentials belong to',
      tag: 'principals',
      role: 'read-only',
      responses: { 200: { description: 'The caller.', schema: 'api/common#/$defs/Me' } },
      async handle(request) {
        const { name, kind, role, origin } = request.principal;
        return {
          status: 200,
          body: { name, kind, ...(role === undefined ? {} : { role }), origin },
        };
      },
    },
    {
      operationId: 'listPrincipals',
      method: 'get',
      path: '/principals',
      summary: 'List principals, those of the principals file first',
      tag: 'principals',
      role: 'admin',
      query: PAGE_QUERY,
      responses: {
        200: {
          description: 'A page of principals, by name.',
          schema: 'api/principals#/$defs/PrincipalPage',
        },
      },
      async handle(request) {
        const after = decodeCursor(request.query.cursor as string | undefined, isString);
        const limit = limitOf(request);
        const fileNames = deps.directory.fileNames().sort();
        const items: Record<string, unknown>[] = [];
        for (const name of fileNames) {
          if (after !== undefined && `0${name}` <= after) continue;
          if (items.length < limit) items.push(await principalBody(deps, name));
        }
        const storeAfter =
          after !== undefined && after.startsWith('1') ? after.slice(1) : undefined;
        let more = fileNames.filter((n) => after === undefined || `0${n}` > after).length > limit;
        if (items.length < limit) {
          const page = await deps.store.listRecords('principal', {
            limit: limit - items.length,
            ...(storeAfter === undefined ? {} : { after: storeAfter }),
          });
          items.push(...page.items.map((record) => storedBody(deps, record)));
          more = page.more;
        }
        const last = items[items.length - 1];
        const key =
          last === undefined
            ? undefined
            : `${last.origin === 'file' ? '0' : '1'}${String(last.name)}`;
        return {
          status: 200,
          body: { items, ...(more && key ? { next: encodeCursor(key) } : {}) },
        };
      },
    },
    {
      operationId: 'createPrincipal',
      method: 'post',
      path: '/principals',
      summary: 'Create a principal',
      description:
        'A user needs a role to use this API; partners and consumers are granted collections and views in collection definitions.',
      tag: 'principals',
      role: 'admin',
      body: { content: { 'application/json': 'api/principals#/$defs/PrincipalCreate' } },
      responses: { 201: { description: 'Created.', schema: 'api/principals#/$defs/Principal' } },
      errors: [409, 422],
      async handle(request) {
        const body = request.body as {
          name: string;
          kind: StoredPrincipal['kind'];
          role?: StoredPrincipal['role'];
          displayName?: string;
          password?: string;
        };
        if (body.role !== undefined && body.kind !== 'user') {
          throw new ApiError(
            422,
            'unprocessable',
            `only users have a role; ${quote(body.name)} is a ${body.kind}`,
            { field: '/role' },
          );
        }
        if (deps.directory.fileNames().includes(body.name)) throw fileOwned(body.name);
        if (body.name.toLowerCase() === 'system') {
          throw new ApiError(
            422,
            'unprocessable',
            'the name "system" is reserved for changes the hub makes itself in the audit log; choose another name',
            { field: '/name', value: body.name },
          );
        }
        const stored: StoredPrincipal = {
          kind: body.kind,
          ...(body.role === undefined ? {} : { role: body.role }),
          ...(body.displayName === undefined ? {} : { displayName: body.displayName }),
          ...(body.password === undefined ? {} : { password: await hashSecret(body.password) }),
        };
        const at = nowMicros(deps);
        let record: AdminRecord;
        try {
          record = await deps.store.putRecord(
            'principal',
            body.name,
            { ...stored },
            { at, expectedRevision: 'absent' },
          );
        } catch (error) {
          if (error instanceof RecordConflictError) {
            throw new ApiError(
              409,
              'already_exists',
              `principal ${quote(body.name)} exists already`,
              { field: '/name', value: body.name },
            );
          }
          throw error;
        }
        await audit(deps, {
          at,
          actor: request.principal.name,
          action: 'principal.create',
          targetKind: 'principal',
          targetId: body.name,
          ip: request.ctx.ip,
          details: {
            kind: body.kind,
            ...(body.role === undefined ? {} : { role: body.role }),
            password: body.password !== undefined,
          },
        });
        deps.directory.invalidate();
        await deps.directory.refreshEnabled();
        return { status: 201, body: storedBody(deps, record) };
      },
    },
    {
      operationId: 'getPrincipal',
      method: 'get',
      path: '/principals/{name}',
      summary: 'Read a principal and its grants',
      tag: 'principals',
      role: 'admin',
      params: NAME_PARAM,
      responses: {
        200: { description: 'The principal.', schema: 'api/principals#/$defs/Principal' },
      },
      async handle(request) {
        return { status: 200, body: await principalBody(deps, request.params.name!) };
      },
    },
    {
      operationId: 'updatePrincipal',
      method: 'put',
      path: '/principals/{name}',
      summary: 'Change a principal: role, display name, password, disabled',
      description:
        'A disabled principal cannot log in with any credential. A null password removes HTTP Basic access; a null role removes API access.',
      tag: 'principals',
      role: 'admin',
      params: NAME_PARAM,
      body: { content: { 'application/json': 'api/principals#/$defs/PrincipalUpdate' } },
      responses: { 200: { description: 'Updated.', schema: 'api/principals#/$defs/Principal' } },
      errors: [409, 422],
      async handle(request) {
        const name = request.params.name!;
        const body = request.body as {
          revision: number;
          role?: StoredPrincipal['role'] | null;
          displayName?: string;
          password?: string | null;
          disabled?: boolean;
        };
        if (deps.directory.fileNames().includes(name)) throw fileOwned(name);
        const record = await deps.store.getRecord('principal', name);
        if (record === undefined)
          throw new ApiError(404, 'not_found', `principal ${quote(name)} does not exist`);
        if (record.revision !== body.revision)
          throw staleRevision(`principal ${quote(name)}`, body.revision, record.revision);
        const current = record.body as unknown as StoredPrincipal;
        const next: StoredPrincipal = { ...current };
        if (body.role === null) delete next.role;
        else if (body.role !== undefined) {
          if (current.kind !== 'user')
            throw new ApiError(
              422,
              'unprocessable',
              `only users have a role; ${quote(name)} is a ${current.kind}`,
              { field: '/role' },
            );
          next.role = body.role;
        }
        if (body.displayName !== undefined) next.displayName = body.displayName;
        if (body.password === null) delete next.password;
        else if (body.password !== undefined) next.password = await hashSecret(body.password);
        if (body.disabled !== undefined) next.disabled = body.disabled;
        if (name === request.principal.name && (next.disabled === true || next.role !== 'admin')) {
          throw new ApiError(
            422,
            'unprocessable',
            'an admin cannot disable or demote itself; ask another admin',
            { field: body.disabled ? '/disabled' : '/role' },
          );
        }
        const at = nowMicros(deps);
        let updated: AdminRecord;
        try {
          updated = await deps.store.putRecord(
            'principal',
            name,
            { ...next },
            { at, expectedRevision: record.revision },
          );
        } catch (error) {
          if (error instanceof RecordConflictError)
            throw staleRevision(`principal ${quote(name)}`, body.revision, error.currentRevision);
          throw error;
        }
        await audit(deps, {
          at,
          actor: request.principal.name,
          action: 'principal.update',
          targetKind: 'principal',
          targetId: name,
          ip: request.ctx.ip,
          details: {
            ...(body.role === undefined ? {} : { role: body.role }),
            ...(body.displayName === undefined ? {} : { displayName: body.displayName }),
            ...(body.password === undefined
              ? {}
              : { password: body.password === null ? 'removed' : 'changed' }),
            ...(body.disabled === undefined ? {} : { disabled: body.disabled }),
          },
        });
        deps.directory.invalidate();
        return { status: 200, body: storedBody(deps, updated) };
      },
    },
    {
      operationId: 'deletePrincipal',
      method: 'delete',
      path: '/principals/{name}',
      summary: 'Delete a principal and revoke its keys',
      tag: 'principals',
      role: 'admin',
      params: NAME_PARAM,
      responses: { 200: { description: 'Deleted.', schema: 'api/common#/$defs/Deleted' } },
      errors: [409],
      async handle(request) {
        const name = request.params.name!;
        if (deps.directory.fileNames().includes(name)) throw fileOwned(name);
        if (name === request.principal.name)
          throw new ApiError(
            409,
            'already_exists',
            'an admin cannot delete itself; ask another admin',
          );
        const record = await deps.store.getRecord('principal', name);
        if (record === undefined)
          throw new ApiError(404, 'not_found', `principal ${quote(name)} does not exist`);
        const at = nowMicros(deps);
        for (const key of await keysOf(deps, name)) {
          const body = key.body as unknown as StoredApiKey;
          if (body.revokedAt === undefined)
            await deps.store.putRecord('api-key', key.id, { ...body, revokedAt: at }, { at });
        }
        await deps.store.deleteRecord('principal', name);
        await audit(deps, {
          at,
          actor: request.principal.name,
          action: 'principal.delete',
          targetKind: 'principal',
          targetId: name,
          ip: request.ctx.ip,
        });
        deps.directory.invalidate();
        await deps.directory.refreshEnabled();
        return { status: 200, body: { deleted: name } };
      },
    },
    {
      operationId: 'listKeys',
      method: 'get',
      path: '/principals/{name}/keys',
      summary: "List a principal's API keys (never their secrets)",
      tag: 'principals',
      role: 'admin',
      params: NAME_PARAM,
      query: PAGE_QUERY,
      responses: {
        200: { description: 'A page of keys.', schema: 'api/principals#/$defs/ApiKeyPage' },
      },
      async handle(request) {
        const name = request.params.name!;
        await principalBody(deps, name);
        const keys = await keysOf(deps, name);
        const after = decodeCursor(request.query.cursor as string | undefined, isString);
        const from = after === undefined ? keys : keys.filter((k) => k.id > after);
        const page = from.slice(0, limitOf(request));
        const now = nowMicros(deps);
        const last = page[page.length - 1];
        return {
          status: 200,
          body: {
            items: page.map((k) => keyBody(k, now)),
            ...(from.length > page.length && last ? { next: encodeCursor(last.id) } : {}),
          },
        };
      },
    },
    {
      operationId: 'createKey',
      method: 'post',
      path: '/principals/{name}/keys',
      summary: 'Create an API key; the token is shown once',
      tag: 'principals',
      role: 'admin',
      params: NAME_PARAM,
      body: { content: { 'application/json': 'api/principals#/$defs/ApiKeyCreate' } },
      responses: {
        201: {
          description: 'Created; store the token now.',
          schema: 'api/principals#/$defs/ApiKeyCreated',
        },
      },
      errors: [409, 422],
      async handle(request) {
        const name = request.params.name!;
        const body = request.body as { label?: string; expiresAt?: string; expiresIn?: string };
        if (deps.directory.fileNames().includes(name)) throw fileOwned(name);
        if ((await deps.store.getRecord('principal', name)) === undefined) {
          throw new ApiError(
            404,
            'not_found',
            `principal ${quote(name)} does not exist; create it first with POST /api/v1/principals`,
          );
        }
        const at = nowMicros(deps);
        if (body.expiresAt !== undefined && body.expiresIn !== undefined) {
          throw new ApiError(422, 'unprocessable', 'give expiresAt or expiresIn, not both', {
            field: '/expiresIn',
          });
        }
        let expiresAt: number | undefined;
        if (body.expiresAt !== undefined) {
          expiresAt = futureMicros(body.expiresAt, at, '/expiresAt');
        } else if (body.expiresIn !== undefined) {
          expiresAt =
            at + Number(body.expiresIn.slice(0, -1)) * DURATION_MICROS[body.expiresIn.slice(-1)]!;
        }
        const { record, token } = await createKey(deps, name, {
          ...(body.label === undefined ? {} : { label: body.label }),
          ...(expiresAt === undefined ? {} : { expiresAt }),
          at,
        });
        await audit(deps, {
          at,
          actor: request.principal.name,
          action: 'api-key.create',
          targetKind: 'api-key',
          targetId: record.id,
          ip: request.ctx.ip,
          details: {
            principal: name,
            ...(expiresAt === undefined ? {} : { expiresAt: isoMicros(expiresAt) }),
          },
        });
        return { status: 201, body: { key: keyBody(record, at), token } };
      },
    },
    {
      operationId: 'revokeKey',
      method: 'delete',
      path: '/principals/{name}/keys/{key}',
      summary: 'Revoke an API key',
      description:
        'The key stops working within a second on every process. The record stays, marked revoked.',
      tag: 'principals',
      role: 'admin',
      params: KEY_PARAM,
      responses: { 200: { description: 'Revoked.', schema: 'api/principals#/$defs/ApiKey' } },
      async handle(request) {
        const record = await deps.store.getRecord('api-key', request.params.key!);
        const body = record?.body as unknown as StoredApiKey | undefined;
        if (record === undefined || body === undefined || body.principal !== request.params.name) {
          throw new ApiError(
            404,
            'not_found',
            `key ${quote(request.params.key)} of principal ${quote(request.params.name)} does not exist`,
          );
        }
        const at = nowMicros(deps);
        const updated =
          body.revokedAt !== undefined
            ? record
            : await deps.store.putRecord('api-key', record.id, { ...body, revokedAt: at }, { at });
        if (body.revokedAt === undefined) {
          await audit(deps, {
            at,
            actor: request.principal.name,
            action: 'api-key.revoke',
            targetKind: 'api-key',
            targetId: record.id,
            ip: request.ctx.ip,
            details: { principal: body.principal },
          });
        }
        deps.directory.invalidate();
        return { status: 200, body: keyBody(updated, at) };
      },
    },
    {
      operationId: 'listAudit',
      method: 'get',
      path: '/audit',
      summary: 'The audit log, newest first',
      tag: 'audit',
      role: 'analyst',
      query: {
        ...PAGE_QUERY,
        actor: {
          description: 'Principal name, or system.',
          schema: { type: 'string', minLength: 1, maxLength: 64 },
        },
        action: {
          description:
            'An action such as collection.update, or a prefix ending in a dot (source.).',
          schema: { type: 'string', pattern: '^[a-z0-9.-]{1,64}$' },
        },
        targetKind: {
          description:
            'collection, source, allow-list, protected, manual-entry, principal, api-key.',
          schema: { type: 'string', pattern: '^[a-z-]{1,32}$' },
        },
        targetId: {
          description: 'The id of the changed thing.',
          schema: { type: 'string', minLength: 1, maxLength: 2000 },
        },
        collection: {
          description: 'Collection alias or id.',
          schema: { type: 'string', minLength: 1, maxLength: 64 },
        },
        since: {
          description: 'Changes at or after this instant.',
          schema: { type: 'string', format: 'date-time' },
        },
        until: {
          description: 'Changes before this instant.',
          schema: { type: 'string', format: 'date-time' },
        },
      },
      responses: {
        200: { description: 'A page of audit entries.', schema: 'api/principals#/$defs/AuditPage' },
      },
      async handle(request) {
        const q = request.query as Record<string, string | number | undefined>;
        const before = decodeCursor(q.cursor as string | undefined, isNumber);
        const micros = (text: unknown) =>
          text === undefined ? undefined : Date.parse(String(text)) * 1000;
        const page = await deps.store.listAudit({
          limit: limitOf(request),
          ...(q.actor === undefined ? {} : { actor: String(q.actor) }),
          ...(q.action === undefined ? {} : { action: String(q.action) }),
          ...(q.targetKind === undefined ? {} : { targetKind: String(q.targetKind) }),
          ...(q.targetId === undefined ? {} : { targetId: String(q.targetId) }),
          ...(q.collection === undefined
            ? {}
            : {
                collectionId:
                  deps.definitions.find(String(q.collection))?.id ?? String(q.collection),
              }),
          ...(q.since === undefined ? {} : { since: micros(q.since) }),
          ...(q.until === undefined ? {} : { until: micros(q.until) }),
          ...(before === undefined ? {} : { beforeSeq: before }),
        });
        const last = page.items[page.items.length - 1];
        return {
          status: 200,
          body: {
            items: page.items.map((item) => ({
              seq: item.seq,
              at: isoMicros(item.at),
              actor: item.actor,
              action: item.action,
              targetKind: item.targetKind,
              targetId: item.targetId,
              ...(item.collectionId === undefined ? {} : { collectionId: item.collectionId }),
              ...(item.ip === undefined ? {} : { ip: item.ip }),
              ...(item.details === undefined ? {} : { details: item.details }),
            })),
            ...(page.more && last ? { next: encodeCursor(last.seq) } : {}),
          },
        };
      },
    },
  ];
}

async function keysOf(deps: ApiDeps, principal: string): Promise<AdminRecord[]> {
  const keys: AdminRecord[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await deps.store.listRecords('api-key', {
      limit: 500,
      ...(after ? { after } : {}),
    });
    keys.push(
      ...page.items.filter((k) => (k.body as unknown as StoredApiKey).principal === principal),
    );
    if (!page.more || page.items.length === 0) return keys;
    after = page.items[page.items.length - 1]!.id;
  }
}
