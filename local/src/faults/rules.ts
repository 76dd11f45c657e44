/**
 * Fault rules: what fails, when, and how. A rule names a **target** (the AWS API boundary where the fault is
 * injected), an optional **match** (which requests of that target), the **fault** (how the service answers, in
 * its own wire shape) and how often (`times`, `skip`, `probability`). Rules are plain JSON, so the CLI reads
 * them from a file and the console's admin API takes them over HTTP.
 *
 * | target | faults | where |
 * |---|---|---|
 * | `dynamodb` | `throttle` (400 `ProvisionedThroughputExceededException`), `server-error` (500 `InternalServerError`), `timeout` (no answer) | the DynamoDB-API server |
 * | `connections` | `429` (`LimitExceededException`), `500` (`InternalServerErrorException`), `410` (`GoneException`), `timeout` | API Gateway's `@connections` API |
 * | `iot-publish` | `429` (`ThrottlingException`), `500` (`InternalFailureException`), `503` (`ServiceUnavailableException`), `timeout` | IoT's data-plane `Publish` |
 * | `handler` | `error` (the invocation fails before the handler runs), `timeout` (it ends past the function's timeout) | a Lambda invocation |
 */
import { FANOUT_WORKER_HANDLER, IOT_HANDLERS, TOKEN_SWEEPER_HANDLER, WS_HANDLERS } from '@viba-realtime/protocol';
import { InvalidFaultRuleError } from './errors.js';

/** Every fault each target can have. */
export const FAULTS_BY_TARGET = {
  dynamodb: ['throttle', 'server-error', 'timeout'],
  connections: ['429', '500', '410', 'timeout'],
  'iot-publish': ['429', '500', '503', 'timeout'],
  handler: ['error', 'timeout'],
} as const;

/** Where a fault is injected. */
export type FaultTarget = keyof typeof FAULTS_BY_TARGET;
export const FAULT_TARGETS = Object.keys(FAULTS_BY_TARGET) as FaultTarget[];

export type DynamoDbFault = (typeof FAULTS_BY_TARGET.dynamodb)[number];
export type ConnectionsFault = (typeof FAULTS_BY_TARGET.connections)[number];
export type IotPublishFault = (typeof FAULTS_BY_TARGET)['iot-publish'][number];
export type HandlerFault = (typeof FAULTS_BY_TARGET.handler)[number];
/** Any fault of any target. */
export type FaultKind = DynamoDbFault | ConnectionsFault | IotPublishFault | HandlerFault;

/** DynamoDB operations a rule may match (the `X-Amz-Target` after `DynamoDB_20120810.`). */
export const DYNAMODB_OPERATIONS = [
  'BatchExecuteStatement',
  'BatchGetItem',
  'BatchWriteItem',
  'CreateTable',
  'DeleteItem',
  'DeleteTable',
  'DescribeTable',
  'DescribeTimeToLive',
  'ExecuteStatement',
  'ExecuteTransaction',
  'GetItem',
  'ListTables',
  'PutItem',
  'Query',
  'Scan',
  'TransactGetItems',
  'TransactWriteItems',
  'UpdateItem',
  'UpdateTable',
  'UpdateTimeToLive',
] as const;
export type DynamoDbOperation = (typeof DYNAMODB_OPERATIONS)[number];

/** The `@connections` operations (`POST`, `GET`, `DELETE` of `/{stage}/@connections/{id}`). */
export const CONNECTIONS_OPERATIONS = ['PostToConnection', 'GetConnection', 'DeleteConnection'] as const;
export type ConnectionsOperation = (typeof CONNECTIONS_OPERATIONS)[number];

/** The Lambda functions the emulator invokes, by the names of their handler files (as the CDK stack names them). */
export const FUNCTION_NAMES = [
  WS_HANDLERS.authorizer,
  WS_HANDLERS.routes,
  IOT_HANDLERS.authorizer,
  IOT_HANDLERS.ingress,
  IOT_HANDLERS.presence,
  FANOUT_WORKER_HANDLER,
  TOKEN_SWEEPER_HANDLER,
] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

