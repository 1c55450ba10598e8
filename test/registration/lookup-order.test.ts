// The lookup order: create first only after a run of new users, back to the card's order at the first conflict.
import { describe, expect, it } from 'vitest';
import { LookupOrder, newUsersBeforeCreateFirst } from '../../src/registration/lookup-order.js';

describe('LookupOrder', () => {
  it('adaptive: creates first after a run of 404s, and a user that existed starts the run again', () => {
    const order = new LookupOrder(true);
    for (let i = 1; i < newUsersBeforeCreateFirst; i++) order.retrieved(false);
    order.retrieved(true);
    for (let i = 1; i < newUsersBeforeCreateFirst; i++) order.retrieved(false);
    expect(order.name).toBe('retrieve-first');
    order.retrieved(false);
    expect([order.createsFirst, order.name]).toEqual([true, 'create-first']);
  });

  it('adaptive: one conflict puts the card\'s order back, and a new run is needed to leave it', () => {
    const order = new LookupOrder(true);
    for (let i = 0; i < newUsersBeforeCreateFirst; i++) order.retrieved(false);
    order.conflicted();
    expect(order.createsFirst).toBe(false);
    for (let i = 1; i < newUsersBeforeCreateFirst; i++) order.retrieved(false);
    expect(order.createsFirst).toBe(false);
  });

  it('retrieve-first never creates first, however many users are new', () => {
    const order = new LookupOrder(false);
    for (let i = 0; i < 10 * newUsersBeforeCreateFirst; i++) order.retrieved(false);
    expect(order.name).toBe('retrieve-first');
  });
});
