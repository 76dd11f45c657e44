export type { AnnounceOutcome, CreateRoomOptions, NotifyOutcome } from '@viba-realtime/lambdas';
export type { JsonObject } from '@viba-realtime/protocol';
export * from './errors.js';
export * from './local.js';
export * from './publisher.js';