/** A list or one value: `"PutItem"` or `["PutItem", "UpdateItem"]`. */
export type OneOrMore<T> = T | readonly T[];

/** Which DynamoDB requests a rule matches; every given field must match. */
export interface DynamoDbMatch {
  operation?: OneOrMore<DynamoDbOperation>;
  table?: string;
  /**
   * Prefix of an item's partition key (`pk`, or the index's for a query on it): of `Key` or `Item`, of each
   * request of a batch or transaction (one matching is enough), of a Query's key condition. E.g. `MSGS#lobby`.
   */
  partitionKeyPrefix?: string;
  /** Prefix of the sort key, likewise (a Query's `begins_with` or bound). E.g. `SEQ#` (a message, not its
   * de-duplication record), `SUB#` (a subscription). */
  sortKeyPrefix?: string;
}

/** Which `@connections` calls a rule matches. */
export interface ConnectionsMatch {
  operation?: OneOrMore<ConnectionsOperation>;
  connectionId?: string;
}

/** Which data-plane publishes a rule matches. */
export interface IotPublishMatch {
  /** An MQTT topic filter (`+` one level, `#` the rest), e.g. `rt/users/+/rooms/#`. */
  topic?: string;
}

/** Which Lambda invocations a rule matches. */
export interface HandlerMatch {
  handler?: OneOrMore<FunctionName>;
  /** WebSocket route key (`send`, `join`, `$connect`, ...): `ws-routes` invocations only. */
  route?: string;
  /** The caller's connection: a WebSocket connection id, or `mqtt:{clientId}` for `iot-ingress`. */
  connectionId?: string;
}

/** How often a rule fires; every field is optional. */
export interface FaultFrequency {
  /** Stable id to remove it by; `f1`, `f2`, ... when absent. 1-64 characters of `[A-Za-z0-9_.:-]`. */
  id?: string;
  /** Fire at most this many times, then stay listed as inactive. @default no limit */
  times?: number;
  /** Let this many matching requests through before the first fault. @default 0 */
  skip?: number;
  /** Chance (0 < p <= 1) that a matching request fails, drawn from the injector's seeded generator. @default 1 */
  probability?: number;
}

export interface DynamoDbFaultRuleInput extends FaultFrequency {
  target: 'dynamodb';
  fault: DynamoDbFault;
  match?: DynamoDbMatch;
}
export interface ConnectionsFaultRuleInput extends FaultFrequency {
  target: 'connections';
  fault: ConnectionsFault;
  match?: ConnectionsMatch;
}
export interface IotPublishFaultRuleInput extends FaultFrequency {
  target: 'iot-publish';
  fault: IotPublishFault;
  match?: IotPublishMatch;
}
export interface HandlerFaultRuleInput extends FaultFrequency {
  target: 'handler';
  fault: HandlerFault;
  match?: HandlerMatch;
}

/**
 * A rule to add. The target decides which faults and match fields are allowed, so a rule that cannot fire does
 * not compile (and is refused at run time when it comes from JSON).
 * @example
 * const rule: FaultRuleInput = { target: 'dynamodb', match: { operation: 'PutItem', sortKeyPrefix: 'SEQ#' },
 *   fault: 'throttle', times: 2 };
 */
export type FaultRuleInput =
  | DynamoDbFaultRuleInput
  | ConnectionsFaultRuleInput
  | IotPublishFaultRuleInput
  | HandlerFaultRuleInput;

/** What a rule has done so far. */
export interface FaultRuleState {
  id: string;
  /** Requests that matched, whether or not they were failed (skipped ones and missed draws count). */
  matched: number;
  /** Faults injected. */
  fired: number;
  /** False once `fired` reached `times`. */
  active: boolean;
}

