// The spend guard example: users over their 30-day budget get 429, others pass.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../examples/spend-guard/app.js';
import { startEmulator } from '../helpers.js';

describe('examples/spend-guard', () => {
  it('answers 429 over the limit and lets users under it through', async () => {
    const emulator = await startEmulator();
    emulator.seed({ externalId: 'big-spender' });
    emulator.setUsage('big-spender', { totalCost: 12.5, totalTokens: 1e6, totalRequests: 900, errorRate: 0 });
    emulator.seed({ externalId: 'frugal' });
    emulator.setUsage('frugal', { totalCost: 0.4, totalTokens: 1e3, totalRequests: 3, errorRate: 0 });
    const { app, identity } = createApp({ apiKey: emulator.apiKey, serverURL: emulator.url, maxCostUsd: 10 });

    const refused = await request(app).post('/ai/summarise').set('x-user-id', 'big-spender').expect(429);
    expect(refused.body.error).toBe('You used $12.50 of AI in the last 30 days; the limit is $10.00.');
    await request(app).post('/ai/summarise').set('x-user-id', 'frugal').expect(200);
    await request(app).post('/ai/summarise').set('x-user-id', 'newcomer').expect(200);
    await identity.close();
  });
});
