// The OpenTelemetry example: the events and stats() become metrics in a real SDK MeterProvider.
import { AggregationTemporality, MeterProvider, MetricReader, type HistogramMetricData, type MetricData } from '@opentelemetry/sdk-metrics';
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { orqIdentity } from '../../src/index.js';
import { recordOrqIdentityMetrics } from '../../examples/opentelemetry/metrics.js';
import { startEmulator } from '../helpers.js';

/** Collects on demand, as a Prometheus scrape would. */
class OnDemandReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

async function collect(reader: MetricReader): Promise<Map<string, MetricData>> {
  const { resourceMetrics } = await reader.collect();
  return new Map(resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).map((metric) => [metric.descriptor.name, metric]));
}

describe('examples/opentelemetry', () => {
  it('records call and lookup durations by operation and outcome, and cache and circuit gauges from stats()', async () => {
    const emulator = await startEmulator({ latencyMs: 10 });
    const reader = new OnDemandReader();
    const provider = new MeterProvider({ readers: [reader] });
    const identity = orqIdentity({ apiKey: emulator.apiKey, serverURL: emulator.url, getUser: (req) => req.header('x-user-id') });
    const stop = recordOrqIdentityMetrics(identity, provider.getMeter('test'));
    const app = express();
    app.use(identity);
    app.get('/', (_req, res) => res.end());

    await Promise.all([1, 2, 3].map(() => request(app).get('/').set('x-user-id', 'ada').expect(200)));
    emulator.seed({ externalId: 'grace' });
    await request(app).get('/').set('x-user-id', 'grace').expect(200);

    const collected = await collect(reader);
    const calls = (collected.get('orq_identity.call.duration') as HistogramMetricData).dataPoints;
    expect(calls.map((point) => [point.attributes, point.value.count])).toEqual(expect.arrayContaining([
      [{ 'orq.operation': 'retrieve', 'orq.outcome': 'not-found', 'http.response.status_code': 404 }, 1],
      [{ 'orq.operation': 'create', 'orq.outcome': 'ok' }, 1],
      [{ 'orq.operation': 'retrieve', 'orq.outcome': 'ok' }, 1],
    ]));
    expect(calls).toHaveLength(3);
    const lookups = (collected.get('orq_identity.lookup.duration') as HistogramMetricData).dataPoints;
    expect(lookups.map((point) => [point.attributes, point.value.count])).toEqual(expect.arrayContaining([
      [{ 'orq.outcome': 'created' }, 1],
      [{ 'orq.outcome': 'found' }, 1],
    ]));
    expect(collected.get('orq_identity.lookup.coalesced')?.dataPoints[0]?.value).toBe(2);
    expect(collected.get('orq_identity.cache.size')?.dataPoints[0]?.value).toBe(2);
    expect(collected.get('orq_identity.circuit.open')?.dataPoints[0]?.value).toBe(0);

    stop();
    await request(app).get('/').set('x-user-id', 'newcomer').expect(200);
    const after = (await collect(reader)).get('orq_identity.call.duration') as HistogramMetricData;
    expect(after.dataPoints).toHaveLength(3);
    await identity.close();
    await provider.shutdown();
  });
});