/** A rule as the injector lists it: its input and its state. Plain JSON. */
export type FaultRule = FaultRuleInput & FaultRuleState;

/** A DynamoDB request as the server sees it. `items` has one entry per item the request names (none for
 * `ListTables`), each with what is known of it. */
export interface DynamoDbRequest {
  operation: string;
  items: readonly { table?: string; partitionKey?: string; sortKey?: string }[];
}

export interface ConnectionsRequest {
  operation: ConnectionsOperation;
  connectionId: string;
}

export interface IotPublishRequest {
  topic: string;
}

export interface HandlerInvocation {
  handler: FunctionName;
  route?: string;
  connectionId?: string;
}

/** The request type of each target. */
export interface FaultRequestOf {
  dynamodb: DynamoDbRequest;
  connections: ConnectionsRequest;
  'iot-publish': IotPublishRequest;
  handler: HandlerInvocation;
}

/** The fault type of each target. */
export interface FaultOf {
  dynamodb: DynamoDbFault;
  connections: ConnectionsFault;
  'iot-publish': IotPublishFault;
  handler: HandlerFault;
}

const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

const MATCH_FIELDS: Record<FaultTarget, readonly string[]> = {
  dynamodb: ['operation', 'table', 'partitionKeyPrefix', 'sortKeyPrefix'],
  connections: ['operation', 'connectionId'],
  'iot-publish': ['topic'],
  handler: ['handler', 'route', 'connectionId'],
};

