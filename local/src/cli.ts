/**
 * The emulator's command line:
 *
 * - `start`  runs the emulator (`npm start`);
 * - `token`  prints an ID token from a running emulator's `/dev/token` (`npm run token -- --sub alice`);
 * - `chat`   a tiny raw-WebSocket chat REPL (`npm run chat -- --user alice --room lobby`);
 * - `notify`, `announce`, `send`  the backend publisher from a shell (./publish-cli.ts).
 */
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { LOCAL_STAGE } from '@viba-realtime/protocol';
import WebSocket from 'ws';
import { banner } from './banner.js';
import {
  EMULATOR_DEFAULTS,
  type Emulator,
  isTokenUse,
  PortInUseError,
  startEmulator,
  TOKEN_USES,
  type TokenUse,
} from './emulator.js';
import { FaultInjectionError, type FaultOptions, parseFaultOptions } from './faults/index.js';
import { isLogLevel, LOG_LEVELS } from './log.js';
import { PUBLISH_HELP, PublishUsageError, runPublishCommand } from './publish-cli.js';

const HELP = `viba-realtime local emulator

Usage:
  npm start [-- options]                       run the emulator
  npm run token -- --sub alice [options]       print an ID token from a running emulator
  npm run chat -- --user alice --room lobby    chat in a room from the terminal
  npm run notify -- --user alice --text hi     notify a user (backend publisher)
  npm run announce -- --text "2 am upgrade"    announce to everyone (or --group G)
  npm run send -- --room lobby --text hi       send to a room as the backend

start options:
  --host HOST               interface to listen on      (env VIBA_LOCAL_HOST, default ${EMULATOR_DEFAULTS.host})
  --port PORT               HTTP/WebSocket port, 0=any  (env VIBA_LOCAL_PORT, default ${EMULATOR_DEFAULTS.port})
  --mqtt-port PORT          IoT Core MQTT (TCP) port    (env VIBA_LOCAL_MQTT_PORT, default ${EMULATOR_DEFAULTS.mqttPort})
  --no-iot                  run without the IoT Core emulation (MQTT, /mqtt, /topics): WebSocket only
  --data DIR                keep DynamoDB data and the token signing key in DIR across restarts
                                                        (env VIBA_LOCAL_DATA, default: in memory)
  --dynamodb-endpoint URL   use this DynamoDB endpoint (e.g. DynamoDB Local) instead of the built-in one
  --log-level LEVEL         ${LOG_LEVELS.join('|')} (default info)
  --token-use USES          token uses the authorizer accepts: id, access or id,access (default id,access)
  --faults FILE             fault injection: rules (JSON) that make DynamoDB, @connections, IoT publishes
                            or Lambdas fail as AWS does (docs/EMULATOR.md, "Fault injection"; default off)
  --no-console              no web console at / and no admin API under /_admin/
  --console-remote          serve the console beyond this machine too (anyone who reaches the port can
                            then act as any user; only on a network you trust)

token options:
  --sub SUB                 user id (required)
  --groups a,b              Cognito groups
  --ttl SECONDS             lifetime, 1..86400 (default 3600)
  --access                  print the access token instead of the ID token
  --url URL                 emulator HTTP URL (default http://127.0.0.1:\${VIBA_LOCAL_PORT:-4000})

chat options:
  --user SUB                who you are (required)
  --room ROOM               room to join (required)
  --url URL                 emulator HTTP URL (default as for token)

${PUBLISH_HELP}`;

/** A problem the user can fix; printed without a stack trace. */
class UsageError extends Error {
  override readonly name = 'UsageError';
}

function defaultHttpUrl(): string {
  return `http://127.0.0.1:${process.env.VIBA_LOCAL_PORT ?? EMULATOR_DEFAULTS.port}`;
}

