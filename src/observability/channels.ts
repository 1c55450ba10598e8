// Events on node:diagnostics_channel (the convention of undici, fastify and pg): APM and OpenTelemetry subscribe
// by name, and nothing is built or published while no one does. Payloads never carry the API key, user ids or
// profile fields: only what a metric or a span needs.
import diagnosticsChannel from 'node:diagnostics_channel';
import type { OrqFailureKind, OrqOperation } from '../errors/orq-api-error.js';

/** How one call to orq ended: answered (`ok`, or `not-found` for a retrieve's 404), or how it failed. */
export type OrqCallOutcome = 'ok' | 'not-found' | OrqFailureKind | 'unexpected';

/** Published on `express-orq-identity:call` after every call to orq (each retry is a call; `not-sent` ones never left the process). */
export interface OrqCallEvent {
  operation: OrqOperation;
  outcome: OrqCallOutcome;
  /** The HTTP status when orq answered one. */
  statusCode: number | undefined;
  /** 0 for the first try, 1 for the first retry, … */
  attempt: number;
  durationMs: number;
}

/** How one lookup of a user ended: found by retrieve, created, or failed (reported to onError). */
export type OrqLookupOutcome = 'found' | 'created' | 'failed';

/** Published on `express-orq-identity:lookup` when a lookup (retrieve, create on 404, their retries) ends. */
export interface OrqLookupEvent {
  outcome: OrqLookupOutcome;
  durationMs: number;
  /** Requests that asked for this user while the lookup ran and shared it (0 when only the first asked). */
  coalesced: number;
}

/** Published on `express-orq-identity:backlog` when the registration backlog empties: every deferred user is registered. */
export interface OrqBacklogEvent {
  event: 'drained';
  /** Users this process registered from the backlog since it last was empty. */
  registered: number;
  /** Since the backlog last went from empty to not. */
  durationMs: number;
}

/** The names of the channels this package publishes on. */
export const orqIdentityChannels = {
  call: 'express-orq-identity:call',
  lookup: 'express-orq-identity:lookup',
  backlog: 'express-orq-identity:backlog',
} as const;

export const callChannel = diagnosticsChannel.channel(orqIdentityChannels.call);
export const lookupChannel = diagnosticsChannel.channel(orqIdentityChannels.lookup);
export const backlogChannel = diagnosticsChannel.channel(orqIdentityChannels.backlog);
