// What this package calls on an @orq-ai/node client, described by shape so the published types need no SDK installed.
import type { OrqUser, ProfileField } from '../types.js';

/** The per-call options we pass to the SDK: our own deadline, and no SDK retries (we own retries). */
export interface OrqSdkCallOptions {
  timeoutMs?: number;
  retries?: { strategy: 'none' };
}

/**
 * The part of @orq-ai/node's `Orq` client the package uses: its three identity calls. Any `new Orq(...)`
 * from @orq-ai/node 4.x fits; the SDK stays an optional peer because nothing here imports it.
 */
export interface OrqClient {
  readonly identities: {
    retrieve(request: { id: string; includeMetrics?: boolean }, options?: OrqSdkCallOptions): Promise<unknown>;
    create(request: OrqUser, options?: OrqSdkCallOptions): Promise<unknown>;
    update(request: { id: string; updateIdentityRequest: Pick<OrqUser, ProfileField> }, options?: OrqSdkCallOptions): Promise<unknown>;
  };
}
