/**
 * IoT Core policy evaluation for the emulated broker: the decision IoT Core makes on every CONNECT,
 * SUBSCRIBE (per topic filter), PUBLISH and message delivery, from the policy documents the custom authorizer
 * returned. IAM semantics: no matching Allow means deny, a matching Deny beats any Allow; actions match
 * case-insensitively, resources case-sensitively with IAM's `*`/`?` (MQTT's `+`/`#` are ordinary characters);
 * policy variables such as `${iot:ClientId}` are substituted before matching.
 *
 * It runs on every delivery, so documents are compiled once ({@link compilePolicies}) into per-action lists of
 * matchers, and variables are resolved once per connection context (cached by the context object's identity),
 * leaving {@link evaluate} a couple of array walks and string/RegExp tests with no allocation.
 * Sources: `docs/research/iot-policies.md`.
 */
import {
  type IotPolicyDocument,
  type IotPolicyParseOptions,
  type IotPolicyStatement,
  parseAuthorizerPolicyDocuments,
  type ResourceToken,
  tokenizeResource,
  validatePolicyDocument,
} from './policy-document.js';

export * from './policy-document.js';

/** The MQTT actions the broker authorizes. */
export type IotAction = 'iot:Connect' | 'iot:Publish' | 'iot:Subscribe' | 'iot:Receive' | 'iot:RetainPublish';

/** One authorization question: may this connection do `action` on `resource` (an ARN from {@link iotArn})? */
export interface IotRequest {
  action: IotAction;
  resource: string;
}

/**
 * What policy variables resolve to for one connection. Pass the same object for every request of a
 * connection and don't mutate it: resolved matchers are cached by its identity (a changed field is noticed
 * and re-resolved, but costs a rebuild).
 */
export interface IotPolicyContext {
  /** `${iot:ClientId}`: the MQTT client id of the connection. */
  clientId: string;
  /** `${iot:Connection.Thing.ThingName}`; custom-authorizer connections have no thing, so usually absent. */
  thingName?: string;
  /** `${iot:Connection.Thing.IsAttached}` as `"true"`/`"false"`. @default false */
  thingIsAttached?: boolean;
  /** `${iot:DomainName}`: the endpoint domain the client connected to, when known. */
  domainName?: string;
}

/** The outcome of {@link evaluate}. */
export type IotDecision = 'allow' | 'deny';

/** {@link explain}'s account of a decision, for logs. Indexes point into the documents and their statements. */
export type IotDecisionReason =
  | { decision: 'deny'; reason: 'explicit-deny'; documentIndex: number; statementIndex: number; sid?: string }
  | { decision: 'allow'; reason: 'allowed'; documentIndex: number; statementIndex: number; sid?: string }
  | { decision: 'deny'; reason: 'implicit-deny' };

// ----- ARNs ----------------------------------------------------------------------------------------------

/**
 * Builders of the resource ARNs IoT Core authorizes MQTT actions against: `client/{clientId}` for Connect,
 * `topic/{topicName}` for Publish, Receive and RetainPublish, `topicfilter/{topicFilter}` for Subscribe
 * (the filter exactly as sent, `+` and `#` included). Names are not escaped, as IoT Core doesn't.
 * @example
 * iotArn.topicfilter('us-east-1', '123456789012', 'rt/rooms/+') // 'arn:aws:iot:us-east-1:123456789012:topicfilter/rt/rooms/+'
 */
export const iotArn = {
  client: (region: string, account: string, clientId: string): string =>
    `arn:aws:iot:${region}:${account}:client/${clientId}`,
  topic: (region: string, account: string, topicName: string): string =>
    `arn:aws:iot:${region}:${account}:topic/${topicName}`,
  topicfilter: (region: string, account: string, topicFilter: string): string =>
    `arn:aws:iot:${region}:${account}:topicfilter/${topicFilter}`,
} as const;

// ----- matchers ------------------------------------------------------------------------------------------

type Matcher = (value: string) => boolean;

const MATCH_ALL: Matcher = () => true;
const MATCH_NONE: Matcher = () => false;