const RULE_FIELDS = ['target', 'fault', 'match', 'id', 'times', 'skip', 'probability'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value))
    throw new InvalidFaultRuleError(field, value, `one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
  return value as T;
}

function someOf<T extends string>(value: unknown, allowed: readonly T[], field: string): OneOrMore<T> {
  if (!Array.isArray(value)) return oneOf(value, allowed, field);
  if (value.length === 0) throw new InvalidFaultRuleError(field, value, 'a name or a non-empty list of names');
  return value.map((v, i) => oneOf(v, allowed, `${field}[${i}]`));
}

function text(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 1024)
    throw new InvalidFaultRuleError(field, value, 'a string of 1-1024 characters');
  return value;
}

function count(value: unknown, field: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min)
    throw new InvalidFaultRuleError(field, value, `a whole number >= ${min}`);
  return value;
}

/** Checks an MQTT topic filter: `#` only as the last level, wildcards only as whole levels. */
function topicFilter(value: unknown, field: string): string {
  const filter = text(value, field);
  const levels = filter.split('/');
  const ok = levels.every(
    (level, i) => (level !== '#' || i === levels.length - 1) && (level.length <= 1 || !/[#+]/.test(level)),
  );
  if (!ok) throw new InvalidFaultRuleError(field, value, 'an MQTT topic filter (`+` and `#` as whole levels)');
  return filter;
}

function parseMatch(target: FaultTarget, value: unknown, field: string): Record<string, unknown> {
  if (!isRecord(value)) throw new InvalidFaultRuleError(field, value, 'an object');
  for (const key of Object.keys(value)) {
    if (!MATCH_FIELDS[target].includes(key))
      throw new InvalidFaultRuleError(
        `${field}.${key}`,
        value[key],
        `absent: ${target} rules match on ${MATCH_FIELDS[target].join(', ')}`,
      );
  }
  const out: Record<string, unknown> = {};
  const at = (key: string) => `${field}.${key}`;
  for (const [key, raw] of Object.entries(value)) {
    if (raw === undefined) continue;
    if (key === 'operation') {
      out[key] =
        target === 'dynamodb'
          ? someOf(raw, DYNAMODB_OPERATIONS, at(key))
          : someOf(raw, CONNECTIONS_OPERATIONS, at(key));
    } else if (key === 'handler') {
      out[key] = someOf(raw, FUNCTION_NAMES, at(key));
    } else if (key === 'topic') {
      out[key] = topicFilter(raw, at(key));
    } else {
      out[key] = text(raw, at(key));
    }
  }
  return out;
}

/**
 * Checks a rule that may come from JSON and returns it typed, with only the known fields.
 * @param field - the rule's path in error messages (`rules[2]` for the CLI's file)
 * @throws {InvalidFaultRuleError} naming the first field that is wrong
 */
export function parseFaultRule(value: unknown, field = 'rule'): FaultRuleInput {
  if (!isRecord(value)) throw new InvalidFaultRuleError(field, value, 'an object');
  for (const key of Object.keys(value)) {
    if (!RULE_FIELDS.includes(key))
      throw new InvalidFaultRuleError(`${field}.${key}`, value[key], `absent (a rule has ${RULE_FIELDS.join(', ')})`);
  }
  const target = oneOf(value.target, FAULT_TARGETS, `${field}.target`);
  const fault = oneOf(value.fault, FAULTS_BY_TARGET[target], `${field}.fault`);
  const rule: Record<string, unknown> = { target, fault };
  if (value.match !== undefined) rule.match = parseMatch(target, value.match, `${field}.match`);
  if (value.id !== undefined) {
    if (typeof value.id !== 'string' || !ID_PATTERN.test(value.id))
      throw new InvalidFaultRuleError(`${field}.id`, value.id, '1-64 characters of [A-Za-z0-9_.:-]');
    rule.id = value.id;
  }
  if (value.times !== undefined) rule.times = count(value.times, `${field}.times`, 1);
  if (value.skip !== undefined) rule.skip = count(value.skip, `${field}.skip`, 0);
  if (value.probability !== undefined) {
    const p = value.probability;
    if (typeof p !== 'number' || !(p > 0 && p <= 1))
      throw new InvalidFaultRuleError(`${field}.probability`, p, 'a number with 0 < p <= 1');
    rule.probability = p;
  }
  return rule as unknown as FaultRuleInput;
}

function includes<T>(wanted: OneOrMore<T> | undefined, actual: T | undefined): boolean {
  if (wanted === undefined) return true;
  if (actual === undefined) return false;
  return Array.isArray(wanted) ? wanted.includes(actual) : wanted === actual;
}

function startsWith(prefix: string | undefined, actual: string | undefined): boolean {
  return prefix === undefined || actual?.startsWith(prefix) === true;
}

/** Whether an MQTT topic matches a filter (`+` one level, `#` this level and all below). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

/** Whether a rule's match selects a request of its target. */
export function ruleMatches<T extends FaultTarget>(
  target: T,
  match: Record<string, unknown> | undefined,
  request: FaultRequestOf[T],
): boolean {
  if (match === undefined) return true;
  switch (target) {
    case 'dynamodb': {
      const m = match as DynamoDbMatch;
      const r = request as DynamoDbRequest;
      if (!includes(m.operation, r.operation as DynamoDbOperation)) return false;
      if (m.table === undefined && m.partitionKeyPrefix === undefined && m.sortKeyPrefix === undefined) return true;
      return r.items.some(
        (item) =>
          (m.table === undefined || item.table === m.table) &&
          startsWith(m.partitionKeyPrefix, item.partitionKey) &&
          startsWith(m.sortKeyPrefix, item.sortKey),
      );
    }
    case 'connections': {
      const m = match as ConnectionsMatch;
      const r = request as ConnectionsRequest;
      return includes(m.operation, r.operation) && (m.connectionId === undefined || m.connectionId === r.connectionId);
    }
    case 'iot-publish': {
      const m = match as IotPublishMatch;
      return m.topic === undefined || topicMatches(m.topic, (request as IotPublishRequest).topic);
    }
    default: {
      const m = match as HandlerMatch;
      const r = request as HandlerInvocation;
      return (
        includes(m.handler, r.handler) &&
        (m.route === undefined || m.route === r.route) &&
        (m.connectionId === undefined || m.connectionId === r.connectionId)
      );
    }
  }
}
