// The public surface changes only on purpose: this list is the contract.
import { expect, it } from 'vitest';
import * as api from '../src/index.js';
import * as testing from '../src/testing/index.js';

it('exports exactly the public names', () => {
  expect(Object.keys(api).sort()).toMatchInlineSnapshot(`
    [
      "IdentityMismatchError",
      "InvalidProfileFieldError",
      "InvalidUserError",
      "OrqApiError",
      "OrqIdentityError",
      "OrqUnavailableError",
      "RepeatedFailuresError",
      "SharedStoreError",
      "createIdentityResolver",
      "currentOrqIdentity",
      "currentOrqUser",
      "defaultGetUser",
      "orqIdentity",
      "orqIdentityCallOptions",
      "orqIdentityChannels",
      "orqIdentityFetch",
      "orqIdentityModelMiddleware",
      "orqIdentityRequestHook",
      "runWithOrqIdentity",
      "runWithOrqUser",
      "toPublicIdentity",
      "toWireIdentity",
      "withOrqIdentity",
    ]
  `);
  expect(Object.keys(testing).sort()).toMatchInlineSnapshot(`
    [
      "DEFAULT_EMULATOR_API_KEY",
      "DEFAULT_EMULATOR_WORKSPACE_ID",
      "EMULATED_CALL_USAGE",
      "startOrqEmulator",
    ]
  `);
});
