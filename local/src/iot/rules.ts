/**
 * IoT Core's rules engine, reduced to the rules the CDK stack creates: each matches a topic filter, builds
 * the rule event its SQL selects (see `IotIngressEvent` and `IotPresenceEvent` in the handlers' events), and
 * invokes the rule's Lambda through its entry point. It plugs into the broker's `onPublish` hook, which sees
 * client publishes and the broker's own (the lifecycle events).
 *
 * As in IoT, invocations are asynchronous: a rule never holds the broker back, and a failing Lambda is
 * logged, never thrown into the broker. IoT gives no order between invocations, so neither does this.
 */
import type { IotIngressEvent, IotPresenceEvent } from '@viba-realtime/lambdas/handlers/events';
import { IOT_RULES } from '@viba-realtime/protocol';
import { errorText } from '../broker/connection.js';
import type { BrokerClient, BrokerQoS, PublishProperties } from '../broker/types.js';
import type { EmulatorLogger } from '../log.js';

/** A rule's Lambda, as the rules engine invokes it (its result is ignored, as IoT ignores it). */
export type RuleFunction<E> = (event: E) => Promise<unknown>;

/** The Lambdas behind our rules. */
export interface IotRuleTargets {
  /** `rt/users/+/requests` and `rt/rooms/+/send` -> `iot-ingress`. */
  ingress: RuleFunction<IotIngressEvent>;
  /** `$aws/events/presence/+/+` -> `iot-presence`. */
  presence: RuleFunction<IotPresenceEvent>;
}

/** The rules of the CDK stack (the contract's table: name, filter, SQL, target), re-exported for callers. */
export { IOT_RULES };

/** Whether a topic matches a filter of `+` wildcards (our rules use no `#`). */
export function matchesRuleFilter(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  return f.length === t.length && f.every((level, i) => level === '+' || level === t[i]);
}

/** The rules engine: its `onPublish` for the broker, and a way to wait for the invocations in flight. */
export interface IotRulesEngine {
  onPublish(
    client: BrokerClient | null,
    topic: string,
    payload: Buffer,
    qos?: BrokerQoS,
    properties?: PublishProperties,
  ): Promise<void>;
  /** Resolves once no invocation is in flight (emulator shutdown, tests). */
  idle(): Promise<void>;
}

/** Builds the rules engine over the given Lambdas. */
export function createIotRules(targets: () => IotRuleTargets | undefined, logger: EmulatorLogger): IotRulesEngine {
  const inFlight = new Set<Promise<void>>();

  function invoke(name: string, run: () => Promise<unknown>): void {
    const call = run()
      .then(() => undefined)
      .catch((error: unknown) => logger.line('error', 'IOTRULE', `${name} failed: ${errorText(error)}`))
      .finally(() => inFlight.delete(call));
    inFlight.add(call);
  }

  return {
    async onPublish(client, topic, payload, _qos, properties) {
      const lambdas = targets();
      if (lambdas === undefined) return;
      for (const rule of IOT_RULES) {
        if (!matchesRuleFilter(rule.filter, topic)) continue;
        logger.line('debug', 'IOTRULE', `${rule.name} <- ${topic}`);
        if (rule.target === 'ingress') {
          // The rule's SELECT (IotIngressEvent): get_mqtt_property() yields nothing for an absent property, and
          // correlation data base64-encoded.
          const event: IotIngressEvent = {
            topic,
            // IoT's clientid() of a data-plane publish is no client of ours; the handler drops it.
            clientId: client?.clientId ?? '',
            payload: payload.toString('base64'),
            ...(properties?.responseTopic === undefined ? {} : { responseTopic: properties.responseTopic }),
            ...(properties?.correlationData === undefined
              ? {}
              : { correlationData: properties.correlationData.toString('base64') }),
          };
          invoke(rule.name, () => lambdas.ingress(event));
        } else {
          // SELECT * : the lifecycle JSON as published. A payload that is not JSON is not a rule event.
          let event: IotPresenceEvent;
          try {
            event = JSON.parse(payload.toString('utf8')) as IotPresenceEvent;
          } catch (error) {
            logger.line('warn', 'IOTRULE', `${rule.name}: payload is not JSON: ${errorText(error)}`);
            continue;
          }
          invoke(rule.name, () => lambdas.presence(event));
        }
      }
    },
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
