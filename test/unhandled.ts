// A rejection nobody handles would exit a Node 20 app: tests that feed hostile input assert there was none.
import { expect } from 'vitest';

/** Runs `body`, then waits `settleMs` for late rejections, failing if anything rejected unhandled meanwhile. */
export async function withoutUnhandledRejections(body: () => Promise<void>, settleMs = 20): Promise<void> {
  const seen: unknown[] = [];
  const listener = (reason: unknown): void => { seen.push(reason); };
  process.on('unhandledRejection', listener);
  try {
    await body();
    await new Promise((resolve) => setTimeout(resolve, settleMs));
  } finally {
    process.off('unhandledRejection', listener);
  }
  expect(seen).toEqual([]);
}
