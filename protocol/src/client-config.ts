/**
 * The client config: what a web or mobile app needs to reach one deployment. The CDK stack writes it (output
 * `ClientConfig`), the emulator serves it (`GET /dev/client-config`), and the SDK reads it as is
 * (`createRealtimeClient({ config, getToken })`), so the three agree on one shape.
 */
import { ValidationError } from './errors.js';

/** The format's version; a reader refuses others rather than guess. */
export const CLIENT_CONFIG_VERSION = 1;

/** Where the emulator serves the client config. */
export const CLIENT_CONFIG_PATH = '/dev/client-config';

export interface RealtimeClientConfig {
  version: typeof CLIENT_CONFIG_VERSION;
  /** AWS region of the deployment. */
  region: string;
  /** The Cognito user pool whose tokens connect, and its accepted app clients. */
  userPoolId: string;
  userPoolClientIds: string[];
  /** API Gateway WebSocket: `wss://{api-id}.execute-api.{region}.amazonaws.com/{stage}`. */
  websocket: { url: string };
  /** IoT Core MQTT over WebSocket (`wss://{endpoint}/mqtt`) and the custom authorizer to name; absent when the
   * stack has no MQTT channel. */
  mqtt?: { url: string; authorizerName: string };
}

function field(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ValidationError('bad_request', `Client config: \`${path}\` must be a non-empty string.`, {
      details: { field: path },
    });
  }
  return value;
}

/** Checks a parsed client config (a JSON file, a stack output) and returns it typed; throws `ValidationError`
 * naming the first bad field. */
export function parseClientConfig(value: unknown): RealtimeClientConfig {
  const config = value as Partial<RealtimeClientConfig> | null;
  if (typeof config !== 'object' || config === null) {
    throw new ValidationError('bad_request', 'Client config: expected a JSON object.');
  }
  if (config.version !== CLIENT_CONFIG_VERSION) {
    throw new ValidationError(
      'bad_request',
      `Client config: version ${String(config.version)} is not ${CLIENT_CONFIG_VERSION}; update the SDK or the stack.`,
      { details: { field: 'version' } },
    );
  }
  const clientIds = config.userPoolClientIds;
  if (!Array.isArray(clientIds) || clientIds.length === 0) {
    throw new ValidationError('bad_request', 'Client config: `userPoolClientIds` must be a non-empty array.', {
      details: { field: 'userPoolClientIds' },
    });
  }
  const parsed: RealtimeClientConfig = {
    version: CLIENT_CONFIG_VERSION,
    region: field(config.region, 'region'),
    userPoolId: field(config.userPoolId, 'userPoolId'),
    userPoolClientIds: clientIds.map((id, i) => field(id, `userPoolClientIds[${i}]`)),
    websocket: { url: field(config.websocket?.url, 'websocket.url') },
  };
  if (config.mqtt !== undefined) {
    parsed.mqtt = {
      url: field(config.mqtt.url, 'mqtt.url'),
      authorizerName: field(config.mqtt.authorizerName, 'mqtt.authorizerName'),
    };
  }
  return parsed;
}
