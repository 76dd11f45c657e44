/**
 * IoT Core policy documents as a custom authorizer returns them: their types, their limits, and a validating
 * parser that refuses what IoT Core would refuse (or what we cannot evaluate faithfully) with an error naming
 * the offending element. Sources and the choices made where the docs are silent:
 * `docs/research/iot-policies.md`.
 */
import { IOT_LIMITS } from '@viba-realtime/protocol';

/**
 * Limits on a custom authorizer's `policyDocuments` (custom-auth-lambda docs: "The maximum number of policy
 * documents is 10 … Each policy document can contain a maximum of 2,048 characters").
 */
export const IOT_POLICY_LIMITS = {
  maxDocuments: IOT_LIMITS.maxPolicyDocuments,
  maxDocumentChars: IOT_LIMITS.maxPolicyDocumentChars,
} as const;

/** The policy-language versions IAM knows; only `2012-10-17` substitutes policy variables. */
export type IotPolicyVersion = '2012-10-17' | '2008-10-17';

/** `Allow` or `Deny`, spelled exactly so (IAM does not accept other casings). */
export type IotPolicyEffect = 'Allow' | 'Deny';

/**
 * A `Condition` block. Kept only so that it can be recognised: conditions are not evaluated (see
 * {@link IotPolicyStatement.Condition}).
 */
export type IotPolicyCondition = Record<string, Record<string, unknown>>;

/** One statement of an IoT policy. */
export interface IotPolicyStatement {
  Sid?: string;
  Effect: IotPolicyEffect;
  /** Action patterns, e.g. `iot:Publish`, `iot:*`, `iot:Pub*`; matched case-insensitively. */
  Action: string | string[];
  /** Resource ARN patterns with IAM wildcards (`*`, `?`) and, in `2012-10-17`, policy variables. */
  Resource: string | string[];
  /**
   * Not evaluated. A non-empty Condition makes the statement conservative: as an Allow it never applies, as a
   * Deny it applies as though the condition held.
   */
  Condition?: IotPolicyCondition;
}

/** An IoT Core policy document. */
export interface IotPolicyDocument {
  /** Absent means `2008-10-17` for IAM: `${…}` is then literal text, not a variable. */
  Version?: IotPolicyVersion;
  Id?: string;
  Statement: IotPolicyStatement | IotPolicyStatement[];
}

/** What was wrong with a policy document or with the list of them. */
export type IotPolicyErrorCode =
  | 'too_many_documents'
  | 'document_too_large'
  | 'invalid_json'
  | 'invalid_document'
  | 'unsupported_element'
  | 'invalid_variable';

/**
 * A policy document (or the authorizer's list of them) that cannot be used. `path` names the element, e.g.
 * `policyDocuments[1].Statement[0].Effect`; the emulator logs it and refuses the connection.
 */
