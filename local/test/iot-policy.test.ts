/**
 * The IoT policy evaluator the emulated broker enforces on every connect, subscribe, publish and delivery:
 * IAM precedence, wildcards, policy variables, escapes, MQTT wildcards as literals, and the parser's limits.
 */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${…}` here is IAM policy-variable syntax, meant literally.
import { describe, expect, it } from 'vitest';
import {
  compileAuthorizerPolicies,
  compilePolicies,
  evaluate,
  explain,
  type IotAction,
  type IotPolicyContext,
  type IotPolicyDocument,
  IotPolicyError,
  type IotPolicyStatement,
  iotArn,
  parseAuthorizerPolicyDocuments,
  parsePolicyDocument,
  policyDocumentSize,
} from '../src/iot/policy-evaluator.js';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';
const ARN = `arn:aws:iot:${REGION}:${ACCOUNT}`;
const ctx: IotPolicyContext = { clientId: 'device-1' };

function doc(...statements: IotPolicyStatement[]): IotPolicyDocument {
  return { Version: '2012-10-17', Statement: statements };
}

function allow(action: string | string[], resource: string | string[]): IotPolicyStatement {
  return { Effect: 'Allow', Action: action, Resource: resource };
}

function deny(action: string | string[], resource: string | string[]): IotPolicyStatement {
  return { Effect: 'Deny', Action: action, Resource: resource };
}

const topic = (name: string) => iotArn.topic(REGION, ACCOUNT, name);
const filter = (name: string) => iotArn.topicfilter(REGION, ACCOUNT, name);
const client = (id: string) => iotArn.client(REGION, ACCOUNT, id);

function decide(documents: IotPolicyDocument[], action: IotAction, resource: string, context = ctx) {
  return evaluate(compilePolicies(documents), { action, resource }, context);
}

/** Runs `fn` and returns the IotPolicyError it throws. */
function policyError(fn: () => unknown): IotPolicyError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(IotPolicyError);
    return error as IotPolicyError;
  }
  throw new Error('expected an IotPolicyError');
}

describe('iotArn', () => {
  it('builds client, topic and topicfilter ARNs, keeping MQTT wildcards as they are', () => {
    expect(client('abc')).toBe(`${ARN}:client/abc`);
    expect(topic('rt/rooms/r1')).toBe(`${ARN}:topic/rt/rooms/r1`);
    expect(filter('rt/rooms/+/#')).toBe(`${ARN}:topicfilter/rt/rooms/+/#`);
  });
});

describe('precedence', () => {
  it('denies by default: no policies, or no statement for the action or resource', () => {
    expect(decide([], 'iot:Connect', client('a'))).toBe('deny');
    expect(decide([doc(allow('iot:Publish', topic('t')))], 'iot:Subscribe', filter('t'))).toBe('deny');
    expect(decide([doc(allow('iot:Publish', topic('t')))], 'iot:Publish', topic('u'))).toBe('deny');
  });

  it('allows on a matching Allow', () => {
    expect(decide([doc(allow('iot:Publish', topic('t')))], 'iot:Publish', topic('t'))).toBe('allow');
  });

  it('lets an explicit Deny win over an Allow, whatever their order', () => {
    const allowAll = allow('iot:*', '*');
    const denyOne = deny('iot:Publish', topic('secret'));
    for (const statements of [
      [allowAll, denyOne],
      [denyOne, allowAll],
    ]) {
      expect(decide([doc(...statements)], 'iot:Publish', topic('secret'))).toBe('deny');
      expect(decide([doc(...statements)], 'iot:Publish', topic('open'))).toBe('allow');
      expect(decide([doc(...statements)], 'iot:Receive', topic('secret'))).toBe('allow');
    }
  });

  it('combines several documents as one policy: Allow from one, Deny from another', () => {
    const documents = [
      doc(allow('iot:Connect', client('a'))),
      doc(allow(['iot:Publish', 'iot:Receive'], topic('x/*'))),
      doc(deny('iot:Publish', topic('x/admin'))),
    ];
    expect(decide(documents, 'iot:Connect', client('a'))).toBe('allow');
    expect(decide(documents, 'iot:Publish', topic('x/1'))).toBe('allow');
    expect(decide(documents, 'iot:Publish', topic('x/admin'))).toBe('deny');
    expect(decide(documents, 'iot:Receive', topic('x/admin'))).toBe('allow');
  });

  it('names the deciding statement for logs', () => {
    const policies = compilePolicies([
      doc(allow('iot:*', '*')),
      { Version: '2012-10-17', Statement: [{ Sid: 'NoAdmin', ...deny('iot:Publish', topic('admin')) }] },
    ]);
    expect(explain(policies, { action: 'iot:Publish', resource: topic('admin') }, ctx)).toEqual({
      decision: 'deny',
      reason: 'explicit-deny',
      documentIndex: 1,
      statementIndex: 0,
      sid: 'NoAdmin',
    });
    expect(explain(policies, { action: 'iot:Publish', resource: topic('x') }, ctx)).toEqual({
      decision: 'allow',
      reason: 'allowed',
      documentIndex: 0,
      statementIndex: 0,
    });
    expect(explain(compilePolicies([]), { action: 'iot:Connect', resource: client('a') }, ctx)).toEqual({
      decision: 'deny',
      reason: 'implicit-deny',
    });
  });

  it('denies an action outside the five MQTT actions', () => {
    const policies = compilePolicies([doc(allow('*', '*'))]);
    expect(evaluate(policies, { action: 'iot:UpdateThingShadow' as IotAction, resource: '*' }, ctx)).toBe('deny');
  });
});

