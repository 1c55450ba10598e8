// One check, shared by the secrets tests and the property suite: the API key appears nowhere an app could print an error.
import { inspect } from 'node:util';
import { expect } from 'vitest';

/** Every way an app might print an error: its message, stack, JSON, and util.inspect with causes and hidden fields. */
export function expectNoKey(errors: readonly unknown[], secret: string): void {
  for (const error of errors) {
    const renderings = [
      String((error as Error).message),
      String((error as Error).stack),
      JSON.stringify(error),
      inspect(error, { depth: Infinity, showHidden: true }),
    ];
    for (const text of renderings) {
      expect(text).not.toContain(secret);
      expect(text).not.toMatch(/Bearer (?!\[redacted\])/);
    }
  }
}
