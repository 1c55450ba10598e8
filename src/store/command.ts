// One command function over whichever Redis client the app hands in (node-redis 4/5, ioredis), as rate-limit-redis does.

/** Sends one Redis command (`['SET', key, value, 'PX', '1000']`) and resolves to its reply. */
export type SendCommand = (args: string[]) => Promise<unknown>;

/**
 * A client we can send raw commands through: node-redis 4/5 (`sendCommand(args)`), ioredis and its Cluster
 * (`call(command, ...args)`), or your own function for anything else (a node-redis cluster, a Valkey client).
 */
export type RedisClientLike =
  | { sendCommand(args: string[]): Promise<unknown> }
  | { call(command: string, ...args: string[]): Promise<unknown> }
  | SendCommand;

interface ErrorEmitter {
  on(event: 'error', listener: (error: unknown) => void): unknown;
  listenerCount(event: 'error'): number;
}

/** Undefined when `client` is none of the shapes above. */
export function commandFunction(client: unknown): SendCommand | undefined {
  if (typeof client === 'function') return client as SendCommand;
  if (client === null || typeof client !== 'object') return undefined;
  const candidate = client as { call?: unknown; sendCommand?: unknown };
  // ioredis has both; its sendCommand takes a Command object, so `call` is asked first.
  if (typeof candidate.call === 'function') {
    const call = candidate.call as (command: string, ...args: string[]) => Promise<unknown>;
    return (args) => call.call(client, args[0] as string, ...args.slice(1));
  }
  if (typeof candidate.sendCommand === 'function') {
    const sendCommand = candidate.sendCommand as (args: string[]) => Promise<unknown>;
    return (args) => sendCommand.call(client, args);
  }
  return undefined;
}

/**
 * Both clients emit `error` on every failed (re)connection, and an EventEmitter with no `error` listener throws:
 * a Redis blip would crash the app. When the app listens already, we leave its handling alone; otherwise we add
 * a listener that hands the errors to `onError`. Returns whether we added one.
 */
export function guardErrorEvents(client: unknown, onError: (error: unknown) => void): boolean {
  if (client === null || typeof client !== 'object') return false;
  const emitter = client as Partial<ErrorEmitter>;
  if (typeof emitter.on !== 'function' || typeof emitter.listenerCount !== 'function') return false;
  if (emitter.listenerCount('error') > 0) return false;
  emitter.on('error', onError);
  return true;
}
