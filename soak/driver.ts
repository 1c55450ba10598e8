// The load driver: R requests a second, open loop (a slow fleet does not slow the traffic down), from the
// population, spread round-robin over the instances that are up, each request bounded by a deadline so a hang
// counts as a failure instead of stalling the run.
import type { Checks } from './checks.js';
import type { AppProcess } from './fleet.js';
import type { Population } from './population.js';

export interface DriverOptions {
  rate: number;
  /** Share of requests that make an LLM call. */
  llmShare: number;
  /** A request not answered by then is failed as hung. */
  requestTimeoutMs: number;
  /** Most requests in flight at once: past it, slots are skipped and counted (the driver stays bounded). */
  maxInFlight: number;
}

export class Driver {
  private sent = 0;
  private nextTarget = 0;
  private inFlight = 0;
  private readonly settled = new Set<Promise<void>>();
  /** Slots not sent because maxInFlight requests were still open. */
  skipped = 0;
  /** Slots not sent because no instance was up. */
  noInstance = 0;

  constructor(
    private readonly options: DriverOptions,
    private readonly apps: readonly AppProcess[],
    private readonly population: Population,
    private readonly checks: Checks,
    private readonly startedAt: number,
    private readonly random: () => number,
  ) {}

  /** Sends requests until `durationMs` after the start, then waits for the ones in flight. */
  async run(durationMs: number): Promise<void> {
    const tickMs = 50;
    while (performance.now() - this.startedAt < durationMs) {
      const due = Math.floor(((performance.now() - this.startedAt) / 1000) * this.options.rate);
      while (this.sent < due) {
        this.sent += 1;
        this.send();
      }
      await new Promise((resolve) => setTimeout(resolve, tickMs));
    }
    await Promise.all(this.settled);
  }

  private send(): void {
    if (this.inFlight >= this.options.maxInFlight) {
      this.skipped += 1;
      return;
    }
    const app = this.pickApp();
    if (app === undefined) {
      this.noInstance += 1;
      return;
    }
    const at = performance.now() - this.startedAt;
    const visitor = this.population.next(at);
    const user = visitor.kind === 'anonymous' ? undefined : visitor.user;
    const llm = this.random() < this.options.llmShare;
    const requestId = `r${this.sent}`;
    if (llm) this.checks.expectLlm(requestId, user);
    const headers: Record<string, string> = { 'x-soak-request': requestId };
    if (user !== undefined) headers['x-user'] = user;
    this.inFlight += 1;
    app.inFlight += 1;
    const done = (async () => {
      let status = 0;
      let body: unknown;
      let error: string | undefined;
      try {
        const response = await fetch(`${app.base}/work${llm ? '?llm=1' : ''}`, { headers, signal: AbortSignal.timeout(this.options.requestTimeoutMs) });
        status = response.status;
        body = await response.json().catch(() => undefined);
      } catch (caught) {
        error = caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught);
      }
      const end = performance.now() - this.startedAt;
      this.checks.answer({ at, requestId, user, llm, ms: end - at, status, error, body });
      if (user !== undefined) this.population.done(user, end);
    })().finally(() => {
      this.inFlight -= 1;
      app.inFlight -= 1;
      this.settled.delete(done);
    });
    this.settled.add(done);
  }

  private pickApp(): AppProcess | undefined {
    for (let tried = 0; tried < this.apps.length; tried += 1) {
      const app = this.apps[this.nextTarget % this.apps.length] as AppProcess;
      this.nextTarget += 1;
      if (app.up) return app;
    }
    return undefined;
  }
}
