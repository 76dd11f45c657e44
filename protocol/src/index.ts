export * from './auth.js';
export * from './env.js';
export * from './errors.js';
export * from './frames.js';
export * from './limits.js';
export * from './routes.js';
export * from './table.js';
export * from './validate.js';
