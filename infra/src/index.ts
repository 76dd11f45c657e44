export * from './app-config.js';
export * from './nag.js';
export * from './realtime.js';
export * from './stack.js';