describe('actions', () => {
  it('matches iot:* and * against every MQTT action', () => {
    for (const pattern of ['iot:*', '*']) {
      for (const action of [
        'iot:Connect',
        'iot:Publish',
        'iot:Subscribe',
        'iot:Receive',
        'iot:RetainPublish',
      ] as const) {
        expect(decide([doc(allow(pattern, '*'))], action, topic('t'))).toBe('allow');
      }
    }
  });

  it('matches prefix and ? wildcards: iot:Pub* is Publish only, not RetainPublish', () => {
    const documents = [doc(allow('iot:Pub*', '*'))];
    expect(decide(documents, 'iot:Publish', topic('t'))).toBe('allow');
    expect(decide(documents, 'iot:RetainPublish', topic('t'))).toBe('deny');
    expect(decide(documents, 'iot:Subscribe', filter('t'))).toBe('deny');
    expect(decide([doc(allow('iot:*Publish', '*'))], 'iot:RetainPublish', topic('t'))).toBe('allow');
    expect(decide([doc(allow('iot:?eceive', '*'))], 'iot:Receive', topic('t'))).toBe('allow');
  });

  it('matches actions case-insensitively', () => {
    expect(decide([doc(allow('IOT:publish', '*'))], 'iot:Publish', topic('t'))).toBe('allow');
    expect(decide([doc(allow('iot:PUB*', '*'))], 'iot:Publish', topic('t'))).toBe('allow');
  });

  it('ignores other services’ actions', () => {
    expect(decide([doc(allow('greengrass:*', '*'))], 'iot:Publish', topic('t'))).toBe('deny');
  });
});

