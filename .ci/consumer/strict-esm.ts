// An ESM TypeScript app written as the README shows, checked under the strictest `tsc --init` settings
// (exactOptionalPropertyTypes, noUncheckedIndexedAccess, verbatimModuleSyntax): type-checked, never run.
import express, { type Request } from 'express';
import {
  createIdentityResolver,
  currentOrqIdentity,
  currentOrqUser,
  orqIdentity,
  orqIdentityFetch,
  runWithOrqIdentity,
  toPublicIdentity,
  toWireIdentity,
  type CacheOptions,
  type CloseOptions,
  type OrqIdentity,
  type OrqIdentityOptions,
  type OrqUser,
} from 'express-orq-identity';
import { startOrqEmulator, type Fault, type OrqEmulatorOptions } from 'express-orq-identity/testing';

/** What an auth layer typically leaves on the request: most profile fields may be missing. */
interface AppUser {
  id: string;
  name?: string;
  email?: string | undefined;
  avatar?: string;
  plan?: string;
}
type AuthenticatedRequest = Request & { user?: AppUser };

// The README's getUser: optional app fields flow straight into optional OrqUser fields.
const toOrqUser = (user: AppUser): OrqUser => ({
  externalId: user.id,
  displayName: user.name,
  email: user.email,
  avatarUrl: user.avatar,
  tags: user.plan === undefined ? undefined : [user.plan],
  metadata: undefined,
});

const fromEnvironment = (name: string): number | undefined => {
  const value = process.env[name];
  return value === undefined ? undefined : Number(value);
};

const cache: CacheOptions = { max: fromEnvironment('ORQ_CACHE_MAX'), ttl: fromEnvironment('ORQ_CACHE_TTL') };

const options: OrqIdentityOptions = {
  apiKey: process.env.ORQ_API_KEY,
  serverURL: process.env.ORQ_SERVER_URL,
  getUser: (req) => {
    const user = (req as AuthenticatedRequest).user;
    return user && toOrqUser(user);
  },
  cache,
  timeoutMs: fromEnvironment('ORQ_TIMEOUT_MS'),
  lookupTimeoutMs: undefined,
  maxConcurrency: undefined,
  retries: undefined,
  circuitBreaker: { failureThreshold: undefined, cooldownMs: fromEnvironment('ORQ_COOLDOWN_MS') },
  failureMemoryMs: undefined,
  syncProfile: undefined,
  metrics: { refreshMs: undefined },
  failOpen: process.env.ORQ_FAIL_CLOSED === '1' ? false : undefined,
  context: undefined,
  onError: undefined,
};

export async function main(): Promise<void> {
  const identity = orqIdentity(options);
  const app = express();
  app.use(identity);
  app.get('/me', (req, res) => {
    const current: OrqIdentity | undefined = req.orqIdentity ?? currentOrqIdentity();
    res.json(current === undefined ? null : toPublicIdentity(current));
  });

  const resolver = createIdentityResolver<{ jobId: string }>({
    apiKey: process.env.ORQ_API_KEY,
    onError: (error, job) => console.warn(job?.jobId, error.code),
    cache: undefined,
  });
  const resolved = await resolver.resolve({ externalId: 'job-user', displayName: undefined }, { jobId: '1' }, undefined);
  const copy: OrqIdentity = { id: resolved.id, externalId: resolved.externalId, displayName: resolved.displayName, tags: resolved.tags };
  runWithOrqIdentity(copy, () => currentOrqIdentity()?.displayName);
  // An OrqIdentity, an OrqUser and the current user all feed the attribution helpers.
  const wire = [toWireIdentity(copy), toWireIdentity(toOrqUser({ id: 'x', email: undefined })), currentOrqUser()?.displayName];
  const attributedFetch = orqIdentityFetch({ fetch: undefined, origins: process.env.ORQ_PROXY === undefined ? undefined : [process.env.ORQ_PROXY] });
  void wire;
  void attributedFetch;

  const closing: CloseOptions = { timeoutMs: fromEnvironment('ORQ_CLOSE_TIMEOUT_MS') };
  await identity.close(closing);
  await resolver.close({ timeoutMs: undefined });

  const emulatorOptions: OrqEmulatorOptions = { shape: undefined, latencyMs: fromEnvironment('LATENCY_MS'), apiKey: undefined };
  const emulator = await startOrqEmulator(emulatorOptions);
  const fault: Fault = { kind: 'status', status: 503, headers: undefined, body: undefined, times: undefined, operation: undefined };
  emulator.inject(fault);
  emulator.seed({ externalId: 'seeded', displayName: undefined, tags: undefined, metadata: undefined });
  await emulator.close();
}