function escapeRegExp(text: string): string {
  // Only the characters that are syntax under the `u` flag may be escaped there.
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

// Compiled RegExps shared by every policy and connection: a topic pattern with the same substituted text
// (e.g. one room's topics for all its members) compiles once. Bounded so that client-chosen ids can't grow it
// without limit; clearing it only costs recompiles.
const REGEXP_CACHE_LIMIT = 10_000;
const regexpCache = new Map<string, RegExp>();

function cachedRegExp(source: string, flags: string): RegExp {
  const key = `${flags}/${source}`;
  let regexp = regexpCache.get(key);
  if (regexp === undefined) {
    if (regexpCache.size >= REGEXP_CACHE_LIMIT) regexpCache.clear();
    regexp = new RegExp(source, flags);
    regexpCache.set(key, regexp);
  }
  return regexp;
}

/** Turns resolved tokens (no variables left) into the cheapest matcher that is exact. */
function matcherFor(tokens: readonly ResourceToken[]): Matcher {
  if (tokens.length === 1 && tokens[0]?.kind === 'any') return MATCH_ALL;
  let wildcards = 0;
  for (const t of tokens) if (t.kind === 'any' || t.kind === 'one') wildcards++;
  if (wildcards === 0) {
    const literal = tokens.map((t) => (t.kind === 'text' ? t.text : '')).join('');
    return (value) => value === literal;
  }
  if (wildcards === 1 && tokens.length === 2 && tokens[0]?.kind === 'text' && tokens[1]?.kind === 'any') {
    const prefix = tokens[0].text;
    return (value) => value.startsWith(prefix);
  }
  let source = '^';
  for (const t of tokens) {
    if (t.kind === 'text') source += escapeRegExp(t.text);
    // `*` crosses `/` (and `:`): IAM wildcards know nothing of topic levels.
    else if (t.kind === 'any') source += '.*';
    else if (t.kind === 'one') source += '.';
  }
  source += '$';
  // `s`: `.` also matches line breaks, which MQTT topics may contain; `u`: `?` is one character, not one
  // UTF-16 unit.
  const regexp = cachedRegExp(source, 'su');
  return (value) => regexp.test(value);
}

/** Action patterns match case-insensitively, so they are decided against the five actions at compile time. */
const ACTIONS: readonly IotAction[] = [
  'iot:Connect',
  'iot:Publish',
  'iot:Subscribe',
  'iot:Receive',
  'iot:RetainPublish',
];

function actionIndex(action: string): number {
  switch (action) {
    case 'iot:Connect':
      return 0;
    case 'iot:Publish':
      return 1;
    case 'iot:Subscribe':
      return 2;
    case 'iot:Receive':
      return 3;
    case 'iot:RetainPublish':
      return 4;
    default:
      return -1;
  }
}

function actionMask(patterns: readonly string[]): number {
  let mask = 0;
  for (const pattern of patterns) {
    let source = '^';
    for (const c of pattern.toLowerCase()) source += c === '*' ? '.*' : c === '?' ? '.' : escapeRegExp(c);
    const regexp = new RegExp(`${source}$`, 'su');
    ACTIONS.forEach((action, i) => {
      if (regexp.test(action.toLowerCase())) mask |= 1 << i;
    });
  }
  return mask;
}

// ----- variables -----------------------------------------------------------------------------------------

/**
 * The value of a policy variable (name lower-cased) for a connection, or `undefined` when it has none. A
 * variable without a value makes its Resource string match nothing, as IAM documents for keys "not present".
 */
function variableValue(name: string, context: IotPolicyContext): string | undefined {
  switch (name) {
    case 'iot:clientid':
      return context.clientId;
    case 'iot:connection.thing.thingname':
      return context.thingName;
    case 'iot:connection.thing.isattached':
      return context.thingIsAttached === true ? 'true' : 'false';
    case 'iot:domainname':
      return context.domainName;
    default:
      // Thing type/attributes, certificate variables, `aws:*` keys and anything unknown: no value here.
      return undefined;
  }
}

// ----- compilation ---------------------------------------------------------------------------------------

interface ResourcePattern {
  /** Set when the pattern has no variables: the same matcher serves every connection. */
  readonly fixed: Matcher | undefined;
  readonly tokens: readonly ResourceToken[];
}

interface CompiledStatement {
  readonly documentIndex: number;
  readonly statementIndex: number;
  readonly sid: string | undefined;
  readonly deny: boolean;
  readonly resources: readonly ResourcePattern[];
  readonly hasVariables: boolean;
}

interface BoundStatement {
  readonly source: CompiledStatement;
  readonly matchers: readonly Matcher[];
}

/** Per action: the Deny statements (checked first) and the Allow statements that name it. */
interface BoundSet {
  readonly clientId: string;
  readonly thingName: string | undefined;
  readonly thingIsAttached: boolean | undefined;
  readonly domainName: string | undefined;
  readonly denies: readonly (readonly BoundStatement[])[];
  readonly allows: readonly (readonly BoundStatement[])[];
}

/**
 * Policy documents compiled for evaluation. Opaque: build with {@link compilePolicies} or
 * {@link compileAuthorizerPolicies}, use with {@link evaluate} / {@link explain}.
 */
export class CompiledIotPolicies {
  readonly #byAction: readonly (readonly CompiledStatement[])[];
  readonly #bound = new WeakMap<IotPolicyContext, BoundSet>();
  /** Statements without variables, bound once for all contexts. */
  readonly #shared = new Map<CompiledStatement, BoundStatement>();

  /** @internal Use {@link compilePolicies}. */
  constructor(byAction: readonly (readonly CompiledStatement[])[]) {
    this.#byAction = byAction;
  }

  /** @internal The matchers for one connection's variable values, resolved once and cached. */
  bind(context: IotPolicyContext): BoundSet {
    const cached = this.#bound.get(context);
    if (
      cached !== undefined &&
      cached.clientId === context.clientId &&
      cached.thingName === context.thingName &&
      cached.thingIsAttached === context.thingIsAttached &&
      cached.domainName === context.domainName
    ) {
      return cached;
    }
    const denies: BoundStatement[][] = [];
    const allows: BoundStatement[][] = [];
    for (const statements of this.#byAction) {
      const d: BoundStatement[] = [];
      const a: BoundStatement[] = [];
      for (const statement of statements) {
        const bound = this.#bindStatement(statement, context);
        // A statement none of whose resources can match (all had unresolvable variables) is dropped.
        if (bound.matchers.every((m) => m === MATCH_NONE)) continue;
        (statement.deny ? d : a).push(bound);
      }
      denies.push(d);
      allows.push(a);
    }
    const set: BoundSet = {
      clientId: context.clientId,
      thingName: context.thingName,
      thingIsAttached: context.thingIsAttached,
      domainName: context.domainName,
      denies,
      allows,
    };
    this.#bound.set(context, set);
    return set;
  }

  #bindStatement(statement: CompiledStatement, context: IotPolicyContext): BoundStatement {
    if (!statement.hasVariables) {
      let shared = this.#shared.get(statement);
      if (shared === undefined) {
        shared = { source: statement, matchers: statement.resources.map((r) => r.fixed ?? MATCH_NONE) };
        this.#shared.set(statement, shared);
      }
      return shared;
    }
    const matchers = statement.resources.map((resource) => {
      if (resource.fixed !== undefined) return resource.fixed;
      const resolved: ResourceToken[] = [];
      for (const token of resource.tokens) {
        if (token.kind !== 'var') {
          resolved.push(token);
          continue;
        }
        const value = variableValue(token.name, context);
        if (value === undefined) return MATCH_NONE;
        // A substituted value is literal text: a client id of `*` or `+` must not widen its own access.
        resolved.push({ kind: 'text', text: value });
      }
      return matcherFor(resolved);
    });
    return { source: statement, matchers };
  }
}

