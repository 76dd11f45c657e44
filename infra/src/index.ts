export * from './app-config.js';
export * from './realtime.js';
export * from './stack.js';
