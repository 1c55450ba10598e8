// What the soak runner and its app processes tell each other over IPC.

export interface AppSpec {
  index: number;
  orqUrl: string;
  apiKey: string;
  redisUrl: string;
  /** Both Redis clients the package supports, alternating across instances. */
  client: 'ioredis' | 'node-redis';
}

export interface Unhandled {
  kind: 'unhandledRejection' | 'uncaughtException';
  message: string;
}

export interface AppSample {
  rssMiB: number;
  heapUsedMiB: number;
  cacheSize: number;
  circuit: string;
  /** onError reports so far, by code. */
  errorsByCode: Record<string, number>;
}

export type AppToParent =
  | { type: 'ready'; port: number }
  | { type: 'unhandled'; unhandled: Unhandled }
  | { type: 'reply'; id: number; sample: AppSample };
