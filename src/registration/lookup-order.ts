// Which call a lookup of a user unknown to the cache and the store makes first. The card's order (retrieve, then
// create on a 404) costs a brand-new user two calls; while an app is registering its population (the last lookups
// all answered 404) creating first costs one, and a conflict (the user existed) settles it with a retrieve.

/** `adaptive`: create first while recent lookups were all new users; `retrieve-first`: always the card's order. */
export type LookupOrderOption = 'adaptive' | 'retrieve-first';

/** Lookups in a row that found a new user before creating first: enough that a run of them is no coincidence. */
export const newUsersBeforeCreateFirst = 10;

export class LookupOrder {
  private newInARow = 0;
  private creating = false;

  constructor(private readonly adaptive: boolean) {}

  /** Whether the next lookup of a user unknown here creates first. Synchronous. */
  get createsFirst(): boolean {
    return this.creating;
  }

  get name(): 'create-first' | 'retrieve-first' {
    return this.creating ? 'create-first' : 'retrieve-first';
  }

  /** A retrieve-first lookup's retrieve answered: the user existed (`found`) or was new to orq (a 404). */
  retrieved(found: boolean): void {
    if (found) {
      this.newInARow = 0;
      return;
    }
    this.newInARow += 1;
    if (this.adaptive && this.newInARow >= newUsersBeforeCreateFirst) this.creating = true;
  }

  /** A create-first lookup's create was refused as a duplicate: users that already exist are arriving again. */
  conflicted(): void {
    this.creating = false;
    this.newInARow = 0;
  }
}
