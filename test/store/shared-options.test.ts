// The `shared` option at start-up: what it rejects and with which message, and the keys the store it makes uses.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { SharedStoreError } from '../../src/errors/shared-store-error.js';
import { OptionChecker } from '../../src/options.js';
import { makeSharedStore, workspaceScope } from '../../src/store/shared-options.js';

const check = new OptionChecker('orqIdentity');
const credentials = { apiKey: 'key-1', serverURL: 'https://eu.orq.ai' };

/** The key the store made from `shared` reads a user's identity under. */
async function identityKey(shared: Record<string, unknown>, given = credentials): Promise<string | undefined> {
  let key: string | undefined;
  const store = makeSharedStore(check, { redis: async (args: string[]) => { key = args[1]; return null; }, ...shared }, given, () => undefined);
  await store?.readIdentity('u1');
  return key;
}

describe('the shared option', () => {
  it('is off when left out or false', () => {
    expect(makeSharedStore(check, undefined, credentials, () => undefined)).toBeUndefined();
    expect(makeSharedStore(check, false, credentials, () => undefined)).toBeUndefined();
  });

  it.each([null, true, 'redis://localhost'])('rejects %o with what to pass', (shared) => {
    expect(() => makeSharedStore(check, shared, credentials, () => undefined)).toThrow(
      /^orqIdentity: invalid option `shared`, received .*; pass `\{ redis: client \}` with a connected node-redis or ioredis client\.$/,
    );
  });

  it('keys every entry by prefix, then a hash of the API key and server URL', async () => {
    expect(await identityKey({})).toBe(`orq-identity:{${workspaceScope('key-1', 'https://eu.orq.ai')}:u1}:identity`);
    expect(await identityKey({}, { apiKey: 'key-1', serverURL: undefined as unknown as string })).toBe(
      `orq-identity:{${workspaceScope('key-1', 'https://api.orq.ai')}:u1}:identity`,
    );
  });

  it('ends a prefix with a colon unless it has one; a namespace replaces the hash, and needs no readable key', async () => {
    expect(await identityKey({ prefix: 'app', namespace: 'prod' })).toBe('app:{prod:u1}:identity');
    expect(await identityKey({ prefix: 'app:', namespace: 'prod' }, { apiKey: undefined as unknown as string, serverURL: 'x' })).toBe('app:{prod:u1}:identity');
  });

  it.each([
    [{ prefix: '' }, /`shared\.prefix`, received `''`; pass a non-empty string, e\.g\. `prefix: 'orq-identity:'`\.$/],
    [{ prefix: 5 }, /`shared\.prefix`, received `5`; pass a non-empty string/],
    [{ namespace: '' }, /`shared\.namespace`, received `''`; pass a non-empty string naming the orq workspace, e\.g\. `namespace: 'prod'`\.$/],
    [{ namespace: 7 }, /`shared\.namespace`, received `7`; pass a non-empty string naming the orq workspace/],
    [{ commandTimeoutMs: -1 }, /`shared\.commandTimeoutMs`/],
  ])('rejects %o at start-up, saying what to pass', (shared, message) => {
    expect(() => makeSharedStore(check, { redis: async () => 'OK', ...shared }, credentials, () => undefined)).toThrow(message);
  });

  it.each([undefined, ''])('without a namespace, an API key of %o cannot tell workspaces apart: rejected', (apiKey) => {
    expect(() => makeSharedStore(check, { redis: async () => 'OK' }, { apiKey, serverURL: undefined }, () => undefined)).toThrow(
      /`shared\.namespace`, received `undefined`; the API key of your client cannot be read to tell workspaces apart: pass `namespace: 'name-of-the-workspace'`\.$/,
    );
  });

  it('rejects a redis that is no client, saying which clients work', () => {
    expect(() => makeSharedStore(check, { redis: 'redis://localhost' }, credentials, () => undefined)).toThrow(
      /^orqIdentity: invalid option `shared\.redis`, received .*; pass a connected node-redis client \(`createClient\(\)`\), an ioredis client \(`new Redis\(\)`\), or a function `\(args\) => Promise` that sends one command\.$/,
    );
  });

  it("hears the client's error events when the app does not: the store is skipped and that is reported", async () => {
    const client = Object.assign(new EventEmitter(), { sendCommand: async () => null });
    const reports: SharedStoreError[] = [];
    const store = makeSharedStore(check, { redis: client }, credentials, (error) => reports.push(error));
    client.emit('error', new Error('connect ECONNREFUSED'));
    expect(store?.available).toBe(false);
    expect(reports.map((report) => report.message.split('.')[0])).toEqual(['Shared store (Redis) connection failed: connect ECONNREFUSED']);
  });

  it('gives each command commandTimeoutMs', async () => {
    const reports: SharedStoreError[] = [];
    const store = makeSharedStore(check, { redis: () => new Promise(() => undefined), commandTimeoutMs: 20 }, credentials, (error) => reports.push(error));
    await store?.readIdentity('u1');
    expect(reports[0]?.message).toMatch(/no answer within commandTimeoutMs \(20 ms\)/);
  });
});