describe('resources', () => {
  it('matches * across / and topic levels (not MQTT semantics)', () => {
    const documents = [doc(allow('iot:Receive', topic('a/*')))];
    expect(decide(documents, 'iot:Receive', topic('a/b'))).toBe('allow');
    expect(decide(documents, 'iot:Receive', topic('a/b/c/d'))).toBe('allow');
    expect(decide(documents, 'iot:Receive', topic('a/'))).toBe('allow');
    expect(decide(documents, 'iot:Receive', topic('a'))).toBe('deny');
    expect(decide(documents, 'iot:Receive', topic('ab'))).toBe('deny');
  });

  it('matches * in the middle and in several places', () => {
    const documents = [doc(allow('iot:Publish', [topic('rooms/*/send'), `arn:aws:iot:*:${ACCOUNT}:topic/x/*/y/*`]))];
    expect(decide(documents, 'iot:Publish', topic('rooms/r1/send'))).toBe('allow');
    expect(decide(documents, 'iot:Publish', topic('rooms/r1/extra/send'))).toBe('allow');
    expect(decide(documents, 'iot:Publish', topic('rooms/r1/sendx'))).toBe('deny');
    expect(decide(documents, 'iot:Publish', topic('x/1/y/2'))).toBe('allow');
    expect(decide(documents, 'iot:Publish', iotArn.topic('eu-west-1', ACCOUNT, 'x/1/y/2'))).toBe('allow');
    expect(decide(documents, 'iot:Publish', iotArn.topic('eu-west-1', '999999999999', 'x/1/y/2'))).toBe('deny');
  });

  it('matches ? as exactly one character, including / and a non-BMP character', () => {
    const documents = [doc(allow('iot:Receive', topic('s/???')))];
    expect(decide(documents, 'iot:Receive', topic('s/abc'))).toBe('allow');
    expect(decide(documents, 'iot:Receive', topic('s/a/c'))).toBe('allow');
    expect(decide(documents, 'iot:Receive', topic('s/ab'))).toBe('deny');
    expect(decide(documents, 'iot:Receive', topic('s/abcd'))).toBe('deny');
    expect(decide(documents, 'iot:Receive', topic('s/a😀c'))).toBe('allow');
  });

  it('matches resources case-sensitively and treats regex metacharacters literally', () => {
    const documents = [doc(allow('iot:Publish', topic('Room.(1)|[a]')))];
    expect(decide(documents, 'iot:Publish', topic('Room.(1)|[a]'))).toBe('allow');
    expect(decide(documents, 'iot:Publish', topic('room.(1)|[a]'))).toBe('deny');
    expect(decide(documents, 'iot:Publish', topic('RoomX(1)|[a]'))).toBe('deny');
  });

  it('matches any resource with a lone *', () => {
    expect(decide([doc(allow('iot:Connect', '*'))], 'iot:Connect', client('anything'))).toBe('allow');
  });

  it('does not let a topic resource match a topicfilter request or the other way round', () => {
    expect(decide([doc(allow('iot:Subscribe', topic('a/b')))], 'iot:Subscribe', filter('a/b'))).toBe('deny');
    expect(decide([doc(allow('iot:Receive', filter('a/b')))], 'iot:Receive', topic('a/b'))).toBe('deny');
  });

  it('matches topic names containing line breaks', () => {
    expect(decide([doc(allow('iot:Receive', topic('a/*')))], 'iot:Receive', topic('a/x\ny'))).toBe('allow');
  });
});

describe('MQTT wildcards in topicfilter resources', () => {
  it('treats + and # in a policy as literal characters', () => {
    const documents = [doc(allow('iot:Subscribe', [filter('rt/rooms/+'), filter('rt/users/#')]))];
    expect(decide(documents, 'iot:Subscribe', filter('rt/rooms/+'))).toBe('allow');
    expect(decide(documents, 'iot:Subscribe', filter('rt/rooms/r1'))).toBe('deny');
    expect(decide(documents, 'iot:Subscribe', filter('rt/users/#'))).toBe('allow');
    expect(decide(documents, 'iot:Subscribe', filter('rt/users/u1/inbox'))).toBe('deny');
  });

  it('lets a policy * cover a subscription with + or # in it', () => {
    const documents = [doc(allow('iot:Subscribe', filter('rt/rooms/*')))];
    expect(decide(documents, 'iot:Subscribe', filter('rt/rooms/+'))).toBe('allow');
    expect(decide(documents, 'iot:Subscribe', filter('rt/rooms/#'))).toBe('allow');
    expect(decide([doc(allow('iot:Subscribe', filter('rt/rooms/?')))], 'iot:Subscribe', filter('rt/rooms/#'))).toBe(
      'allow',
    );
  });

  it('does not let a Deny of a literal # topic filter deny its narrower filters', () => {
    const documents = [doc(allow('iot:Subscribe', filter('b/*')), deny('iot:Subscribe', filter('b/control/#')))];
    expect(decide(documents, 'iot:Subscribe', filter('b/control/#'))).toBe('deny');
    expect(decide(documents, 'iot:Subscribe', filter('b/control/door'))).toBe('allow');
  });
});

