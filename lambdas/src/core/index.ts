export * from './concurrency.js';
export * from './connections.js';
export * from './deps.js';
export * from './fanout.js';
export * from './ids.js';
export * from './ports.js';
export * from './rooms.js';
export * from './send.js';
