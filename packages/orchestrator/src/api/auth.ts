import type { ApiKeyRing, ApiKeyScope } from '@flotilla/runtime/auth';
import type { FastifyRequest } from 'fastify';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import { DEFAULT_OWNER } from '../tasks/store.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a key needs for this /v1 route; buildApp refuses to start with a /v1 route that names none. */
    scope?: ApiKeyScope;
  }
}

/** The client a request authenticated as: its key's name (its tenant) and scope. */
export interface Client {
  name: string;
  scope: ApiKeyScope;
}

const BEARER = /^Bearer ([\x21-\x7e]{1,4096})$/i;

/**
 * API-key auth for /v1. Each key in the keys file is a client; its name is the tenant that owns
 * the tasks it submits, and its scope says which routes it may call (a route's `config.scope`).
 * Without a key ring (AUTH=off, only on loopback; tests) every request is the one DEFAULT_OWNER
 * with every scope.
 */
export function apiKeyAuth(keys: ApiKeyRing | undefined) {
  // The rate limiter and the auth hook both need the client: look the key up once per request.
  const resolved = new WeakMap<FastifyRequest, Client | null>();
  const clientOf = (request: FastifyRequest): Client | undefined => {
    if (!keys) return undefined;
    let client = resolved.get(request);
    if (client === undefined) {
      const header = request.headers.authorization;
      const presented = typeof header === 'string' ? BEARER.exec(header)?.[1] : undefined;
      const entry = presented === undefined ? undefined : keys.find(presented);
      client = entry ? { name: entry.name, scope: entry.scope } : null;
      resolved.set(request, client);
    }
    return client ?? undefined;
  };

  return {
    enabled: keys !== undefined,
    /** onRequest hook: 401 without a known key, 403 when the key's scope is not the route's. */
    hook: async (request: FastifyRequest) => {
      if (!keys) return;
      const client = clientOf(request);
      if (!client) throw new UnauthorizedError({ detail: 'a valid API key is required (Authorization: Bearer <key>)' });
      const needed = request.routeOptions.config.scope;
      if (client.scope !== needed)
        throw new ForbiddenError(`this key's scope is ${client.scope}; this operation needs a ${needed} key`);
    },
    /**
     * Whose tasks a request sees and creates: the key's name. Called only after the hook let the
     * request through, so with auth on there is always a client.
     */
    ownerOf: (request: FastifyRequest): string => clientOf(request)?.name ?? DEFAULT_OWNER,
    /**
     * A rate-limit key: the tenant for authenticated clients, so each tenant has its own budget
     * (however many replicas or addresses it comes from); else the IP, so guessing keys is limited too.
     */
    clientKey: (request: FastifyRequest): string => {
      const client = clientOf(request);
      return client ? `tenant:${client.name}` : `ip:${request.ip}`;
    },
  };
}