describe('policy variables', () => {
  it('substitutes ${iot:ClientId} in client and topic resources', () => {
    const documents = [
      doc(
        allow('iot:Connect', `${ARN}:client/\${iot:ClientId}`),
        allow(['iot:Publish', 'iot:Receive'], `${ARN}:topic/devices/\${iot:ClientId}/*`),
        allow('iot:Subscribe', `${ARN}:topicfilter/devices/\${iot:ClientId}/*`),
      ),
    ];
    const a = { clientId: 'alpha' };
    expect(decide(documents, 'iot:Connect', client('alpha'), a)).toBe('allow');
    expect(decide(documents, 'iot:Connect', client('beta'), a)).toBe('deny');
    expect(decide(documents, 'iot:Publish', topic('devices/alpha/state'), a)).toBe('allow');
    expect(decide(documents, 'iot:Publish', topic('devices/beta/state'), a)).toBe('deny');
    expect(decide(documents, 'iot:Subscribe', filter('devices/alpha/+'), a)).toBe('allow');
    expect(decide(documents, 'iot:Subscribe', filter('devices/beta/+'), { clientId: 'beta' })).toBe('allow');
  });

  it('substitutes the value literally: a client id of * or + does not become a wildcard', () => {
    const documents = [doc(allow('iot:Receive', `${ARN}:topic/devices/\${iot:ClientId}`))];
    expect(decide(documents, 'iot:Receive', topic('devices/other'), { clientId: '*' })).toBe('deny');
    expect(decide(documents, 'iot:Receive', topic('devices/*'), { clientId: '*' })).toBe('allow');
    expect(decide(documents, 'iot:Receive', topic('devices/a'), { clientId: '?' })).toBe('deny');
  });

  it('reproduces the documented pitfall: a client id of + matches the literal filter my/+/topic', () => {
    const documents = [doc(allow('iot:Subscribe', `${ARN}:topicfilter/my/\${iot:ClientId}/topic`))];
    expect(decide(documents, 'iot:Subscribe', filter('my/+/topic'), { clientId: '+' })).toBe('allow');
    expect(decide(documents, 'iot:Subscribe', filter('my/+/topic'), { clientId: 'dev1' })).toBe('deny');
  });

  it('treats variable names case-insensitively', () => {
    const documents = [doc(allow('iot:Connect', `${ARN}:client/\${IOT:clientid}`))];
    expect(decide(documents, 'iot:Connect', client('c1'), { clientId: 'c1' })).toBe('allow');
  });

  it('makes a resource with an undefined or unknown variable match nothing, for Allow and for Deny', () => {
    const thing = `${ARN}:topic/things/\${iot:Connection.Thing.ThingName}`;
    const unknown = `${ARN}:topic/x/\${iot:NoSuchVariable}`;
    expect(decide([doc(allow('iot:Publish', thing))], 'iot:Publish', topic('things/'))).toBe('deny');
    expect(decide([doc(allow('iot:Publish', unknown))], 'iot:Publish', topic('x/'))).toBe('deny');
    // The same resource in a Deny doesn't deny either; other resources of the statement still count.
    const documents = [doc(allow('iot:Publish', '*'), deny('iot:Publish', [thing, topic('blocked')]))];
    expect(decide(documents, 'iot:Publish', topic('things/'))).toBe('allow');
    expect(decide(documents, 'iot:Publish', topic('blocked'))).toBe('deny');
  });

  it('resolves the thing name when one is given', () => {
    const documents = [doc(allow('iot:Publish', `${ARN}:topic/things/\${iot:Connection.Thing.ThingName}`))];
    expect(decide(documents, 'iot:Publish', topic('things/t1'), { clientId: 'c', thingName: 't1' })).toBe('allow');
  });

  it('resolves ${iot:Connection.Thing.IsAttached} to "false" unless the context says otherwise', () => {
    const documents = [doc(allow('iot:Publish', `${ARN}:topic/attached/\${iot:Connection.Thing.IsAttached}`))];
    expect(decide(documents, 'iot:Publish', topic('attached/false'))).toBe('allow');
    expect(decide(documents, 'iot:Publish', topic('attached/true'))).toBe('deny');
    expect(decide(documents, 'iot:Publish', topic('attached/true'), { clientId: 'c', thingIsAttached: true })).toBe(
      'allow',
    );
  });

  it('treats ${…} as literal text when the document has no Version (IAM’s 2008-10-17 behaviour)', () => {
    const documents: IotPolicyDocument[] = [{ Statement: allow('iot:Connect', `${ARN}:client/\${iot:ClientId}`) }];
    expect(decide(documents, 'iot:Connect', client('c1'), { clientId: 'c1' })).toBe('deny');
    expect(decide(documents, 'iot:Connect', client('${iot:ClientId}'), { clientId: 'c1' })).toBe('allow');
  });

  it('re-resolves when the same context object changes and serves each context its own values', () => {
    const policies = compilePolicies([doc(allow('iot:Connect', `${ARN}:client/\${iot:ClientId}`))]);
    const context = { clientId: 'one' };
    expect(evaluate(policies, { action: 'iot:Connect', resource: client('one') }, context)).toBe('allow');
    context.clientId = 'two';
    expect(evaluate(policies, { action: 'iot:Connect', resource: client('one') }, context)).toBe('deny');
    expect(evaluate(policies, { action: 'iot:Connect', resource: client('two') }, context)).toBe('allow');
    expect(evaluate(policies, { action: 'iot:Connect', resource: client('one') }, { clientId: 'one' })).toBe('allow');
  });
});

