export * from './local-scheduler.js';
