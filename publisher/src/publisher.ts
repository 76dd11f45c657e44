/**
 * The backend publisher: how an app's backend (Express on Lambda, any Node service) talks to its users in
 * real time. It runs the same core as the Lambda handlers, with the same store (DynamoDB), deliveries
 * (`@connections`, IoT data plane) and fan-out queue (SQS), under the IAM credentials of the backend
 * (`realtime.grantPublish(fn)` in the CDK stack). Locally, the same code points at `npm start` by
 * configuration only (see {@link publisherConfigFromEnv} and `fetchLocalPublisherConfig`).
 *
 * @example
 * const realtime = createPublisher(publisherConfigFromEnv());
 * await realtime.notify('0b6c…', { title: 'Your order shipped', orderId: 'o-17' });
 * await realtime.announce({ text: 'Maintenance at 2 am' }, { group: 'beta' });
 */
import {
  type AnnounceOutcome,
  announce,
  ConnectionsDelivery,
  type CoreDeps,
  type CreateRoomOptions,
  closeRoom,
  createDynamoDbStore,
  createLogger,
  createRoom,
  disconnectUser,
  grant,
  IotDelivery,
  type LogLevel,
  type NotifyOutcome,
  notify,
  type RoomRecord,
  RoutingDelivery,
  revoke,
  SqsFanoutQueue,
  sendAsBackend,
  systemClock,
} from '@viba-realtime/lambdas';
import {
  assertBody,
  assertClientId,
  assertRoomName,
  assertUserId,
  BACKEND_SENDER,
  ENV,
  type JsonObject,
} from '@viba-realtime/protocol';
import { PublisherConfigError } from './errors.js';

/** AWS credentials; in AWS leave them out and the SDK's default chain (the Lambda's role) is used. */
export interface PublisherCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Where the realtime service lives. In AWS, `realtime.publisherEnvironment` of the CDK construct holds
 * every value; {@link publisherConfigFromEnv} reads them. */
export interface PublisherConfig {
  /** The DynamoDB table (`VIBA_TABLE_NAME`). */
  tableName: string;
  /** The WebSocket API's `@connections` endpoint, `https://{api}.execute-api.{region}.amazonaws.com/{stage}`
   * (`VIBA_CONNECTIONS_ENDPOINT`). */
  connectionsEndpoint: string;
  /** IoT Core's data endpoint, `https://{prefix}-ats.iot.{region}.amazonaws.com` (`VIBA_IOT_ENDPOINT`).
   * Without it MQTT clients get nothing from the publisher. */
  iotEndpoint?: string;
  /** The fan-out queue (`VIBA_FANOUT_QUEUE_URL`). Without it large announcements are delivered inline. */
  fanoutQueueUrl?: string;
  /** Default: `AWS_REGION`, else `us-east-1`. */
  region?: string;
  /** Local only: the emulator's DynamoDB endpoint (`VIBA_DYNAMODB_ENDPOINT`). */
  dynamodbEndpoint?: string;
  /** Local only: the emulator's SQS endpoint (`VIBA_SQS_ENDPOINT`). */
  sqsEndpoint?: string;
  credentials?: PublisherCredentials;
  /** JSON log lines to stdout at this level and above; default `warn`. */
  logLevel?: LogLevel;
}

/** Reads a {@link PublisherConfig} from `VIBA_*` environment variables (the CDK construct's
 * `publisherEnvironment`, or the lines the emulator prints).
 * @throws {PublisherConfigError} naming the variable that is missing */
export function publisherConfigFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): PublisherConfig {
  const need = (name: string) => {
    const value = env[name];
    if (!value) throw new PublisherConfigError(`Environment variable ${name} is not set.`);
    return value;
  };
  const optional = (name: string) => env[name] || undefined;
  const config: PublisherConfig = {
    tableName: need(ENV.tableName),
    connectionsEndpoint: need(ENV.connectionsEndpoint),
  };
  const iotEndpoint = optional(ENV.iotEndpoint);
  const fanoutQueueUrl = optional(ENV.fanoutQueueUrl);
  const region = optional('AWS_REGION');
  const dynamodbEndpoint = optional(ENV.dynamodbEndpoint);
  const sqsEndpoint = optional(ENV.sqsEndpoint);
  return {
    ...config,
    ...(iotEndpoint ? { iotEndpoint } : {}),
    ...(fanoutQueueUrl ? { fanoutQueueUrl } : {}),
    ...(region ? { region } : {}),
    ...(dynamodbEndpoint ? { dynamodbEndpoint } : {}),
    ...(sqsEndpoint ? { sqsEndpoint } : {}),
  };
}

/** Options of {@link Publisher.notify}. */
export interface NotifyOptions {
  /** Idempotency key (1-64 of `[A-Za-z0-9_.:-]`): retrying with the same key notifies each user once. */
  key?: string;
  /** How long the inbox keeps it, seconds (60 to 365 days); default 30 days. */
  retentionSeconds?: number;
}

/** Options of {@link Publisher.announce}. */
export interface AnnounceOptions {
  /** Only this Cognito group; default everyone. */
  group?: string;
  /** Idempotency key: retrying with the same key announces once. */
  key?: string;
}

/** Options of {@link Publisher.sendToRoom}. */
export interface SendToRoomOptions {
  /** The user the backend speaks for (their `sub`); default `backend`. */
  from?: string;
  /** The message's client id, making the send idempotent; default a fresh one. */
  id?: string;
}

