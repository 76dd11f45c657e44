/**
 * What the IoT rule Lambdas (`iot-ingress`, `iot-presence`) share: configuration, the store, and a delivery
 * that reaches both channels. Unlike `ws-routes` they receive no API Gateway event to take the
 * `@connections` endpoint from, so both endpoints come from the environment.
 */
import { ENV } from '@viba-realtime/protocol';
import { ConfigError, loadConfig } from '../config.js';
import type { Clock, Store } from '../core/ports.js';
import { systemClock } from '../core/ports.js';
import { ConnectionsDelivery } from '../delivery/connections-delivery.js';
import { IotDelivery } from '../delivery/iot-delivery.js';
import { RoutingDelivery } from '../delivery/routing-delivery.js';
import { createLogger, type Logger } from '../log.js';
import { createStoreFromConfig } from '../store/dynamodb.js';
import type { HandlerEnv } from './events.js';

/** The long-lived parts of an IoT rule Lambda, built once per execution environment. */
export interface IotRuntime {
  store: Store;
  delivery: RoutingDelivery;
  /** Publishes answers to `rt/users/{sub}/responses`. */
  iot: IotDelivery;
  clock: Clock;
  log: Logger;
}

/**
 * Builds an IoT rule Lambda's runtime from its environment.
 * @throws {ConfigError} `VIBA_IOT_ENDPOINT` or `VIBA_CONNECTIONS_ENDPOINT` (or the table) is not set
 */
export function createIotRuntime(env: HandlerEnv, handler: string, deps: { clock?: Clock }): IotRuntime {
  const config = loadConfig(env, { table: true, auth: false });
  if (!config.iotEndpoint) throw new ConfigError(`Environment variable ${ENV.iotEndpoint} is not set.`);
  if (!config.connectionsEndpoint) throw new ConfigError(`Environment variable ${ENV.connectionsEndpoint} is not set.`);
  const clock = deps.clock ?? systemClock;
  const log = createLogger(config.logLevel).child({ handler });
  const store = createStoreFromConfig(config, clock);
  const common = { region: config.region, credentials: config.credentials, log };
  const iot = new IotDelivery({ endpoint: config.iotEndpoint, ...common });
  const websocket = new ConnectionsDelivery({ endpoint: config.connectionsEndpoint, ...common });
  return { store, delivery: new RoutingDelivery({ websocket, mqtt: iot, log }), iot, clock, log };
}
