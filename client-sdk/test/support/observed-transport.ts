/**
 * Wraps a real transport to watch it: counts the frames the client writes, and can hold new connects until
 * the test releases them (so a test can act "while the client is offline" without racing its reconnect).
 * Everything still travels over the real transport to the real emulator.
 */
import type { ClientFrame } from '@viba-realtime/protocol';
import type { Transport, TransportConnection } from '../../src/index.js';

export interface ObservedTransport extends Transport {
  /** Every frame written, in order. */
  readonly sent: ClientFrame[];
  /** Connect attempts made (successful or not). */
  readonly attempts: number;
  /** New connects wait until {@link release}. */
  hold(): void;
  release(): void;
  /** Resolves when a connect attempt is waiting on {@link hold}. */
  held(): Promise<void>;
  /** Closes the live connection from the client's side. */
  drop(): void;
}

export function observe(inner: Transport): ObservedTransport {
  const sent: ClientFrame[] = [];
  let attempts = 0;
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  let heldWaiters: (() => void)[] = [];
  let waiting = false;
  let live: TransportConnection | undefined;
  return {
    name: inner.name,
    needsHeartbeat: inner.needsHeartbeat,
    maxConnectionMs: inner.maxConnectionMs,
    sent,
    get attempts() {
      return attempts;
    },
    hold() {
      let open!: () => void;
      const promise = new Promise<void>((resolve) => {
        open = resolve;
      });
      gate = { promise, open };
    },
    release() {
      const current = gate;
      gate = undefined;
      current?.open();
    },
    held() {
      return waiting ? Promise.resolve() : new Promise<void>((resolve) => heldWaiters.push(resolve));
    },
    drop() {
      live?.close();
    },
    async connect(token, handlers, signal) {
      attempts++;
      if (gate !== undefined) {
        waiting = true;
        for (const resolve of heldWaiters) resolve();
        heldWaiters = [];
        await gate.promise;
        waiting = false;
      }
      const connection = await inner.connect(token, handlers, signal);
      live = connection;
      return {
        send(frame) {
          connection.send(frame);
          sent.push(frame);
        },
        close() {
          connection.close();
        },
      };
    },
  };
}