describe('escapes ${*}, ${?}, ${$}', () => {
  it('match the literal characters instead of acting as wildcards or variables', () => {
    const documents = [doc(allow('iot:Publish', [topic('star/${*}'), topic('q/${?}'), topic('d/${$}{iot:ClientId}')]))];
    expect(decide(documents, 'iot:Publish', topic('star/*'))).toBe('allow');
    expect(decide(documents, 'iot:Publish', topic('star/x'))).toBe('deny');
    expect(decide(documents, 'iot:Publish', topic('q/?'))).toBe('allow');
    expect(decide(documents, 'iot:Publish', topic('q/x'))).toBe('deny');
    expect(decide(documents, 'iot:Publish', topic('d/${iot:ClientId}'))).toBe('allow');
    expect(decide(documents, 'iot:Publish', topic('d/device-1'))).toBe('deny');
  });

  it('leave a bare $ (as in $aws/ topics) literal', () => {
    const documents = [doc(allow('iot:Subscribe', filter('$aws/events/presence/*')))];
    expect(decide(documents, 'iot:Subscribe', filter('$aws/events/presence/connected/+'))).toBe('allow');
  });
});

describe('Condition (not evaluated)', () => {
  const withCondition = (effect: 'Allow' | 'Deny', resource: string): IotPolicyStatement => ({
    Effect: effect,
    Action: 'iot:Connect',
    Resource: resource,
    Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } },
  });

  it('never lets a conditional Allow allow', () => {
    expect(decide([doc(withCondition('Allow', '*'))], 'iot:Connect', client('a'))).toBe('deny');
  });

  it('still lets a conditional Deny deny', () => {
    expect(decide([doc(allow('iot:*', '*'), withCondition('Deny', client('a')))], 'iot:Connect', client('a'))).toBe(
      'deny',
    );
    expect(decide([doc(allow('iot:*', '*'), withCondition('Deny', client('a')))], 'iot:Connect', client('b'))).toBe(
      'allow',
    );
  });

  it('treats an empty Condition as none', () => {
    expect(decide([doc({ ...allow('iot:Connect', '*'), Condition: {} })], 'iot:Connect', client('a'))).toBe('allow');
  });
});

