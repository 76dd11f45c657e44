/**
 * A small structured logger: one JSON object per line, which CloudWatch Logs (JSON log format) indexes.
 * Errors are serialized with name, message and stack so that an `internal` error frame's details are
 * found in the logs and nowhere else.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Record<string, unknown>): Logger;
}

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && Object.hasOwn(ORDER, value);
}

function serialize(value: unknown): unknown {
  if (value instanceof Error) {
    return {
      name: value.name,
      message: value.message,
      stack: value.stack,
      ...(value.cause === undefined ? {} : { cause: serialize(value.cause) }),
    };
  }
  return value;
}

/**
 * Creates a JSON-lines logger.
 * @param level - lines below this level are dropped. @default 'info'
 * @param write - where a line goes. @default stdout directly: with Lambda's JSON log format, a line written
 *   through console.log would be wrapped as a string inside Lambda's own `message` field
 *   (Powertools writes to stdout for the same reason)
 */
export function createLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  base: Record<string, unknown> = {},
): Logger {
  const emit = (lvl: Exclude<LogLevel, 'silent'>, message: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const entry: Record<string, unknown> = { level: lvl, message, timestamp: new Date().toISOString(), ...base };
    if (fields) for (const [k, v] of Object.entries(fields)) entry[k] = serialize(v);
    write(JSON.stringify(entry));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(level, write, { ...base, ...fields }),
  };
}