export class IotPolicyError extends Error {
  override readonly name = 'IotPolicyError';
  constructor(
    readonly code: IotPolicyErrorCode,
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

/** Options of the parsers; the defaults are IoT Core's documented limits. */
export interface IotPolicyParseOptions {
  /** @default 2048 */
  maxDocumentChars?: number;
  /** @default 10 */
  maxDocuments?: number;
}

// ----- resource patterns ---------------------------------------------------------------------------------

/** One piece of a resource pattern: literal text, `*`, `?`, or a policy variable (name lower-cased). */
export type ResourceToken =
  | { kind: 'text'; text: string }
  | { kind: 'any' }
  | { kind: 'one' }
  | { kind: 'var'; name: string };

/**
 * Splits a Resource string into tokens. With variables on (`2012-10-17`), `${*}`, `${?}` and `${$}` are the
 * literal characters (IAM's "special characters" variables) and any other `${name}` is a variable; an
 * unterminated or empty `${` is an error, as IAM Access Analyzer reports it. With variables off, `${…}` is
 * plain text (with `*`/`?` inside it still wildcards), as IAM treats it without a `Version`.
 */
export function tokenizeResource(pattern: string, variables: boolean, path: string): ResourceToken[] {
  const tokens: ResourceToken[] = [];
  let text = '';
  const flush = (): void => {
    if (text !== '') tokens.push({ kind: 'text', text });
    text = '';
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (variables && c === '$' && pattern[i + 1] === '{') {
      const end = pattern.indexOf('}', i + 2);
      if (end === -1)
        throw new IotPolicyError('invalid_variable', path, `unterminated policy variable in "${pattern}"`);
      const inner = pattern.slice(i + 2, end);
      i = end;
      if (inner === '*' || inner === '?' || inner === '$') {
        text += inner;
        continue;
      }
      if (inner.trim() === '')
        throw new IotPolicyError('invalid_variable', path, `empty policy variable in "${pattern}"`);
      flush();
      // IAM context-key names are case-insensitive; lower-casing once here keeps lookups cheap later.
      tokens.push({ kind: 'var', name: inner.trim().toLowerCase() });
      continue;
    }
    if (c === '*') {
      flush();
      // `**` matches what `*` matches; one token keeps the generated RegExp linear.
      if (tokens.at(-1)?.kind !== 'any') tokens.push({ kind: 'any' });
      continue;
    }
    if (c === '?') {
      flush();
      tokens.push({ kind: 'one' });
      continue;
    }
    text += c;
  }
  flush();
  return tokens;
}

// ----- validation ----------------------------------------------------------------------------------------

const DOCUMENT_KEYS = new Set(['Version', 'Id', 'Statement']);
const STATEMENT_KEYS = new Set(['Sid', 'Effect', 'Action', 'Resource', 'Condition']);
// Valid IAM grammar, but either meaningless for an identity policy (Principal) or not documented for IoT
// Core policies (Not*): refusing them is safer than guessing an evaluation AWS might not share.
const UNSUPPORTED_STATEMENT_KEYS = new Set(['NotAction', 'NotResource', 'Principal', 'NotPrincipal']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringList(value: unknown, path: string, what: string): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) throw new IotPolicyError('invalid_document', path, `${what} must not be an empty list`);
  list.forEach((item, i) => {
    const itemPath = Array.isArray(value) ? `${path}[${i}]` : path;
    if (typeof item !== 'string') {
      throw new IotPolicyError('invalid_document', itemPath, `${what} must be a string or a list of strings`);
    }
    if (item === '') throw new IotPolicyError('invalid_document', itemPath, `${what} must not be empty`);
  });
  return list as string[];
}

function validateAction(action: string, path: string): void {
  // IAM actions are `service:name` (wildcards allowed) or a lone `*`.
  if (action !== '*' && !/^[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+$/.test(action)) {
    throw new IotPolicyError('invalid_document', path, `"${action}" is not an action such as "iot:Publish"`);
  }
}

function validateResource(resource: string, variables: boolean, path: string): void {
  // IAM resources are ARNs (`arn:partition:service:region:account:resource`) or a lone `*`.
  if (resource !== '*' && !/^arn:[^:]*:[^:]*:[^:]*:[^:]*:./.test(resource)) {
    throw new IotPolicyError('invalid_document', path, `"${resource}" is not "*" or an ARN`);
  }
  tokenizeResource(resource, variables, path);
}

function validateStatement(value: unknown, variables: boolean, path: string): IotPolicyStatement {
  if (!isRecord(value)) throw new IotPolicyError('invalid_document', path, 'a statement must be an object');
  for (const key of Object.keys(value)) {
    if (UNSUPPORTED_STATEMENT_KEYS.has(key)) {
      throw new IotPolicyError('unsupported_element', `${path}.${key}`, `${key} is not supported by this emulator`);
    }
    if (!STATEMENT_KEYS.has(key)) {
      throw new IotPolicyError('invalid_document', `${path}.${key}`, `unknown statement element "${key}"`);
    }
  }
  if (value.Sid !== undefined && typeof value.Sid !== 'string') {
    throw new IotPolicyError('invalid_document', `${path}.Sid`, 'Sid must be a string');
  }
  if (value.Effect !== 'Allow' && value.Effect !== 'Deny') {
    throw new IotPolicyError('invalid_document', `${path}.Effect`, 'Effect must be "Allow" or "Deny"');
  }
  if (value.Action === undefined) throw new IotPolicyError('invalid_document', `${path}.Action`, 'Action is required');
  const actions = stringList(value.Action, `${path}.Action`, 'Action');
  for (const [i, a] of actions.entries()) {
    validateAction(a, Array.isArray(value.Action) ? `${path}.Action[${i}]` : `${path}.Action`);
  }
  if (value.Resource === undefined) {
    throw new IotPolicyError('invalid_document', `${path}.Resource`, 'Resource is required');
  }
  const resources = stringList(value.Resource, `${path}.Resource`, 'Resource');
  for (const [i, r] of resources.entries()) {
    validateResource(r, variables, Array.isArray(value.Resource) ? `${path}.Resource[${i}]` : `${path}.Resource`);
  }
  if (value.Condition !== undefined) {
    if (!isRecord(value.Condition) || !Object.values(value.Condition).every(isRecord)) {
      throw new IotPolicyError(
        'invalid_document',
        `${path}.Condition`,
        'Condition must map operators to objects of keys and values',
      );
    }
  }
  return value as unknown as IotPolicyStatement;
}

/**
 * Checks that an already-parsed value is a policy document this evaluator can use, and returns it typed.
 * @throws {IotPolicyError} naming the first element that is wrong.
 */
export function validatePolicyDocument(value: unknown, path = 'policy'): IotPolicyDocument {
  if (!isRecord(value)) throw new IotPolicyError('invalid_document', path, 'a policy document must be a JSON object');
  for (const key of Object.keys(value)) {
    if (!DOCUMENT_KEYS.has(key)) {
      throw new IotPolicyError('invalid_document', `${path}.${key}`, `unknown policy element "${key}"`);
    }
  }
  if (value.Version !== undefined && value.Version !== '2012-10-17' && value.Version !== '2008-10-17') {
    throw new IotPolicyError('invalid_document', `${path}.Version`, 'Version must be "2012-10-17" (or "2008-10-17")');
  }
  if (value.Id !== undefined && typeof value.Id !== 'string') {
    throw new IotPolicyError('invalid_document', `${path}.Id`, 'Id must be a string');
  }
  const variables = value.Version === '2012-10-17';
  const statement = value.Statement;
  if (statement === undefined)
    throw new IotPolicyError('invalid_document', `${path}.Statement`, 'Statement is required');
  if (Array.isArray(statement)) {
    if (statement.length === 0) {
      throw new IotPolicyError('invalid_document', `${path}.Statement`, 'Statement must not be an empty list');
    }
    for (const [i, s] of statement.entries()) validateStatement(s, variables, `${path}.Statement[${i}]`);
  } else {
    validateStatement(statement, variables, `${path}.Statement`);
  }
  return value as unknown as IotPolicyDocument;
}

/**
 * The size IoT Core holds against the 2,048-character limit: characters (code points) of the JSON text, not
 * counting the whitespace between tokens. CreatePolicy documents "2048, excluding whitespace"; whitespace
 * inside string values still counts, the stricter of the possible readings.
 */
export function policyDocumentSize(json: string): number {
  let size = 0;
  let inString = false;
  let escaped = false;
  for (const c of json) {
    if (inString) {
      size++;
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
    } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      // JSON's insignificant whitespace: not counted.
    } else {
      size++;
      if (c === '"') inString = true;
    }
  }
  return size;
}

/**
 * Parses and validates one policy document given as JSON text (the form IoT's API model gives
 * `policyDocuments` entries: a list of strings).
 * @throws {IotPolicyError} `document_too_large`, `invalid_json`, `invalid_document`, `unsupported_element` or
 *   `invalid_variable`.
 * @example
 * parsePolicyDocument('{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}}')
 */
export function parsePolicyDocument(
  json: string,
  options: IotPolicyParseOptions = {},
  path = 'policy',
): IotPolicyDocument {
  const max = options.maxDocumentChars ?? IOT_POLICY_LIMITS.maxDocumentChars;
  const size = policyDocumentSize(json);
  if (size > max) {
    throw new IotPolicyError('document_too_large', path, `${size} characters (whitespace excluded), over ${max}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new IotPolicyError('invalid_json', path, `not valid JSON (${(error as Error).message})`);
  }
  return validatePolicyDocument(value, path);
}

/**
 * Parses the `policyDocuments` of a custom authorizer's answer: at most 10 documents, each a JSON string or,
 * as the examples in IoT's own docs show, an object; each at most 2,048 characters (an object is measured as
 * compact JSON).
 * @throws {IotPolicyError} naming the document, e.g. `policyDocuments[2]`.
 */
export function parseAuthorizerPolicyDocuments(
  value: unknown,
  options: IotPolicyParseOptions = {},
): IotPolicyDocument[] {
  if (!Array.isArray(value)) {
    throw new IotPolicyError('invalid_document', 'policyDocuments', 'policyDocuments must be a list');
  }
  const maxDocuments = options.maxDocuments ?? IOT_POLICY_LIMITS.maxDocuments;
  if (value.length > maxDocuments) {
    throw new IotPolicyError(
      'too_many_documents',
      'policyDocuments',
      `${value.length} documents, over ${maxDocuments}`,
    );
  }
  return value.map((doc, i) => {
    const path = `policyDocuments[${i}]`;
    if (typeof doc === 'string') return parsePolicyDocument(doc, options, path);
    if (isRecord(doc)) return parsePolicyDocument(JSON.stringify(doc), options, path);
    throw new IotPolicyError('invalid_document', path, 'a policy document must be a JSON string or an object');
  });
}
