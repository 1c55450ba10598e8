// One command function over whichever client the app hands in, and the error listener an unguarded client needs.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { commandFunction, guardErrorEvents } from '../../src/store/command.js';

describe('commandFunction', () => {
  it('takes a function as it is', () => {
    const send = async () => 'OK';
    expect(commandFunction(send)).toBe(send);
  });

  it('sends through ioredis-style `call(command, ...args)`, on the client, even when it also has sendCommand', async () => {
    const client = {
      name: 'ioredis',
      async call(this: { name: string }, command: string, ...args: string[]) {
        return [this.name, command, ...args];
      },
      async sendCommand() {
        return 'wrong';
      },
    };
    await expect(commandFunction(client)?.(['SET', 'k', 'v'])).resolves.toEqual(['ioredis', 'SET', 'k', 'v']);
  });

  it('sends through node-redis-style `sendCommand(args)`, on the client', async () => {
    const client = {
      name: 'node-redis',
      async sendCommand(this: { name: string }, args: string[]) {
        return [this.name, args];
      },
    };
    await expect(commandFunction(client)?.(['GET', 'k'])).resolves.toEqual(['node-redis', ['GET', 'k']]);
  });

  it.each([null, undefined, 'redis://localhost', 6379, {}, { call: 'no' }, { sendCommand: true }])('finds no way to send through %o', (client) => {
    expect(commandFunction(client)).toBeUndefined();
  });
});

describe('guardErrorEvents', () => {
  it('listens on a client nobody listens on, and hands it the errors', () => {
    const client = new EventEmitter();
    const seen: unknown[] = [];
    expect(guardErrorEvents(client, (error) => seen.push(error))).toBe(true);
    const error = new Error('lost');
    client.emit('error', error);
    expect(seen).toEqual([error]);
  });

  it('leaves alone a client the app listens on already', () => {
    const client = new EventEmitter();
    const own = () => undefined;
    client.on('error', own);
    expect(guardErrorEvents(client, () => undefined)).toBe(false);
    expect(client.listeners('error')).toEqual([own]);
  });

  it('adds nothing to what is not an emitter with both on() and listenerCount()', () => {
    const added: unknown[] = [];
    const on = (event: string) => added.push(event);
    for (const client of [async () => 'OK', null, 'client', { listenerCount: () => 0 }, { on: 'on', listenerCount: () => 0 }, { on }, { on, listenerCount: 0 }]) {
      expect(guardErrorEvents(client, () => undefined)).toBe(false);
    }
    expect(added).toEqual([]);
    expect(guardErrorEvents({ on, listenerCount: () => 0 }, () => undefined)).toBe(true);
    expect(added).toEqual(['error']);
  });
});
