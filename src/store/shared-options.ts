// The `shared` option: checked at start-up, turned into a RedisStore; nothing here talks to Redis, so start-up never waits on it.
import { createHash } from 'node:crypto';
import type { SharedStoreError } from '../errors/shared-store-error.js';
import { commandFunction, guardErrorEvents, type RedisClientLike } from './command.js';
import { RedisStore } from './redis-store.js';

/** Share identities, single flight and the call budget across instances through Redis (or Valkey). */
export interface SharedOptions {
  /**
   * Your connected client: node-redis 4/5 (`createClient()`), ioredis (`new Redis()`, `new Redis.Cluster()`), or a
   * function `(args: string[]) => Promise<unknown>` that sends one command. No default: required.
   */
  redis: RedisClientLike;
  /** Prefix of every key. Defaults to `'orq-identity:'`. */
  prefix?: string | undefined;
  /** The longest one Redis command may take before the store is skipped for a while. Defaults to `250`. */
  commandTimeoutMs?: number | undefined;
  /**
   * Separates the keys of different orq workspaces. Defaults to a hash of the API key and server URL (the key
   * itself is never stored); pass your own when the client's key cannot be read (e.g. an `apiKey` function).
   */
  namespace?: string | undefined;
}

export interface SharedConfig {
  store: RedisStore;
}

export interface SharedCheck {
  fail(name: string, received: unknown, fix: string): never;
  milliseconds(name: string, value: unknown, fallback: number, min?: number): number;
}

/** A short, stable name for a workspace: the same key and URL on every instance give the same keys. */
export function workspaceScope(apiKey: string, serverURL: string): string {
  return createHash('sha256').update(`${serverURL}\n${apiKey}`).digest('hex').slice(0, 16);
}

export function makeSharedStore(
  check: SharedCheck,
  shared: unknown,
  credentials: { apiKey: unknown; serverURL: unknown },
  report: (error: SharedStoreError) => void,
): RedisStore | undefined {
  if (shared === undefined || shared === false) return undefined;
  if (shared === null || typeof shared !== 'object') check.fail('shared', shared, 'pass `{ redis: client }` with a connected node-redis or ioredis client');
  const options = shared as Partial<SharedOptions>;
  const send = commandFunction(options.redis);
  if (send === undefined) {
    check.fail('shared.redis', options.redis, 'pass a connected node-redis client (`createClient()`), an ioredis client (`new Redis()`), or a function `(args) => Promise` that sends one command');
  }
  const prefix = options.prefix ?? 'orq-identity:';
  if (typeof prefix !== 'string' || prefix.length === 0) check.fail('shared.prefix', prefix, "pass a non-empty string, e.g. `prefix: 'orq-identity:'`");
  let scope = options.namespace;
  if (scope !== undefined && (typeof scope !== 'string' || scope.length === 0)) check.fail('shared.namespace', scope, "pass a non-empty string naming the orq workspace, e.g. `namespace: 'prod'`");
  if (scope === undefined) {
    const { apiKey, serverURL } = credentials;
    if (typeof apiKey !== 'string' || apiKey.length === 0) {
      check.fail('shared.namespace', scope, "the API key of your client cannot be read to tell workspaces apart: pass `namespace: 'name-of-the-workspace'`");
    }
    scope = workspaceScope(apiKey, typeof serverURL === 'string' ? serverURL : 'https://api.orq.ai');
  }
  const store = new RedisStore({
    send,
    prefix: prefix.endsWith(':') ? prefix : `${prefix}:`,
    scope,
    commandTimeoutMs: check.milliseconds('shared.commandTimeoutMs', options.commandTimeoutMs, 250),
    report,
  });
  guardErrorEvents(options.redis, (error) => store.connectionError(error));
  return store;
}