/** The `--faults` file: a list of rules, or `{ "rules": [...], "seed": 8, "functionTimeoutsMs": {...} }`. */
async function readFaults(file: string): Promise<FaultOptions> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--faults ${file}: ${(error as Error).message}`);
  }
  try {
    return parseFaultOptions(JSON.parse(text));
  } catch (error) {
    if (error instanceof SyntaxError || error instanceof FaultInjectionError)
      throw new UsageError(`--faults ${file}: ${error.message}`);
    throw error;
  }
}

function parsePort(value: string, source: string): number {
  const port = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`${source} must be a port number 0-65535, got "${value}".`);
  return port;
}

async function runStart(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'mqtt-port': { type: 'string' },
      'no-iot': { type: 'boolean' },
      data: { type: 'string' },
      'dynamodb-endpoint': { type: 'string' },
      'log-level': { type: 'string' },
      'token-use': { type: 'string' },
      faults: { type: 'string' },
      'no-console': { type: 'boolean' },
      'console-remote': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (values['no-console'] && values['console-remote'])
    throw new UsageError('--no-console and --console-remote contradict each other; give one.');
  const tokenUse = parseTokenUse(values['token-use'] ?? TOKEN_USES.join(','));
  const faults = values.faults === undefined ? undefined : await readFaults(values.faults);
  const host = values.host ?? process.env.VIBA_LOCAL_HOST ?? EMULATOR_DEFAULTS.host;
  const port =
    values.port !== undefined
      ? parsePort(values.port, '--port')
      : process.env.VIBA_LOCAL_PORT
        ? parsePort(process.env.VIBA_LOCAL_PORT, 'VIBA_LOCAL_PORT')
        : EMULATOR_DEFAULTS.port;
  const mqttPort =
    values['mqtt-port'] !== undefined
      ? parsePort(values['mqtt-port'], '--mqtt-port')
      : process.env.VIBA_LOCAL_MQTT_PORT
        ? parsePort(process.env.VIBA_LOCAL_MQTT_PORT, 'VIBA_LOCAL_MQTT_PORT')
        : EMULATOR_DEFAULTS.mqttPort;
  const dataDir = values.data ?? process.env.VIBA_LOCAL_DATA;
  const logLevel = values['log-level'] ?? 'info';
  if (!isLogLevel(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}.`);

  let emulator: Emulator;
  try {
    emulator = await startEmulator({
      host,
      port,
      mqttPort,
      ...(values['no-iot'] ? { iot: false } : {}),
      ...(values['no-console']
        ? { console: false }
        : values['console-remote']
          ? { console: { allowRemote: true } }
          : {}),
      logLevel,
      tokenUse,
      ...(dataDir ? { dataDir } : {}),
      ...(values['dynamodb-endpoint'] ? { dynamodbEndpoint: values['dynamodb-endpoint'] } : {}),
      ...(faults ? { faults } : {}),
    });
  } catch (error) {
    if (error instanceof PortInUseError) throw new UsageError(error.message);
    if (error instanceof FaultInjectionError) throw new UsageError(`--faults ${values.faults}: ${error.message}`);
    throw error;
  }
  process.stdout.write(banner(emulator, { host, dataDir, externalDb: values['dynamodb-endpoint'] !== undefined }));
  if (emulator.faults)
    process.stdout.write(
      `Fault injection is on: ${emulator.faults.list().length} rule(s) from ${values.faults}, seed ${emulator.faults.seed}.\n`,
    );

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      // A second Ctrl+C means "now".
      process.exit(1);
    }
    stopping = true;
    process.stdout.write(`\n${signal}: closing connections and servers...\n`);
    emulator.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`error while closing: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

function parseTokenUse(value: string): TokenUse[] {
  const uses = value.split(',').map((v) => v.trim());
  if (uses.length === 0 || !uses.every(isTokenUse))
    throw new UsageError(`--token-use must be id, access or id,access; got "${value}".`);
  return uses;
}

/** The gateway answered the upgrade with an HTTP error. */
class RefusedError extends UsageError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function fetchTokens(httpUrl: string, query: URLSearchParams): Promise<{ idToken: string; accessToken: string }> {
  const url = `${httpUrl.replace(/\/+$/, '')}/dev/token?${query}`;
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new UsageError(
      `Could not reach the emulator at ${httpUrl} (${error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error)}). Is \`npm start\` running? Pass --url if it listens elsewhere.`,
    );
  }
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok)
    throw new UsageError(`/dev/token answered ${response.status}: ${String(body.message ?? JSON.stringify(body))}`);
  return { idToken: String(body.idToken), accessToken: String(body.accessToken) };
}

async function runToken(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      sub: { type: 'string' },
      groups: { type: 'string' },
      ttl: { type: 'string' },
      username: { type: 'string' },
      access: { type: 'boolean' },
      url: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (!values.sub) throw new UsageError('--sub is required, e.g. npm run token -- --sub alice');
  const query = new URLSearchParams({ sub: values.sub });
  if (values.groups) query.set('groups', values.groups);
  if (values.ttl) query.set('ttl', values.ttl);
  if (values.username) query.set('username', values.username);
  const tokens = await fetchTokens(values.url ?? defaultHttpUrl(), query);
  process.stdout.write(`${values.access ? tokens.accessToken : tokens.idToken}\n`);
}

/** One readable line per server frame. */
function describeFrame(frame: Record<string, unknown>): string {
  const body = frame.body as Record<string, unknown> | undefined;
  switch (frame.type) {
    case 'chat':
      return `[${frame.room} #${frame.seq}] ${frame.from}: ${typeof body?.text === 'string' ? body.text : JSON.stringify(body)}`;
    case 'presence':
      return `* ${frame.user} ${frame.state} ${frame.room}`;
    case 'ack':
      if (frame.action === 'join')
        return `* joined ${frame.room} (${frame.visibility}, latest #${frame.seq ?? 0}); type a line to send it`;
      if (frame.action === 'send') return `  (sent #${frame.seq}${frame.duplicate ? ', duplicate' : ''})`;
      return `* ${frame.action} ${frame.room} ok`;
    case 'error':
      return `! ${frame.code}: ${frame.message}`;
    case 'pong':
      return '';
    case 'notification':
      return `(notification) ${typeof body?.text === 'string' ? body.text : JSON.stringify(body)}`;
    case 'announcement':
      return `(announcement${frame.group ? ` to ${frame.group}` : ''}) ${typeof body?.text === 'string' ? body.text : JSON.stringify(body)}`;
    case 'inbox':
      return `* ${frame.unread} unread notification(s)`;
    default:
      return JSON.stringify(frame);
  }
}

