/**
 * Collects both logs of an emulator run: the emulator's own lines (`startEmulator({ log })`: CONNECT, ROUTE,
 * IOTAUTH, IOTDENY, ...) and the Lambda handlers' JSON lines, which go straight to `process.stdout` as in
 * Lambda (`lambdas/src/log.ts`) and are only written at `logLevel: 'debug'` for info-level events such as
 * refusals. Handler lines are taken off stdout while capturing (anything else passes through).
 */

export type HandlerLine = Record<string, unknown> & { level: string; message: string };

export class LogCapture {
  /** The emulator's lines, in order. */
  readonly emulator: string[] = [];
  /** The handlers' lines, parsed, in order. */
  readonly handler: HandlerLine[] = [];
  #restore: (() => void) | undefined;

  /** The `log` option of `startEmulator`. */
  readonly sink = (line: string): void => {
    this.emulator.push(line);
  };

  /** Starts taking the handlers' JSON lines off stdout. */
  start(): void {
    if (this.#restore) return;
    const stdout = process.stdout;
    const original = stdout.write;
    const capture = this;
    stdout.write = function write(this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
      const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : undefined;
      const parsed = text === undefined ? undefined : parseHandlerLines(text);
      if (parsed) {
        capture.handler.push(...parsed);
        const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
        callback?.();
        return true;
      }
      return (original as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof stdout.write;
    this.#restore = () => {
      stdout.write = original;
    };
  }

  stop(): void {
    this.#restore?.();
    this.#restore = undefined;
  }

  /** Handler lines with every field of `fields` equal (strings in `fields` may also be RegExps). */
  handlerLines(fields: Record<string, unknown>): HandlerLine[] {
    return this.handler.filter((line) =>
      Object.entries(fields).every(([key, expected]) =>
        expected instanceof RegExp ? expected.test(String(line[key])) : line[key] === expected,
      ),
    );
  }

  /** Emulator lines containing every one of `parts`. */
  emulatorLines(...parts: string[]): string[] {
    return this.emulator.filter((line) => parts.every((part) => line.includes(part)));
  }

  /** The user the emulated API Gateway logged for a WebSocket connection id (its `CONNECT ... 101` line). */
  gatewayUserOf(connectionId: string): string | undefined {
    const line = this.emulator.find((l) => / CONNECT /.test(l) && l.includes(` ${connectionId} `) && / 101 /.test(l));
    return line?.split(/\s+/)[3];
  }
}

/** Every line of `text` if each is a handler's JSON log line; `undefined` otherwise. */
function parseHandlerLines(text: string): HandlerLine[] | undefined {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return undefined;
  const parsed: HandlerLine[] = [];
  for (const line of lines) {
    if (!line.startsWith('{')) return undefined;
    try {
      const value = JSON.parse(line) as Record<string, unknown>;
      if (typeof value.level !== 'string' || typeof value.message !== 'string') return undefined;
      parsed.push(value as HandlerLine);
    } catch {
      return undefined;
    }
  }
  return parsed;
}
