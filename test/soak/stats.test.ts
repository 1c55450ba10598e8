// Percentiles, medians and growth as the soak reports them, and the command line it takes.
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../soak/args.js';
import { growthPct, median, percentile } from '../../soak/stats.js';
import { failedChecks, memoryWindow, type MemorySample } from '../../soak/summary.js';

describe('percentile', () => {
  it('is the nearest rank, whatever the order of the values', () => {
    const values = Array.from({ length: 100 }, (_, index) => 100 - index);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile(values, 0)).toBe(1);
    expect(percentile([5], 99)).toBe(5);
    expect(median([3, 1, 2])).toBe(2);
    expect(percentile([], 99)).toBeNaN();
  });
});

describe('growthPct', () => {
  it('is the change relative to the start', () => {
    expect(growthPct(100, 110)).toBeCloseTo(10);
    expect(growthPct(100, 90)).toBeCloseTo(-10);
    expect(growthPct(0, 10)).toBeNaN();
  });
});

describe('memoryWindow', () => {
  it('takes instance 0’s medians just after the warm-up and at the end, ignoring the others', () => {
    const samples: MemorySample[] = [];
    for (let atMs = 0; atMs <= 180_000; atMs += 5_000) {
      samples.push({ atMs, index: 0, rssMiB: atMs < 30_000 ? 50 : atMs < 150_000 ? 80 : 88, heapUsedMiB: 20, cacheSize: 0, circuit: 'closed' });
      samples.push({ atMs, index: 1, rssMiB: 500, heapUsedMiB: 300, cacheSize: 0, circuit: 'closed' });
    }
    expect(memoryWindow(samples, 30_000, 180_000, 'rssMiB')).toEqual({ start: 80, end: 88 });
  });
});

describe('failedChecks', () => {
  it('names each check above 0, and nothing when all are 0', () => {
    expect(failedChecks({ failedRequests: 0, wrongUser: 0, unhandled: 0, llmCallsUnattributed: 0 })).toEqual([]);
    expect(failedChecks({ failedRequests: 2, wrongUser: 0, unhandled: 1, llmCallsUnattributed: 0 })).toEqual(['failedRequests=2', 'unhandled=1']);
  });
});

describe('parseArgs', () => {
  it('reads the flags and keeps the defaults for the others', () => {
    expect(parseArgs(['--minutes', '60', '--rate', '12.5'])).toEqual({ minutes: 60, instances: 2, rate: 12.5, seed: 1, out: 'bench/results' });
    expect(parseArgs([]).minutes).toBe(3);
  });

  it.each([
    [['--minutes']],
    [['--minutes', '0']],
    [['--instances', '1.5']],
    [['--rate', 'fast']],
    [['--verbose', '1']],
  ])('rejects %j', (argv) => {
    expect(() => parseArgs(argv)).toThrow(/usage: npm run soak/);
  });
});
