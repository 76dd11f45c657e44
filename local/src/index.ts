/**
 * @viba-realtime/local: the emulator of viba-realtime's AWS stack (API Gateway WebSocket + `@connections`,
 * IoT Core's MQTT broker, custom authorizer, policies and data plane, DynamoDB API, SQS with the fan-out
 * worker's event source mapping, a dev Cognito token issuer), running the real Lambda handlers.
 */
export * from './admin/index.js';
export * from './banner.js';
export * from './dynamodb/server.js';
export * from './emulator.js';
export * from './faults/index.js';
export * from './gateway/connections-api.js';
export * from './gateway/events.js';
export * from './gateway/frame-guard.js';
export * from './gateway/policy.js';
export * from './gateway/websocket-gateway.js';
export * from './http-server.js';
export * from './identity/dev-issuer.js';
export * from './identity/dev-token-query.js';
export * from './iot/data-plane.js';
export * from './iot/iot-core.js';
export * from './iot/rules.js';
export * from './log.js';
export * from './loopback.js';
export * from './queue/local-queue.js';
export * from './queue/sqs-api.js';
export * from './queue/sqs-messages.js';
export * from './scheduler/index.js';
export * from './time.js';
