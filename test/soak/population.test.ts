// The soak's population: seeded traffic, anonymous requests at the share asked, users back only after their gap,
// and churn (arrivals while nobody is due, departures).
import { describe, expect, it } from 'vitest';
import { FAULT_KINDS, orqFault, planFaults } from '../../soak/faults.js';
import { Population, type Visitor } from '../../soak/population.js';

function drive(population: Population, requests: number, stepMs: number): Visitor[] {
  const visitors: Visitor[] = [];
  for (let index = 0; index < requests; index += 1) {
    const now = index * stepMs;
    const visitor = population.next(now);
    visitors.push(visitor);
    if (visitor.kind !== 'anonymous') population.done(visitor.user, now);
  }
  return visitors;
}

describe('Population', () => {
  it('gives the same traffic for the same seed, and other traffic for another', () => {
    const a = drive(new Population({ seed: 7 }), 2_000, 50);
    expect(drive(new Population({ seed: 7 }), 2_000, 50)).toEqual(a);
    expect(drive(new Population({ seed: 8 }), 2_000, 50)).not.toEqual(a);
  });

  it('sends the anonymous share asked, and brings users back after a gap, not at once', () => {
    const population = new Population({ seed: 1, anonymousShare: 0.2 });
    const visitors = drive(population, 20_000, 50);
    const anonymous = visitors.filter((visitor) => visitor.kind === 'anonymous').length;
    expect(anonymous / visitors.length).toBeGreaterThan(0.18);
    expect(anonymous / visitors.length).toBeLessThan(0.22);
    const lastSeen = new Map<string, number>();
    let returning = 0;
    visitors.forEach((visitor, index) => {
      if (visitor.kind === 'anonymous') return;
      const previous = lastSeen.get(visitor.user);
      if (visitor.kind === 'returning') {
        returning += 1;
        // The shortest gap is a second: 20 requests of 50 ms.
        expect(previous).toBeDefined();
        expect((index - (previous as number)) * 50).toBeGreaterThanOrEqual(1_000);
      } else {
        expect(previous).toBeUndefined();
      }
      lastSeen.set(visitor.user, index);
    });
    expect(returning).toBeGreaterThan(visitors.length / 2);
  });

  it('keeps count of who arrived, left and is away', () => {
    const population = new Population({ seed: 3, leaveProbability: 0.5 });
    drive(population, 1_000, 100);
    expect(population.arrived).toBeGreaterThan(0);
    expect(population.left).toBeGreaterThan(0);
    expect(population.active).toBe(population.arrived - population.left);
    expect(population.away).toBe(population.active);
  });
});

describe('planFaults', () => {
  it('goes through every kind once in a 3-minute run, between the warm-up and the quiet end', () => {
    const schedule = planFaults(180_000);
    expect(schedule.faults.map((fault) => fault.kind)).toEqual([...FAULT_KINDS]);
    for (const fault of schedule.faults) {
      expect(fault.atMs).toBeGreaterThanOrEqual(schedule.warmUpMs);
      expect(fault.atMs + fault.durationMs).toBeLessThanOrEqual(schedule.quietFromMs);
    }
  });

  it('spaces faults by 3 minutes at most in an hour, and makes each kind happen more than once', () => {
    const schedule = planFaults(3_600_000);
    const gaps = schedule.faults.slice(1).map((fault, index) => fault.atMs - (schedule.faults[index] as { atMs: number }).atMs);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(180_000);
    for (const kind of FAULT_KINDS) expect(schedule.faults.filter((fault) => fault.kind === kind).length).toBeGreaterThan(1);
    expect(schedule.warmUpMs).toBe(300_000);
  });

  it('aims orq faults at the identity calls only (the LLM gateway answers the app’s own calls)', () => {
    for (const kind of FAULT_KINDS.filter((name) => name.startsWith('orq-'))) {
      expect(orqFault(kind).map((fault) => fault.operation)).toEqual(['retrieve', 'create', 'update']);
    }
    expect(orqFault('redis-restart')).toEqual([]);
    expect(orqFault('orq-429')[0]).toMatchObject({ status: 429, headers: { 'retry-after': '10' } });
  });
});
