// Who sends the next request: a population with churn. New users arrive, known users come back after a gap
// (seconds within a session, minutes between sessions, sometimes many minutes), some leave for good, and a share
// of the traffic is anonymous (never authenticated). Seeded, so a run's traffic can be repeated.

export interface PopulationOptions {
  seed: number;
  /** Share of requests without a user (never authenticated). */
  anonymousShare?: number;
  /** Share of requests that are a new user's first, whatever the returning users' due times. */
  arrivalShare?: number;
  /** After each request, the chance the user never comes back. */
  leaveProbability?: number;
}

export type Visitor =
  | { kind: 'anonymous' }
  | { kind: 'new'; user: string }
  | { kind: 'returning'; user: string };

interface Due {
  user: string;
  at: number;
}

/** Return gaps in ms: [share, shortest, longest], log-uniform within each band. */
const GAP_BANDS: ReadonlyArray<readonly [number, number, number]> = [
  [0.7, 1_000, 10_000], // within a session
  [0.25, 15_000, 120_000], // back after a break
  [0.05, 300_000, 1_800_000], // back after many minutes
];

export class Population {
  private readonly random: () => number;
  private readonly anonymousShare: number;
  private readonly arrivalShare: number;
  private readonly leaveProbability: number;
  /** Users away, by when they come back: a binary min-heap on `at`. */
  private readonly heap: Due[] = [];
  private nextUser = 0;
  /** Users who made a request and have not left: at a request, in flight, or away. */
  active = 0;
  arrived = 0;
  left = 0;

  constructor(options: PopulationOptions) {
    this.random = mulberry32(options.seed);
    this.anonymousShare = options.anonymousShare ?? 0.1;
    this.arrivalShare = options.arrivalShare ?? 0.01;
    this.leaveProbability = options.leaveProbability ?? 0.01;
  }

  /** The visitor of a request sent at `now`: anonymous, a returning user whose gap is over, or else a new user. */
  next(now: number): Visitor {
    if (this.random() < this.anonymousShare) return { kind: 'anonymous' };
    const due = this.heap[0];
    if (this.random() >= this.arrivalShare && due !== undefined && due.at <= now) {
      this.pop();
      return { kind: 'returning', user: due.user };
    }
    // Nobody due: the population is too small for the rate, so it grows (how a run ramps up from empty).
    this.nextUser += 1;
    this.arrived += 1;
    this.active += 1;
    return { kind: 'new', user: `soak-user-${this.nextUser}` };
  }

  /** After `user`'s request ended at `now`: it leaves, or comes back after a gap. */
  done(user: string, now: number): void {
    if (this.random() < this.leaveProbability) {
      this.active -= 1;
      this.left += 1;
      return;
    }
    this.push({ user, at: now + this.gap() });
  }

  /** Users away right now (waiting for their gap to end). */
  get away(): number {
    return this.heap.length;
  }

  private gap(): number {
    let pick = this.random();
    for (const [share, low, high] of GAP_BANDS) {
      if (pick < share) return Math.round(low * (high / low) ** this.random());
      pick -= share;
    }
    const [, low] = GAP_BANDS[0] as readonly [number, number, number];
    return low;
  }

  private push(entry: Due): void {
    const heap = this.heap;
    heap.push(entry);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if ((heap[parent] as Due).at <= entry.at) break;
      heap[index] = heap[parent] as Due;
      index = parent;
    }
    heap[index] = entry;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop() as Due;
    if (heap.length === 0) return;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && (heap[right] as Due).at < (heap[left] as Due).at ? right : left;
      if ((heap[child] as Due).at >= last.at) break;
      heap[index] = heap[child] as Due;
      index = child;
    }
    heap[index] = last;
  }
}

/** A small seeded generator (mulberry32): the same seed gives the same traffic. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