function asList(value: string | string[]): string[] {
  return Array.isArray(value) ? value : [value];
}

function statementsOf(document: IotPolicyDocument): IotPolicyStatement[] {
  return Array.isArray(document.Statement) ? document.Statement : [document.Statement];
}

/**
 * Validates and compiles policy documents (already parsed, e.g. by {@link parseAuthorizerPolicyDocuments}).
 * Their statements combine as one policy, as IoT Core combines every policy that applies to a principal.
 * @throws {IotPolicyError} when a document is not valid.
 */
export function compilePolicies(documents: readonly IotPolicyDocument[]): CompiledIotPolicies {
  const byAction: CompiledStatement[][] = ACTIONS.map(() => []);
  documents.forEach((raw, documentIndex) => {
    const document = validatePolicyDocument(raw, `policyDocuments[${documentIndex}]`);
    const variables = document.Version === '2012-10-17';
    statementsOf(document).forEach((statement, statementIndex) => {
      const deny = statement.Effect === 'Deny';
      const hasCondition = statement.Condition !== undefined && Object.keys(statement.Condition).length > 0;
      // Conditions aren't evaluated: an Allow that might not hold is dropped, a Deny that might not hold is
      // kept, so the emulator never grants what AWS could refuse.
      if (hasCondition && !deny) return;
      const path = `policyDocuments[${documentIndex}].Statement[${statementIndex}]`;
      const resources: ResourcePattern[] = asList(statement.Resource).map((pattern) => {
        const tokens = tokenizeResource(pattern, variables, `${path}.Resource`);
        const fixed = tokens.some((t) => t.kind === 'var') ? undefined : matcherFor(tokens);
        return { fixed, tokens };
      });
      const compiled: CompiledStatement = {
        documentIndex,
        statementIndex,
        sid: statement.Sid,
        deny,
        resources,
        hasVariables: resources.some((r) => r.fixed === undefined),
      };
      const mask = actionMask(asList(statement.Action));
      for (let i = 0; i < ACTIONS.length; i++) if (mask & (1 << i)) byAction[i]?.push(compiled);
    });
  });
  return new CompiledIotPolicies(byAction);
}

