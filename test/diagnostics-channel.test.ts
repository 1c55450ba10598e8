// Events on node:diagnostics_channel: one per call to orq and one per lookup, with nothing identifying in them.
import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { orqIdentityChannels, type OrqCallEvent, type OrqLookupEvent } from '../src/index.js';
import { startApp } from './helpers.js';

const unsubscribes: Array<() => void> = [];
afterEach(() => {
  for (const unsubscribe of unsubscribes.splice(0)) unsubscribe();
});

function record<T>(name: string): T[] {
  const events: T[] = [];
  const listener = (message: unknown): void => {
    events.push(message as T);
  };
  diagnosticsChannel.subscribe(name, listener);
  unsubscribes.push(() => diagnosticsChannel.unsubscribe(name, listener));
  return events;
}

describe('diagnostics_channel events', () => {
  it('are published under the documented names', () => {
    expect(orqIdentityChannels).toEqual({ call: 'express-orq-identity:call', lookup: 'express-orq-identity:lookup' });
  });

  it('report every call (operation, outcome, status, attempt, duration) and every lookup (outcome, duration, coalesced)', async () => {
    const calls = record<OrqCallEvent>(orqIdentityChannels.call);
    const lookups = record<OrqLookupEvent>(orqIdentityChannels.lookup);
    const { whoami, emulator } = await startApp({ emulator: { latencyMs: 20 } });

    await Promise.all(Array.from({ length: 3 }, () => whoami('ada').expect(200)));
    expect(calls).toEqual([
      { operation: 'retrieve', outcome: 'not-found', statusCode: 404, attempt: 0, durationMs: expect.any(Number) },
      { operation: 'create', outcome: 'ok', statusCode: undefined, attempt: 0, durationMs: expect.any(Number) },
    ]);
    expect(calls.every((event) => event.durationMs >= 15)).toBe(true);
    expect(lookups).toEqual([{ outcome: 'created', durationMs: expect.any(Number), coalesced: 2 }]);

    emulator.seed({ externalId: 'grace' });
    emulator.inject({ kind: 'status', status: 503, times: 1 });
    await whoami('grace').expect(200);
    expect(calls.slice(2)).toEqual([
      { operation: 'retrieve', outcome: 'http', statusCode: 503, attempt: 0, durationMs: expect.any(Number) },
      { operation: 'retrieve', outcome: 'ok', statusCode: undefined, attempt: 1, durationMs: expect.any(Number) },
    ]);
    expect(lookups[1]).toEqual({ outcome: 'found', durationMs: expect.any(Number), coalesced: 0 });
  });

  it('never carry the API key, user ids or profile fields', async () => {
    const calls = record<unknown>(orqIdentityChannels.call);
    const lookups = record<unknown>(orqIdentityChannels.lookup);
    const { whoami, emulator } = await startApp({
      middleware: {
        getUser: (req) => {
          const id = req.header('x-user');
          return id === undefined ? undefined : { externalId: id, displayName: 'Secret Name', email: 'secret@example.com' };
        },
      },
    });
    emulator.inject({ kind: 'status', status: 401, times: 1 });
    await whoami('private-user-id').expect(200);
    await whoami('private-user-id-2').expect(200);
    const published = JSON.stringify([...calls, ...lookups]);
    expect(calls.length + lookups.length).toBeGreaterThan(0);
    for (const secret of [emulator.apiKey, 'private-user-id', 'Secret Name', 'secret@example.com']) expect(published).not.toContain(secret);
  });
});