async function runChat(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      user: { type: 'string' },
      room: { type: 'string' },
      url: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (!values.user || !values.room)
    throw new UsageError('--user and --room are required, e.g. npm run chat -- --user alice --room lobby');
  const user = values.user;
  const room = values.room;
  const httpUrl = (values.url ?? defaultHttpUrl()).replace(/\/+$/, '');
  const tokens = await fetchTokens(httpUrl, new URLSearchParams({ sub: user }));
  const gateway = `${httpUrl.replace(/^http/, 'ws')}/${LOCAL_STAGE}`;
  const open = (token: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const socket = new WebSocket(`${gateway}?token=${encodeURIComponent(token)}`);
      socket.once('open', () => resolve(socket));
      socket.once('unexpected-response', (_req, res) =>
        reject(new RefusedError(`The emulator refused the connection: HTTP ${res.statusCode}`, res.statusCode ?? 0)),
      );
      socket.once('error', (error) => reject(new UsageError(`Could not connect to ${gateway}: ${error.message}`)));
    });
  // An emulator started with --token-use access refuses ID tokens with 403: then try the access token.
  const ws = await open(tokens.idToken).catch((error: unknown) => {
    if (error instanceof RefusedError && error.status === 403) return open(tokens.accessToken);
    throw error;
  });
  const wsUrl = gateway;
  process.stdout.write(`connected to ${wsUrl.split('?')[0]} as ${user}\n`);

  let counter = 0;
  // Client ids must match CLIENT_ID_PATTERN; a user name may not.
  const nextId = () => {
    counter += 1;
    return `${user}-${Date.now().toString(36)}-${counter}`.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, 64);
  };
  const sendFrame = (frame: Record<string, unknown>) => ws.send(JSON.stringify(frame));
  sendFrame({ action: 'join', room, id: nextId() });
  // What arrived while this user was away, as the SDK asks on every connect.
  sendFrame({ action: 'inbox', id: nextId(), body: { limit: 1 } });
  // API Gateway drops a connection after 10 idle minutes; a ping every 5 keeps a quiet REPL connected.
  const keepAlive = setInterval(() => sendFrame({ action: 'ping', id: nextId() }), 5 * 60 * 1000);

  const lines = createInterface({ input: process.stdin });
  // API Gateway runs a connection's messages concurrently, so a line sent before the join is acked could
  // be handled first and fail with not_joined: hold lines until the ack.
  let joined = false;
  const held: string[] = [];
  const sendLine = (text: string) => sendFrame({ action: 'send', room, id: nextId(), body: { text } });
  ws.on('message', (data) => {
    let text: string;
    try {
      const frame = JSON.parse(String(data)) as Record<string, unknown>;
      if (!joined && frame.type === 'ack' && frame.action === 'join') {
        joined = true;
        for (const line of held.splice(0)) sendLine(line);
      }
      text = describeFrame(frame);
    } catch {
      text = String(data);
    }
    if (text) process.stdout.write(`${text}\n`);
  });
  ws.on('close', (code, reason) => {
    clearInterval(keepAlive);
    process.stdout.write(`connection closed: ${code}${reason.length ? ` ${reason}` : ''}\n`);
    lines.close();
    process.exit(code === 1000 || code === 1005 ? 0 : 1);
  });
  lines.on('line', (line) => {
    const text = line.trim();
    if (text === '') return;
    if (text === '/quit') {
      ws.close(1000);
      return;
    }
    if (joined) sendLine(text);
    else held.push(text);
  });
  // Piped input ends before the answers arrive; give them a moment, as a person at the prompt would.
  lines.on('close', () => setTimeout(() => ws.close(1000), 1000));
}

async function main(argv: string[]): Promise<void> {
  // The AWS SDK warns on every start that its 2027 releases need Node 22. The project supports Node 20
  // (docs say Lambda runs nodejs22.x); the warning would only bury the banner. An explicit setting wins.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return runStart(rest);
    case 'token':
      return runToken(rest);
    case 'chat':
      return runChat(rest);
    case 'notify':
    case 'announce':
    case 'send':
      return runPublishCommand(command, rest, defaultHttpUrl());
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(HELP);
      return;
    default:
      throw new UsageError(
        `Unknown command "${command}". Use start, token, chat, notify, announce or send (--help for options).`,
      );
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (
    error instanceof UsageError ||
    error instanceof PublishUsageError ||
    (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
  ) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