describe('parsing and validation', () => {
  const valid = JSON.stringify(doc(allow('iot:Connect', '*')));

  it('parses a JSON string and a single (non-list) Statement', () => {
    expect(parsePolicyDocument(valid).Statement).toEqual([allow('iot:Connect', '*')]);
    const single = parsePolicyDocument(
      '{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}',
    );
    expect(decide([single], 'iot:Connect', client('a'))).toBe('deny');
  });

  it('rejects malformed JSON', () => {
    const error = policyError(() => parsePolicyDocument('{"Version": "2012-10-17", "Statement": ['));
    expect(error.code).toBe('invalid_json');
    expect(error.path).toBe('policy');
  });

  it.each([
    ['an array', '[]', 'policy', 'invalid_document'],
    ['a string', '"x"', 'policy', 'invalid_document'],
    ['null', 'null', 'policy', 'invalid_document'],
    ['no Statement', '{"Version":"2012-10-17"}', 'policy.Statement', 'invalid_document'],
    ['an empty Statement list', '{"Version":"2012-10-17","Statement":[]}', 'policy.Statement', 'invalid_document'],
    ['an unknown Version', '{"Version":"2020-01-01","Statement":[]}', 'policy.Version', 'invalid_document'],
    [
      'an unknown top-level element',
      '{"Version":"2012-10-17","Statements":[]}',
      'policy.Statements',
      'invalid_document',
    ],
  ])('rejects %s', (_what, json, path, code) => {
    const error = policyError(() => parsePolicyDocument(json));
    expect(error.code).toBe(code);
    expect(error.path).toBe(path);
  });

  it.each([
    ['a lower-case effect', { Effect: 'allow', Action: 'iot:Connect', Resource: '*' }, 'Effect', 'invalid_document'],
    ['a missing Action', { Effect: 'Allow', Resource: '*' }, 'Action', 'invalid_document'],
    ['an empty Action list', { Effect: 'Allow', Action: [], Resource: '*' }, 'Action', 'invalid_document'],
    [
      'a non-string Action',
      { Effect: 'Allow', Action: ['iot:Connect', 3], Resource: '*' },
      'Action[1]',
      'invalid_document',
    ],
    [
      'an Action without a service',
      { Effect: 'Allow', Action: 'Publish', Resource: '*' },
      'Action',
      'invalid_document',
    ],
    ['a missing Resource', { Effect: 'Allow', Action: 'iot:Connect' }, 'Resource', 'invalid_document'],
    [
      'a Resource that is no ARN',
      { Effect: 'Allow', Action: 'iot:Connect', Resource: 'topic/a' },
      'Resource',
      'invalid_document',
    ],
    ['a misspelt element', { Effect: 'Allow', Actions: 'iot:Connect', Resource: '*' }, 'Actions', 'invalid_document'],
    ['NotAction', { Effect: 'Allow', NotAction: 'iot:Connect', Resource: '*' }, 'NotAction', 'unsupported_element'],
    ['NotResource', { Effect: 'Deny', Action: 'iot:*', NotResource: '*' }, 'NotResource', 'unsupported_element'],
    [
      'Principal',
      { Effect: 'Allow', Principal: '*', Action: 'iot:*', Resource: '*' },
      'Principal',
      'unsupported_element',
    ],
    [
      'a Condition that is not an object of objects',
      { Effect: 'Allow', Action: 'iot:*', Resource: '*', Condition: { Bool: 'x' } },
      'Condition',
      'invalid_document',
    ],
    [
      'an unterminated variable',
      { Effect: 'Allow', Action: 'iot:*', Resource: `${ARN}:client/\${iot:ClientId` },
      'Resource',
      'invalid_variable',
    ],
    [
      'an empty variable',
      { Effect: 'Allow', Action: 'iot:*', Resource: `${ARN}:client/\${}` },
      'Resource',
      'invalid_variable',
    ],
  ])('rejects a statement with %s, naming the element', (_what, statement, element, code) => {
    const json = JSON.stringify({ Version: '2012-10-17', Statement: [allow('iot:Connect', '*'), statement] });
    const error = policyError(() => parsePolicyDocument(json));
    expect(error.code).toBe(code);
    expect(error.path).toBe(`policy.Statement[1].${element}`);
    expect(error.message).toContain(error.path);
  });

  it('measures size as characters outside insignificant whitespace', () => {
    expect(policyDocumentSize('{ "a" : "b c" }')).toBe(11);
    expect(policyDocumentSize('{"a":"\\" x"}')).toBe('{"a":"\\" x"}'.length);
    expect(policyDocumentSize('["😀"]')).toBe(5);
  });

  function documentOfSize(size: number): string {
    const base = JSON.stringify(doc(allow('iot:Publish', topic(''))));
    return base.replace('topic/', `topic/${'a'.repeat(size - base.length)}`);
  }

  it('accepts a document of exactly 2,048 characters, even pretty-printed', () => {
    const json = documentOfSize(2048);
    expect(json.length).toBe(2048);
    expect(() => parsePolicyDocument(json)).not.toThrow();
    expect(() => parsePolicyDocument(JSON.stringify(JSON.parse(json), null, 4))).not.toThrow();
  });

  it('rejects a document over 2,048 characters', () => {
    const error = policyError(() => parsePolicyDocument(documentOfSize(2049)));
    expect(error.code).toBe('document_too_large');
    expect(error.message).toContain('2049');
  });

  it('honours a custom size limit', () => {
    expect(policyError(() => parsePolicyDocument(valid, { maxDocumentChars: 10 })).code).toBe('document_too_large');
  });
});

