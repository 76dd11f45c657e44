/**
 * The IoT rule Lambda of the lifecycle topics `$aws/events/presence/{connected|disconnected}/{clientId}`
 * (event: {@link IotPresenceEvent}). `connected` records the MQTT connection `mqtt:{clientId}`;
 * `disconnected` removes its subscriptions and tells its rooms the user left. IoT delivers these events late,
 * twice or out of order: both writes are conditional on the event's `versionNumber` (see `mqttConnected`,
 * `mqttDisconnected`), so a stale event changes nothing.
 */
import { TOPIC_SUB_PATTERN } from '@viba-realtime/protocol';
import type { Context } from 'aws-lambda';
import { mqttConnected, mqttDisconnected, subOfClientId } from '../core/connections.js';
import type { CoreDeps } from '../core/deps.js';
import type { Clock } from '../core/ports.js';
import type { HandlerEnv, IotPresenceEvent } from './events.js';
import { createIotRuntime } from './iot-runtime.js';

/** What the handler did with an event (IoT ignores it; tests and logs read it). */
export type IotPresenceOutcome = 'recorded' | 'removed' | 'stale' | 'ignored';

function isPresenceEvent(event: unknown): event is IotPresenceEvent {
  const e = event as Partial<IotPresenceEvent> | null;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.clientId === 'string' &&
    (e.eventType === 'connected' || e.eventType === 'disconnected') &&
    Number.isSafeInteger(e.versionNumber) &&
    typeof e.timestamp === 'number'
  );
}

/** Builds the presence handler from an environment (as `iot-ingress`); the emulator may inject a clock. */
export function createIotPresenceHandler(env: HandlerEnv, deps: { clock?: Clock } = {}) {
  const { store, delivery, clock, log } = createIotRuntime(env, 'iot-presence', deps);

  return async (event: IotPresenceEvent, _context?: Context): Promise<IotPresenceOutcome> => {
    // Client ids of no user of ours (another app's devices on the same account) have nothing to record.
    if (!isPresenceEvent(event) || !TOPIC_SUB_PATTERN.test(subOfClientId(event.clientId))) {
      log.warn('lifecycle event ignored', { clientId: (event as { clientId?: unknown })?.clientId });
      return 'ignored';
    }
    const core: CoreDeps = { store, delivery, clock, log: log.child({ clientId: event.clientId }) };
    const session = {
      clientId: event.clientId,
      lifecycle: { versionNumber: event.versionNumber, timestamp: event.timestamp },
    };
    const applied =
      event.eventType === 'connected' ? await mqttConnected(core, session) : await mqttDisconnected(core, session);
    const outcome: IotPresenceOutcome = !applied ? 'stale' : event.eventType === 'connected' ? 'recorded' : 'removed';
    core.log.debug('lifecycle event', { eventType: event.eventType, version: event.versionNumber, outcome });
    return outcome;
  };
}

let cached: ReturnType<typeof createIotPresenceHandler> | undefined;

/** The Lambda entry point. Configuration is read once per execution environment, on first use. */
export const handler = (event: IotPresenceEvent, context?: Context): Promise<IotPresenceOutcome> => {
  cached ??= createIotPresenceHandler(process.env);
  return cached(event, context);
};
