// toPublicIdentity gives exactly what the SDK's `identity` field takes, and the SDK sends it unchanged.
import type { PublicIdentity } from '@orq-ai/node/models/components/publicidentity.js';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { toPublicIdentity, type OrqIdentity, type OrqPublicIdentity } from '../src/index.js';
import { orqClientFor, startEmulator } from './helpers.js';

const identity: OrqIdentity = Object.freeze({
  id: 'contact_01ARZ3NDEKTSV4RRFFQ69G5FAV',
  externalId: 'user_12345',
  displayName: 'Jane',
  email: 'jane@example.com',
  avatarUrl: 'https://example.com/jane.png',
  tags: Object.freeze(['premium']),
  metadata: Object.freeze({ plan: 'pro' }),
});

describe('toPublicIdentity', () => {
  it('uses the external id as id and carries only fields of the same shape on both sides', () => {
    expect(toPublicIdentity(identity)).toEqual({ id: 'user_12345', displayName: 'Jane', email: 'jane@example.com', tags: ['premium'] });
    expect(toPublicIdentity({ id: 'contact_1', externalId: 'bare' })).toEqual({ id: 'bare' });
  });

  it('leaves out absent fields entirely rather than sending them as undefined', () => {
    // The SDK serialises whatever keys it gets; an undefined key must not exist to begin with.
    expect(Object.keys(toPublicIdentity({ id: 'contact_1', externalId: 'bare' }))).toEqual(['id']);
    expect(toPublicIdentity({ id: 'contact_1', externalId: 'bare' })).toStrictEqual({ id: 'bare' });
    expect(Object.keys(toPublicIdentity(identity))).toEqual(['id', 'displayName', 'email', 'tags']);
  });

  it('hands out a copy of the tags, so the caller may change it without touching the cached identity', () => {
    const publicIdentity = toPublicIdentity(identity);
    expect(publicIdentity.tags).not.toBe(identity.tags);
    publicIdentity.tags?.push('changed');
    expect(identity.tags).toEqual(['premium']);
  });

  it('is assignable to the SDK type', () => {
    expectTypeOf<OrqPublicIdentity>().toExtend<PublicIdentity>();
  });

  it('is accepted by deployments.invoke and arrives as the identity orq receives', async () => {
    const emulator = await startEmulator({ shape: 'sdk' });
    const orq = orqClientFor(emulator);
    await orq.deployments.invoke({ key: 'support-bot', identity: toPublicIdentity(identity), messages: [{ role: 'user', content: 'hi' }] });
    expect(emulator.calls[0]?.body).toMatchObject({
      key: 'support-bot',
      identity: { id: 'user_12345', display_name: 'Jane', email: 'jane@example.com', tags: ['premium'] },
    });
    expect(JSON.stringify(emulator.calls[0]?.body)).not.toContain('contact_');
  });
});