describe('authorizer policyDocuments', () => {
  const connect = JSON.stringify(doc(allow('iot:Connect', '*')));

  it('accepts JSON strings and objects (the form of the AWS doc examples)', () => {
    const documents = parseAuthorizerPolicyDocuments([connect, doc(allow('iot:Publish', topic('t')))]);
    expect(documents).toHaveLength(2);
    const policies = compileAuthorizerPolicies([connect, doc(allow('iot:Publish', topic('t')))]);
    expect(evaluate(policies, { action: 'iot:Publish', resource: topic('t') }, ctx)).toBe('allow');
  });

  it('accepts an empty list (nothing allowed) and up to 10 documents', () => {
    const none = compileAuthorizerPolicies([]);
    expect(evaluate(none, { action: 'iot:Connect', resource: client('a') }, ctx)).toBe('deny');
    expect(parseAuthorizerPolicyDocuments(Array(10).fill(connect))).toHaveLength(10);
  });

  it('rejects more than 10 documents', () => {
    const error = policyError(() => parseAuthorizerPolicyDocuments(Array(11).fill(connect)));
    expect(error.code).toBe('too_many_documents');
    expect(error.path).toBe('policyDocuments');
  });

  it('rejects a non-list and a document that is neither string nor object, naming its index', () => {
    expect(policyError(() => parseAuthorizerPolicyDocuments(connect)).path).toBe('policyDocuments');
    const error = policyError(() => parseAuthorizerPolicyDocuments([connect, 42]));
    expect(error.code).toBe('invalid_document');
    expect(error.path).toBe('policyDocuments[1]');
  });

  it('names the document and element at fault', () => {
    const bad = JSON.stringify(
      doc(allow('iot:Connect', '*'), { ...allow('iot:Publish', '*'), Effect: 'Maybe' as 'Allow' }),
    );
    const error = policyError(() => compileAuthorizerPolicies([connect, connect, bad]));
    expect(error.path).toBe('policyDocuments[2].Statement[1].Effect');
  });

  it('measures an object document as compact JSON against the limit', () => {
    const big = doc(allow('iot:Publish', topic('a'.repeat(2100))));
    expect(policyError(() => parseAuthorizerPolicyDocuments([big])).code).toBe('document_too_large');
  });

  it('validates documents handed straight to compilePolicies', () => {
    const error = policyError(() => compilePolicies([{ Version: '2012-10-17', Statement: [] } as IotPolicyDocument]));
    expect(error.path).toBe('policyDocuments[0].Statement');
  });
});

