// Counts the async resources (promises, timers) that code creates while it runs: what the hot path must not make.
import { createHook } from 'node:async_hooks';

/** How many async resources of `type` ('PROMISE', 'Timeout', …) are created while `fn` runs synchronously. */
export function resourcesCreatedBy(type: string, fn: () => void): number {
  let created = 0;
  const hook = createHook({
    init(_asyncId, resourceType) {
      if (resourceType === type) created++;
    },
  });
  hook.enable();
  try {
    fn();
  } finally {
    hook.disable();
  }
  return created;
}
