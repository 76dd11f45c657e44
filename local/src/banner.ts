/**
 * The text `npm start` prints once the emulator listens. Kept apart from the CLI (which runs on import)
 * so the warning about a network-reachable dev issuer can be tested.
 */
import { CLIENT_CONFIG_PATH, clientIdFor } from '@viba-realtime/protocol';
import type { Emulator } from './emulator.js';
import { isLoopbackHost } from './loopback.js';

/** The warning printed when `/dev/token` can be reached from other machines. */
export function networkWarning(host: string): string {
  return `
  !!! WARNING: listening on ${host}, which is not a loopback address.
  !!! Anyone who can reach this port can call /dev/token and mint valid tokens for ANY user
  !!! (it is a development issuer with no sign-in). Use it only on a network you trust.
`;
}

/** The warning added when the console (its admin API can act as any user) is served beyond this machine. */
export function consoleRemoteWarning(): string {
  return `  !!! The console is open to the network too (--console-remote): anyone who can reach this port can
  !!! disconnect users, send as any user and move the emulator's clock.
`;
}

/** The console's line (empty with --no-console): its URL, and who it answers. */
function consoleLine(emulator: Emulator, host: string): string {
  const view = emulator.console;
  if (!view) return '';
  const who =
    view.allowRemote && !isLoopbackHost(host)
      ? 'open to the network: --console-remote'
      : isLoopbackHost(host)
        ? 'connections, rooms, live events, act as any user; --no-console turns it off'
        : 'this machine only; --console-remote opens it to the network';
  return `  Console        ${view.url}  (${who})\n`;
}

/** What the start banner reports about the running emulator. */
export interface BannerOptions {
  /** The address the emulator listens on (`--host`). */
  host: string;
  dataDir: string | undefined;
  externalDb: boolean;
}

/** The IoT Core lines of the banner (empty when IoT is off): URLs and an MQTT.js CLI try-it. */
function mqttLines(emulator: Emulator, token: string): string {
  if (!emulator.mqttUrl || !emulator.mqttWsUrl) return '';
  const { hostname, port } = new URL(emulator.mqttUrl);
  // The MQTT.js CLI (`npx mqtt sub`): -i client id (the user's sub, or clientIdFor(sub, suffix)), -u any
  // username, -P the token (the authorizer reads it from the password). It has no -V flag: unknown options
  // go to mqtt.connect() as they are, so --protocolVersion 5 selects MQTT 5.
  return `  MQTT           ${emulator.mqttUrl}  (IoT Core; token as the password, client id {sub} or ${clientIdFor('{sub}', 'xyz')})
  MQTT over WS   ${emulator.mqttWsUrl}?token=<idToken>
  IoT data plane ${emulator.iotDataEndpoint}/topics/{topic}, /connections/{clientId}  (IoTDataPlaneClient endpoint)
  MQTT try-it    npx mqtt sub -h ${hostname.replace(/^\[|\]$/g, '')} -p ${port} -i ${clientIdFor('alice', 'cli')} -u x -P ${token} -t 'rt/users/alice/inbox' --protocolVersion 5 -v
`;
}

/** The fan-out queue's line (empty without a queue). */
function queueLine(emulator: Emulator): string {
  if (!emulator.fanoutQueueUrl) return '';
  return `  Fan-out queue  ${emulator.fanoutQueueUrl}  (SQS; SQSClient endpoint ${emulator.sqsEndpoint})\n`;
}

/** The start banner: every URL, a sample token, and the network warning when the host is not loopback. */
export function banner(emulator: Emulator, options: BannerOptions): string {
  const sample = emulator.issuer.mintPair({ sub: 'alice', username: 'alice' });
  // With --token-use access an ID token would be refused; show the kind of token that connects.
  const useAccess = !(emulator.env.VIBA_TOKEN_USE ?? 'id').split(',').includes('id');
  const sampleName = useAccess ? 'access token' : 'ID token';
  const sampleToken = useAccess ? sample.accessToken : sample.idToken;
  const storage = options.externalDb ? 'external' : options.dataDir ? `data in ${options.dataDir}` : 'in memory';
  const remoteConsole = emulator.console?.allowRemote === true && !isLoopbackHost(options.host);
  const warning = isLoopbackHost(options.host)
    ? ''
    : `${networkWarning(options.host)}${remoteConsole ? consoleRemoteWarning() : ''}`;
  return `
viba-realtime emulator is running (the real Lambda handlers behind an emulated API Gateway)
${warning}
${consoleLine(emulator, options.host)}  WebSocket      ${emulator.url}?token=<${useAccess ? 'accessToken' : 'idToken'}>
  @connections   ${emulator.connectionsEndpoint}
  DynamoDB       ${emulator.dynamodbEndpoint}  (table ${emulator.tableName}, ${storage})
  JWKS           ${emulator.jwksUri}
  Dev tokens     ${emulator.httpUrl}/dev/token?sub=alice&groups=admin&ttl=3600
  Token uses     ${emulator.env.VIBA_TOKEN_USE}
  Client config  ${emulator.httpUrl}${CLIENT_CONFIG_PATH}  (the SDK: createRealtimeClient({ config, getToken }))
${queueLine(emulator)}${mqttLines(emulator, sampleToken)}
  Sample ${sampleName} for alice (valid 1 h):
  ${sampleToken}

Try it, in two more terminals:
  npm run chat -- --user alice --room lobby
  npm run chat -- --user bob --room lobby
Or the SDK: npm run example:sdk, and a chat page in the browser: npm run demo
${warning}
Ctrl+C stops the emulator.

`;
}
