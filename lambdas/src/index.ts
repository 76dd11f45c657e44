export * from './auth/cognito-token-verifier.js';
export * from './config.js';
export * from './core/index.js';
export * from './delivery/connections-delivery.js';
export * from './delivery/iot-delivery.js';
export * from './delivery/routing-delivery.js';
export type * from './handlers/events.js';
export * from './log.js';
export * from './store/dynamodb.js';
