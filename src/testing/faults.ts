// Faults a test injects to stand in for the network and the gateway: statuses, hangs, resets, latency.
import { json, type Operation, type ParsedRequest, type Reply } from './http.js';

export type FaultEffect =
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> | undefined }
  /** The body exactly as given (invalid JSON, empty), and no content type unless `headers` sets one. */
  | { kind: 'raw'; status: number; body?: string; headers?: Record<string, string> | undefined }
  /** A JSON body echoing the request's headers, as some gateways and proxies do on errors (Authorization included). */
  | { kind: 'echo'; status: number }
  | { kind: 'hang' }
  | { kind: 'reset' }
  | { kind: 'latency'; ms: number };

export type Fault = FaultEffect & {
  operation?: Operation | 'any' | undefined;
  times?: number | undefined;
};

interface PendingFault {
  readonly fault: Fault;
  remaining: number;
}

export class FaultQueue {
  private pending: PendingFault[] = [];

  add(fault: Fault): void {
    this.pending.push({ fault, remaining: fault.times ?? Infinity });
  }

  clear(): void {
    this.pending = [];
  }

  take(operation: Operation): Fault | undefined {
    const entry = this.pending.find((candidate) => FaultQueue.matches(candidate.fault, operation));
    if (entry === undefined) return undefined;
    entry.remaining -= 1;
    this.pending = this.pending.filter((candidate) => candidate.remaining > 0);
    return entry.fault;
  }

  private static matches(fault: Fault, operation: Operation): boolean {
    const target = fault.operation ?? 'any';
    return target === 'any' || target === operation;
  }
}

export function faultReply(fault: Fault, request: ParsedRequest): Reply | undefined {
  switch (fault.kind) {
    case 'status':
      return json(fault.status, fault.body ?? { error: `Injected ${fault.status}` }, fault.headers);
    case 'raw':
      return { kind: 'raw', status: fault.status, body: fault.body ?? '', headers: fault.headers };
    case 'echo':
      return json(fault.status, { error: 'Echoing your request', headers: request.headers });
    case 'hang':
    case 'reset':
      return { kind: fault.kind };
    case 'latency':
      return undefined;
  }
}
