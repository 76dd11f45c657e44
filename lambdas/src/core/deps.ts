import type { Logger } from '../log.js';
import type { Clock, Delivery, FanoutQueue, Store, TopicPublisher } from './ports.js';

/** What every core operation needs. */
export interface CoreDeps {
  store: Store;
  delivery: Delivery;
  clock: Clock;
  log: Logger;
  /** Large fan-outs (announcements) go here in batches; without one they are delivered inline. */
  queue?: FanoutQueue;
  /** MQTT broadcast topics (announcements); without one, MQTT clients get no announcements live. */
  topics?: TopicPublisher;
}

/** The authenticated caller of a route, as established by the authorizer on `$connect`. */
export interface Caller {
  connectionId: string;
  sub: string;
  username: string;
  groups: string[];
  /** Token expiry, epoch seconds. */
  tokenExp: number;
  /** When the connection was opened, epoch ms (API Gateway's `requestContext.connectedAt`). */
  connectedAt: number;
}