/** What {@link Publisher.sendToRoom} stored. */
export interface SentMessage {
  id: string;
  seq: number;
  ts: number;
  /** True when this `id` was sent before: nothing new was stored or delivered. */
  duplicate: boolean;
}

/** The backend publisher; see {@link createPublisher}. Every method validates its input first and throws a
 * typed error naming the problem (`ValidationError`, `UnknownRoomError`, `RoomClosedError`,
 * `TooManyRecipientsError`). */
export interface Publisher {
  /** Stores a notification in each user's inbox and delivers it live to all their devices. */
  notify(userIds: string | readonly string[], body: JsonObject, options?: NotifyOptions): Promise<NotifyOutcome[]>;
  /** Announces to everyone, or to one Cognito group, on both channels. */
  announce(body: JsonObject, options?: AnnounceOptions): Promise<AnnounceOutcome>;
  /** Sends a chat message to an existing, open room. */
  sendToRoom(room: string, body: JsonObject, options?: SendToRoomOptions): Promise<SentMessage>;
  /** Creates a room (default private, owned by `backend`) or finds it, granting `members`. */
  createRoom(room: string, options?: CreateRoomOptions): Promise<{ room: RoomRecord; created: boolean }>;
  /** Makes users members of a room. */
  grant(room: string, userIds: string | readonly string[]): Promise<void>;
  /** Takes membership away and unsubscribes the users' connections; returns the connections removed. */
  revoke(room: string, userIds: string | readonly string[]): Promise<number>;
  /** Closes a room for good; returns the connections that were in it. */
  closeRoom(room: string): Promise<number>;
  /** Disconnects every connection of a user on both channels; returns how many. */
  disconnectUser(userId: string): Promise<number>;
  /** Releases the SDK clients' sockets. */
  close(): void;
}

const list = (value: string | readonly string[]): readonly string[] => (typeof value === 'string' ? [value] : value);

/** Options of {@link createPublisher} beyond where the service lives. */
export interface PublisherOptions {
  /**
   * Milliseconds since the epoch: the time stamped on what the publisher stores and against which tokens and
   * records expire. The emulator's console passes its movable clock, so a notification sent after moving it
   * two hours ahead treats connections as expired as the rest of the emulator does. @default Date.now
   */
  clock?: () => number;
}

/**
 * Creates a publisher.
 * @throws {PublisherConfigError} a required setting is missing
 */
export function createPublisher(config: PublisherConfig, options: PublisherOptions = {}): Publisher {
  if (!config?.tableName) throw new PublisherConfigError('tableName is required.');
  if (!config.connectionsEndpoint) throw new PublisherConfigError('connectionsEndpoint is required.');
  const region = config.region ?? process.env.AWS_REGION ?? 'us-east-1';
  const log = createLogger(config.logLevel ?? 'warn').child({ component: 'publisher' });
  const credentials = config.credentials;
  const common = { region, log, ...(credentials ? { credentials } : {}) };
  const clock = options.clock ?? systemClock;
  const store = createDynamoDbStore({
    tableName: config.tableName,
    region,
    clock,
    ...(config.dynamodbEndpoint ? { endpoint: config.dynamodbEndpoint } : {}),
    ...(credentials ? { credentials } : {}),
  });
  const websocket = new ConnectionsDelivery({ endpoint: config.connectionsEndpoint, ...common, credentials });
  const iot = config.iotEndpoint
    ? new IotDelivery({ endpoint: config.iotEndpoint, ...common, credentials })
    : undefined;
  const queue = config.fanoutQueueUrl
    ? new SqsFanoutQueue({
        queueUrl: config.fanoutQueueUrl,
        ...common,
        ...(config.sqsEndpoint ? { endpoint: config.sqsEndpoint } : {}),
      })
    : undefined;
  const deps: CoreDeps = {
    store,
    delivery: new RoutingDelivery({ websocket, mqtt: iot, log }),
    clock,
    log,
    ...(queue ? { queue } : {}),
    ...(iot ? { topics: iot } : {}),
  };

  return {
    notify: (userIds, body, options = {}) => notify(deps, { userIds: list(userIds), body, ...options }),
    announce: (body, options = {}) => announce(deps, { body, ...options, from: BACKEND_SENDER }),
    async sendToRoom(room, body, given) {
      // `?? {}`, not a default: a JS caller's null would otherwise reach `options.from` as a TypeError.
      const options = given ?? {};
      assertRoomName(room);
      assertBody(body);
      if (options.from !== undefined) assertUserId(options.from);
      // Only a missing id is generated: a null one (say, a backend's unset column) is refused like any bad id, not
      // silently replaced, which would make every retry a new message.
      const id = options.id === undefined ? `b-${globalThis.crypto.randomUUID()}` : options.id;
      assertClientId(id);
      const ack = await sendAsBackend(deps, options.from ?? BACKEND_SENDER, { action: 'send', room, id, body });
      return { id: ack.id as string, seq: ack.seq as number, ts: ack.ts, duplicate: ack.duplicate === true };
    },
    createRoom: (room, options) => createRoom(deps, room, options ?? {}),
    grant: (room, userIds) => grant(deps, room, list(userIds)),
    revoke: (room, userIds) => revoke(deps, room, list(userIds)),
    closeRoom: (room) => closeRoom(deps, room),
    disconnectUser: (userId) => disconnectUser(deps, userId),
    close() {
      store.destroy();
      websocket.client.destroy();
      iot?.client.destroy();
      if (queue) queue.client.destroy();
    },
  };
}
