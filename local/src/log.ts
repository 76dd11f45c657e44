/**
 * The emulator's log: one short, readable line per event (connect, route call, `@connections` call,
 * error), e.g. `16:40:01.123 CONNECT  Zx1abcDEFghi12= alice 200 12ms`. The sink and the level are injected
 * so the CLI prints to stdout and tests stay silent.
 */
import { type Clock, formatLogTime, systemClock } from './time.js';

/** `silent` prints nothing. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/**
 * What a line is about, for structured readers of the log (the console's event stream, `local/src/admin/`).
 * The printed line never shows them: the text already says it.
 */
export interface LogFields {
  connectionId?: string;
  user?: string;
  room?: string;
  status?: string | number;
}

/** Writes lines at or above its level. */
export interface EmulatorLogger {
  /** `kind` is a short upper-case tag (CONNECT, ROUTE, POST, ...), padded so columns line up. */
  line(level: Exclude<LogLevel, 'silent'>, kind: string, text: string, fields?: LogFields): void;
  enabled(level: Exclude<LogLevel, 'silent'>): boolean;
}

/** Options of {@link createEmulatorLogger}. */
export interface EmulatorLoggerOptions {
  /** @default 'info' */
  level?: LogLevel;
  /** Where lines go. @default console.log */
  log?: (line: string) => void;
  /** @default the system clock */
  clock?: Clock;
}

/** Checks a user-given level name. */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * Creates the emulator's logger.
 * @example
 * const logger = createEmulatorLogger({ level: 'info' });
 * logger.line('info', 'CONNECT', 'Zx1abcDEFghi12= alice 200 12ms');
 */
export function createEmulatorLogger(options: EmulatorLoggerOptions = {}): EmulatorLogger {
  const threshold = RANK[options.level ?? 'info'];
  const sink = options.log ?? ((line: string) => console.log(line));
  const clock = options.clock ?? systemClock;
  return {
    enabled: (level) => RANK[level] >= threshold,
    line(level, kind, text) {
      if (RANK[level] < threshold) return;
      sink(`${formatLogTime(clock())} ${kind.padEnd(8)} ${text}`);
    },
  };
}
