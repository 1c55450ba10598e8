// Public entry of `express-orq-identity/testing`: test helpers that never load the SDK or Express themselves.
export {
  startOrqEmulator,
  EMULATED_CALL_USAGE,
  DEFAULT_EMULATOR_API_KEY,
  DEFAULT_EMULATOR_WORKSPACE_ID,
} from './emulator.js';
export type {
  CallIdentity,
  CallStatus,
  EmulatorRateLimit,
  EmulatorCall,
  Fault,
  FaultEffect,
  IdentitySource,
  IdentityUsage,
  Operation,
  OrqEmulator,
  OrqEmulatorOptions,
  ResponseShape,
  SeedIdentityInput,
  WireIdentity,
} from './emulator.js';