describe('a least-privilege chat user policy', () => {
  const sub = '7d3f5a2e-1b4c-4e8f-9a6b-0c1d2e3f4a5b';
  const other = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
  const rooms = ['general', 'team-42'];
  // What the custom authorizer would return for this user: its own sub baked in (not ${iot:ClientId}, which a
  // client chooses), rooms listed one by one.
  const policyDocuments = [
    JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Sid: 'Connect', Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/${sub}-*` },
        {
          Sid: 'Read',
          Effect: 'Allow',
          Action: ['iot:Subscribe'],
          Resource: [`${ARN}:topicfilter/rt/users/${sub}/inbox`, `${ARN}:topicfilter/rt/announcements`],
        },
        {
          Sid: 'Receive',
          Effect: 'Allow',
          Action: 'iot:Receive',
          Resource: [`${ARN}:topic/rt/users/${sub}/inbox`, `${ARN}:topic/rt/announcements`],
        },
        {
          Sid: 'Send',
          Effect: 'Allow',
          Action: 'iot:Publish',
          Resource: rooms.map((room) => `${ARN}:topic/rt/rooms/${room}/send`),
        },
      ],
    }),
  ];
  const policies = compileAuthorizerPolicies(policyDocuments);
  const context: IotPolicyContext = { clientId: `${sub}-phone` };
  const check = (action: IotAction, resource: string) => evaluate(policies, { action, resource }, context);

  it('fits the 2,048-character limit', () => {
    expect(policyDocumentSize(policyDocuments[0] as string)).toBeLessThanOrEqual(2048);
  });

  it('allows what the user needs', () => {
    expect(check('iot:Connect', client(`${sub}-phone`))).toBe('allow');
    expect(check('iot:Connect', client(`${sub}-laptop`))).toBe('allow');
    expect(check('iot:Subscribe', filter(`rt/users/${sub}/inbox`))).toBe('allow');
    expect(check('iot:Subscribe', filter('rt/announcements'))).toBe('allow');
    expect(check('iot:Receive', topic(`rt/users/${sub}/inbox`))).toBe('allow');
    expect(check('iot:Receive', topic('rt/announcements'))).toBe('allow');
    expect(check('iot:Publish', topic('rt/rooms/general/send'))).toBe('allow');
    expect(check('iot:Publish', topic('rt/rooms/team-42/send'))).toBe('allow');
  });

  it('refuses everything else', () => {
    expect(check('iot:Connect', client(sub))).toBe('deny');
    expect(check('iot:Connect', client(`${other}-phone`))).toBe('deny');
    expect(check('iot:Connect', client('phone'))).toBe('deny');
    expect(check('iot:Subscribe', filter(`rt/users/${other}/inbox`))).toBe('deny');
    expect(check('iot:Subscribe', filter('rt/users/+/inbox'))).toBe('deny');
    expect(check('iot:Subscribe', filter('rt/#'))).toBe('deny');
    expect(check('iot:Subscribe', filter('#'))).toBe('deny');
    expect(check('iot:Receive', topic(`rt/users/${other}/inbox`))).toBe('deny');
    expect(check('iot:Publish', topic(`rt/users/${other}/inbox`))).toBe('deny');
    expect(check('iot:Publish', topic(`rt/users/${sub}/inbox`))).toBe('deny');
    expect(check('iot:Publish', topic('rt/announcements'))).toBe('deny');
    expect(check('iot:Publish', topic('rt/rooms/secret/send'))).toBe('deny');
    expect(check('iot:Publish', topic('rt/rooms/general'))).toBe('deny');
    expect(check('iot:Publish', topic('rt/rooms/general/send/extra'))).toBe('deny');
    expect(check('iot:RetainPublish', topic('rt/rooms/general/send'))).toBe('deny');
    expect(check('iot:Subscribe', filter('rt/rooms/general/send'))).toBe('deny');
  });

  it('evaluates repeatedly without changing its answer (cached matchers)', () => {
    for (let i = 0; i < 1000; i++) {
      expect(check('iot:Receive', topic('rt/announcements'))).toBe('allow');
      expect(check('iot:Receive', topic('rt/rooms/general'))).toBe('deny');
    }
  });
});