/**
 * Parses, validates and compiles a custom authorizer's `policyDocuments` in one step.
 * @throws {IotPolicyError} naming the document and element at fault.
 */
export function compileAuthorizerPolicies(
  policyDocuments: unknown,
  options: IotPolicyParseOptions = {},
): CompiledIotPolicies {
  return compilePolicies(parseAuthorizerPolicyDocuments(policyDocuments, options));
}

function matchesAny(statement: BoundStatement, resource: string): boolean {
  for (const matcher of statement.matchers) if (matcher(resource)) return true;
  return false;
}

/**
 * IoT Core's decision for one request: `deny` if a Deny statement matches, else `allow` if an Allow
 * statement matches, else `deny`. Allocation-free once the context has been seen.
 * @example
 * evaluate(policies, { action: 'iot:Receive', resource: iotArn.topic(region, account, 'rt/announcements') }, ctx)
 */
export function evaluate(policies: CompiledIotPolicies, request: IotRequest, context: IotPolicyContext): IotDecision {
  const index = actionIndex(request.action);
  if (index === -1) return 'deny';
  const bound = policies.bind(context);
  for (const statement of bound.denies[index] ?? []) if (matchesAny(statement, request.resource)) return 'deny';
  for (const statement of bound.allows[index] ?? []) if (matchesAny(statement, request.resource)) return 'allow';
  return 'deny';
}

/**
 * Like {@link evaluate}, also naming the statement that decided (the first matching Deny, else the first
 * matching Allow) — for the broker's logs when it refuses something.
 */
export function explain(
  policies: CompiledIotPolicies,
  request: IotRequest,
  context: IotPolicyContext,
): IotDecisionReason {
  const index = actionIndex(request.action);
  if (index === -1) return { decision: 'deny', reason: 'implicit-deny' };
  const bound = policies.bind(context);
  const where = (s: BoundStatement) => ({
    documentIndex: s.source.documentIndex,
    statementIndex: s.source.statementIndex,
    ...(s.source.sid === undefined ? {} : { sid: s.source.sid }),
  });
  for (const s of bound.denies[index] ?? []) {
    if (matchesAny(s, request.resource)) return { decision: 'deny', reason: 'explicit-deny', ...where(s) };
  }
  for (const s of bound.allows[index] ?? []) {
    if (matchesAny(s, request.resource)) return { decision: 'allow', reason: 'allowed', ...where(s) };
  }
  return { decision: 'deny', reason: 'implicit-deny' };
}
