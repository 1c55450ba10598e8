// Turns the package's diagnostics_channel events and stats() into OpenTelemetry metrics. The package itself
// depends on no telemetry library: this file is yours to copy, with @opentelemetry/api in your app.
import diagnosticsChannel from 'node:diagnostics_channel';
import { metrics, type BatchObservableCallback, type Meter } from '@opentelemetry/api';
import { orqIdentityChannels, type OrqCallEvent, type OrqIdentityMiddleware, type OrqLookupEvent } from '../../src/index.js';

/**
 * Records `orq_identity.call.duration` and `orq_identity.lookup.duration` histograms from the events, and
 * observable gauges for the cache size and the circuit from `identity.stats()`. Returns a function that stops it.
 */
export function recordOrqIdentityMetrics(identity: OrqIdentityMiddleware, meter: Meter = metrics.getMeter('express-orq-identity')): () => void {
  const callDuration = meter.createHistogram('orq_identity.call.duration', {
    unit: 'ms',
    description: 'Calls to the orq identities API, by operation and outcome (each retry is a call).',
  });
  const lookupDuration = meter.createHistogram('orq_identity.lookup.duration', {
    unit: 'ms',
    description: 'Lookups of a user (retrieve, create on 404, retries), by outcome.',
  });
  const coalesced = meter.createCounter('orq_identity.lookup.coalesced', {
    description: 'Requests that joined a lookup already under way instead of starting one.',
  });
  const cacheSize = meter.createObservableGauge('orq_identity.cache.size', { description: 'Identities cached.' });
  const circuitOpen = meter.createObservableGauge('orq_identity.circuit.open', {
    description: '1 while calls to orq are paused after failures, else 0.',
  });
  // One stats() per collection, not per instrument: a snapshot is cheap, but there is no need for two.
  const observeStats: BatchObservableCallback = (result) => {
    const stats = identity.stats();
    result.observe(cacheSize, stats.cache.size);
    result.observe(circuitOpen, stats.circuit.state === 'open' ? 1 : 0);
  };
  meter.addBatchObservableCallback(observeStats, [cacheSize, circuitOpen]);

  const onCall = (message: unknown): void => {
    const event = message as OrqCallEvent;
    callDuration.record(event.durationMs, {
      'orq.operation': event.operation,
      'orq.outcome': event.outcome,
      ...(event.statusCode !== undefined && { 'http.response.status_code': event.statusCode }),
    });
  };
  const onLookup = (message: unknown): void => {
    const event = message as OrqLookupEvent;
    lookupDuration.record(event.durationMs, { 'orq.outcome': event.outcome });
    if (event.coalesced > 0) coalesced.add(event.coalesced);
  };
  diagnosticsChannel.subscribe(orqIdentityChannels.call, onCall);
  diagnosticsChannel.subscribe(orqIdentityChannels.lookup, onLookup);

  return () => {
    diagnosticsChannel.unsubscribe(orqIdentityChannels.call, onCall);
    diagnosticsChannel.unsubscribe(orqIdentityChannels.lookup, onLookup);
    meter.removeBatchObservableCallback(observeStats, [cacheSize, circuitOpen]);
  };
}
