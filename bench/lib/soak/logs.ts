/**
 * The emulator child's output, sorted. The child runs at log level `warn`, so every line it prints is a
 * warning or an error of the emulator (`HH:MM:SS.mmm KIND text`) or of a handler (a JSON line with `level`
 * and `message`), or something Node printed on stderr. Each kind is counted and the first lines are kept
 * verbatim for the report. Two kinds are expected in a storm and counted apart ({@link EXPECTED_LINES}); the
 * soak fails on any other.
 */

const EMULATOR_LINE = /^\d\d:\d\d:\d\d\.\d{3} (\S+)\s+(.*)$/;
const KEPT_LINES = 40;

/** Lines a reconnect storm produces by design, with the reason they are not a fault. */
export const EXPECTED_LINES: readonly { name: string; test: RegExp; why: string }[] = [
  {
    name: '@connections 410',
    // `HH:MM:SS.mmm POST     {connectionId} {user} {bytes}B 410`: the gateway logs every 4xx at warn.
    test: /^\d\d:\d\d:\d\d\.\d{3} POST\s+\S+ \S+ \d+B 410$/,
    why:
      'a post (presence, chat, notification) to a connection that closed after the fan-out listed it; the handler ' +
      'removes the connection, as it does in AWS',
  },
  {
    name: 'AWS SDK socket pool full',
    // The three lines of @smithy/node-http-handler's warning.
    test: /socket usage at capacity=\d+ and \d+ additional requests are enqueued|node-configuring-maxsockets\.html|increase socketAcquisitionWarningTimeout/,
    why:
      'the emulator runs one instance of each Lambda for all concurrent invocations, so a storm queues more than ' +
      "the SDK's 50 sockets per endpoint (AWS would start more instances); requests wait, none fails",
  },
];

export interface LogSummary {
  /** Lines that were not expected (the soak fails on any). */
  lines: number;
  /** `emulator KIND`, `handler level: message`, `stderr` or `stdout` -> lines. */
  byKind: Record<string, number>;
  /** The first unexpected lines, verbatim (cut at 400 characters). */
  first: string[];
  /** Expected lines by {@link EXPECTED_LINES} name. */
  expected: Record<string, number>;
}

export class LogCollector {
  readonly #byKind = new Map<string, number>();
  readonly #first: string[] = [];
  readonly #expected = new Map<string, number>();
  #lines = 0;

  /** Counts one line. */
  add(line: string, stream: 'stdout' | 'stderr'): void {
    if (line.trim() === '') return;
    const expected = EXPECTED_LINES.find((e) => e.test.test(line));
    if (expected) {
      this.#expected.set(expected.name, (this.#expected.get(expected.name) ?? 0) + 1);
      return;
    }
    this.#lines++;
    const kind = kindOf(line, stream);
    this.#byKind.set(kind, (this.#byKind.get(kind) ?? 0) + 1);
    if (this.#first.length < KEPT_LINES) this.#first.push(line.length > 400 ? `${line.slice(0, 400)}...` : line);
  }

  summary(): LogSummary {
    return {
      lines: this.#lines,
      byKind: Object.fromEntries(this.#byKind),
      first: [...this.#first],
      expected: Object.fromEntries(this.#expected),
    };
  }
}

function kindOf(line: string, stream: 'stdout' | 'stderr'): string {
  const emulator = EMULATOR_LINE.exec(line);
  if (emulator) return `emulator ${emulator[1]}`;
  if (line.startsWith('{')) {
    try {
      const entry = JSON.parse(line) as { level?: unknown; message?: unknown };
      if (typeof entry.level === 'string' && typeof entry.message === 'string')
        return `handler ${entry.level}: ${entry.message}`;
    } catch {
      // Not a handler's JSON line: counted by stream below.
    }
  }
  return stream;
}
