/**
 * The emulator's console: a web page at `/` and the admin API under `/_admin/` (docs/EMULATOR.md, "Console").
 * What tests and tools use; the page's assets, the state readers and the console's user connections stay
 * internal.
 */
export { type AdminApi, type AdminApiOptions, createAdminApi } from './api.js';
export { type AdjustableClock, createAdjustableClock, isAdjustableClock } from './clock.js';
export type { EmulatorConsole } from './emulator-console.js';
export * from './errors.js';
export { AdminEventBus, type AdminEventListener, describeLine, EVENT_BUFFER_SIZE, teeLogger } from './events.js';
export { type AdminAccessOptions, type AdminRefusal, checkApiRequest, checkPeer, hostnameOf } from './guard.js';
export * from './types.js';
