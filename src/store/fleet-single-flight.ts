// Fleet-wide single flight: of all instances that miss the same user at once, the lease holder calls orq and the
// others read its answer from the store. The create-conflict path in the resolver stays the safety net.
import type { OrqIdentity } from '../types.js';
import { unavailable, type RedisStore, type StoredIdentity } from './redis-store.js';

export interface FleetFlightOptions {
  /** How long a lease holds when its holder dies without releasing it; the holder's lookup deadline. */
  leaseMs: number;
  /**
   * Epoch ms after which waiting for another instance stops and this one looks the user up itself: a holder that
   * lost Redis mid-lookup can neither write its answer nor release its lease, and must not strand the others.
   */
  deadline: number;
  /** The work only the lease holder does; its identity is written for the others. */
  work: () => Promise<OrqIdentity>;
  /** How long the written identity stays usable in the store. */
  keepMs: number;
}

/** Where the identity came from: orq through us (`own`), or another instance (`fleet`). */
export interface FlightResult {
  entry: StoredIdentity;
  source: 'own' | 'fleet';
}

const firstPollMs = 10;
const maxPollMs = 100;

/**
 * Runs `work` once across the fleet for this user. Without the store (Redis failing) it runs here, so a Redis
 * outage costs at most one lookup per instance, never a failed request. Waiters poll with a short back-off
 * rather than subscribe: pub/sub needs a dedicated connection we would have to open behind the app's back.
 */
export async function fleetSingleFlight(store: RedisStore, externalId: string, options: FleetFlightOptions): Promise<FlightResult> {
  let pollMs = firstPollMs;
  for (;;) {
    const lease = await store.acquireLease(externalId, 'lookup', options.leaseMs);
    if (lease === unavailable) return own(store, options);
    if (lease !== undefined) {
      try {
        // Another holder may have finished between our last read and our lease: its answer saves the call.
        const done = await store.readIdentity(externalId);
        if (done !== undefined && done !== unavailable) return { entry: done, source: 'fleet' };
        return await own(store, options);
      } finally {
        await store.releaseLease(externalId, 'lookup', lease);
      }
    }
    // Past our patience: look the user up here. Should the holder be alive after all, orq's create conflict settles it.
    if (Date.now() + pollMs > options.deadline) return own(store, options);
    await sleep(pollMs);
    pollMs = Math.min(maxPollMs, pollMs * 2);
    const entry = await store.readIdentity(externalId);
    if (entry === unavailable) return own(store, options);
    if (entry !== undefined) return { entry, source: 'fleet' };
    // No answer yet: either the holder is still working, or it failed and released; asking for the lease tells which.
  }
}

/** The lookup done here; its answer is written even when Redis failed a moment ago (the breaker skips it if still down). */
async function own(store: RedisStore, options: FleetFlightOptions): Promise<FlightResult> {
  const identity = await options.work();
  const entry = { identity, fetchedAt: Date.now() };
  await store.writeIdentity(entry, options.keepMs);
  return { entry, source: 'own' };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
