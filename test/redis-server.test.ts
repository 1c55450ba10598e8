// The Redis test server itself: real, loopback-only, without persistence, and killable for the failure tests.
import { expect, it } from 'vitest';
import { describeRedis, startRedis } from './redis.js';

describeRedis('test redis-server', () => {
  it('starts on a free loopback port with persistence off, dies on kill and comes back empty', async () => {
    const redis = await startRedis();
    expect(await redis.command('PING')).toContain('PONG');
    expect(await redis.command('CONFIG', 'GET', 'save')).toMatch(/save\r\n\$0\r\n/);
    expect(await redis.command('CONFIG', 'GET', 'appendonly')).toContain('no');
    await redis.command('SET', 'k', 'v');

    await redis.kill();
    expect(redis.running).toBe(false);
    await expect(redis.command('PING')).rejects.toThrow();

    await redis.restart();
    expect(await redis.command('GET', 'k')).toBe('$-1\r\n');
  });
});
