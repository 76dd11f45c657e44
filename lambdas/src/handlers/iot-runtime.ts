/**
 * What the Lambdas without an API Gateway event (`iot-ingress`, `iot-presence`, `fanout-worker`, `token-sweeper`)
 * share:
 * configuration, the store, a delivery that reaches both channels, the MQTT broadcast publisher and the
 * fan-out queue. They receive no `@connections` endpoint in their event, so endpoints come from the
 * environment.
 */
import { ENV } from '@viba-realtime/protocol';
import { ConfigError, type HandlerConfig, loadConfig } from '../config.js';
import type { Clock, FanoutQueue, Store } from '../core/ports.js';
import { systemClock } from '../core/ports.js';
import { ConnectionsDelivery } from '../delivery/connections-delivery.js';
import { IotDelivery } from '../delivery/iot-delivery.js';
import { RoutingDelivery } from '../delivery/routing-delivery.js';
import { createLogger, type Logger } from '../log.js';
import { SqsFanoutQueue } from '../queue/sqs-fanout-queue.js';
import { createStoreFromConfig } from '../store/dynamodb.js';
import type { HandlerEnv } from './events.js';

/** The long-lived parts of such a Lambda, built once per execution environment. */
export interface Runtime {
  store: Store;
  delivery: RoutingDelivery;
  /** Publishes to MQTT topics (answers, announcements); undefined when no IoT endpoint is configured. */
  iot: IotDelivery | undefined;
  /** The fan-out queue; undefined when none is configured (fan-outs are then delivered inline). */
  queue: FanoutQueue | undefined;
  clock: Clock;
  log: Logger;
}

/** The runtime of an IoT rule Lambda, whose IoT endpoint is always configured. */
export interface IotRuntime extends Runtime {
  iot: IotDelivery;
}

/** The fan-out queue from a configuration, if it names one. */
export function queueFromConfig(config: HandlerConfig, log: Logger): FanoutQueue | undefined {
  if (!config.fanoutQueueUrl) return undefined;
  return new SqsFanoutQueue({
    queueUrl: config.fanoutQueueUrl,
    region: config.region,
    ...(config.sqsEndpoint ? { endpoint: config.sqsEndpoint } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
    log,
  });
}

/**
 * Builds a runtime from an environment.
 * @throws {ConfigError} `VIBA_CONNECTIONS_ENDPOINT` (or the table) is not set
 */
export function createRuntime(env: HandlerEnv, handler: string, deps: { clock?: Clock }): Runtime {
  const config = loadConfig(env, { table: true, auth: false });
  if (!config.connectionsEndpoint) throw new ConfigError(`Environment variable ${ENV.connectionsEndpoint} is not set.`);
  const clock = deps.clock ?? systemClock;
  const log = createLogger(config.logLevel).child({ handler });
  const store = createStoreFromConfig(config, clock);
  const common = { region: config.region, credentials: config.credentials, log };
  const iot = config.iotEndpoint ? new IotDelivery({ endpoint: config.iotEndpoint, ...common }) : undefined;
  const websocket = new ConnectionsDelivery({ endpoint: config.connectionsEndpoint, ...common });
  const delivery = new RoutingDelivery({ websocket, mqtt: iot, log });
  return { store, delivery, iot, queue: queueFromConfig(config, log), clock, log };
}

/**
 * Builds an IoT rule Lambda's runtime from its environment.
 * @throws {ConfigError} `VIBA_IOT_ENDPOINT` or `VIBA_CONNECTIONS_ENDPOINT` (or the table) is not set
 */
export function createIotRuntime(env: HandlerEnv, handler: string, deps: { clock?: Clock }): IotRuntime {
  if (!env[ENV.iotEndpoint]) throw new ConfigError(`Environment variable ${ENV.iotEndpoint} is not set.`);
  const runtime = createRuntime(env, handler, deps);
  return { ...runtime, iot: runtime.iot as IotDelivery };
}
