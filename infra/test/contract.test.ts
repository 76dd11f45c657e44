/**
 * The stack and the emulator serve one contract: the WebSocket routes, the IoT topic rules and the table that
 * the app stack's template creates are the ones the emulator (`@viba-realtime/local`) routes, runs and creates.
 * Both build from the protocol's tables; this checks the two results against each other, so neither can drift.
 */
import { createTableInput } from '@viba-realtime/lambdas';
import { createIotRules, selectRoute } from '@viba-realtime/local';
import {
  CLIENT_ACTIONS,
  ENV,
  FANOUT_WORKER_HANDLER,
  FUNCTION_ENV,
  IOT_HANDLERS,
  IOT_RULES,
  TOKEN_SWEEPER_HANDLER,
  WS_HANDLERS,
  WS_ROUTES,
} from '@viba-realtime/protocol';
import { describe, expect, it } from 'vitest';
import { logicalIdIn, type Resource, resources, synthAppStack } from './support.js';

describe('the stack and the emulator', () => {
  it('route the same WebSocket actions: the template has a route for exactly the actions the emulator routes', () => {
    const { template } = synthAppStack();
    const routeKeys = resources(template, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey as string);
    const custom = routeKeys.filter((key) => !key.startsWith('$'));

    expect(routeKeys.filter((key) => key.startsWith('$')).toSorted()).toEqual(['$connect', '$default', '$disconnect']);
    // Every action a client may send, and one nobody defines: the emulator picks the template's route or $default.
    for (const action of [...CLIENT_ACTIONS, 'noSuchAction']) {
      const expected = custom.includes(action) ? action : '$default';
      expect(selectRoute(JSON.stringify({ action, requestId: 'r1' })), action).toBe(expected);
    }
    expect(custom.toSorted()).toEqual(
      WS_ROUTES.map((r) => r.routeKey)
        .filter((k) => !k.startsWith('$'))
        .toSorted(),
    );
  });

  it('run the same IoT topic rules: a publish invokes the same Lambda in both, or none in both', async () => {
    const { template, stack } = synthAppStack();
    const functionIds = Object.fromEntries(
      Object.entries(stack.realtime.functions).map(([handler, fn]) => [logicalIdIn(stack)(fn), handler]),
    );
    // Template side: each rule's FROM filter and the handler its one action invokes.
    const stackRules = resources(template, 'AWS::IoT::TopicRule').map(([, r]) => {
      const payload = r.Properties.TopicRulePayload as {
        Sql: string;
        Actions: [{ Lambda: { FunctionArn: { 'Fn::GetAtt': [string, string] } } }];
      };
      const [fnId] = payload.Actions[0].Lambda.FunctionArn['Fn::GetAtt'];
      return { filter: /FROM '([^']+)'$/.exec(payload.Sql)?.[1] ?? '', handler: functionIds[fnId] };
    });
    // Emulator side: its rules engine, with recording Lambdas.
    const invoked: string[] = [];
    const engine = createIotRules(
      () => ({
        ingress: async () => invoked.push(IOT_HANDLERS.ingress),
        presence: async () => invoked.push(IOT_HANDLERS.presence),
      }),
      { line: () => {}, enabled: () => false },
    );
    const payload = Buffer.from(JSON.stringify({ clientId: 'sub-1', eventType: 'connected' }));
    const publish = async (topic: string) => {
      invoked.length = 0;
      await engine.onPublish(null, topic, payload);
      await engine.idle();
      return [...invoked];
    };

    expect(stackRules.map((r) => r.filter).toSorted()).toEqual(IOT_RULES.map((r) => r.filter).toSorted());
    for (const rule of stackRules) {
      const topic = rule.filter.replaceAll('+', 'x1');
      expect(await publish(topic), topic).toEqual([rule.handler]);
    }
    // Topics the server publishes to, and a room's other topics, run no rule in either.
    for (const topic of ['rt/users/x1/inbox', 'rt/users/x1/rooms/r1', 'rt/announcements', 'rt/rooms/r1/other']) {
      expect(
        stackRules.some((r) => matchesFilter(r.filter, topic)),
        topic,
      ).toBe(false);
      expect(await publish(topic), topic).toEqual([]);
    }
  });

  it('create the same table: keys, attribute types, index and projection, billing mode', () => {
    const { template } = synthAppStack();
    const [[, table]] = resources(template, 'AWS::DynamoDB::Table') as [[string, Resource]];
    const local = createTableInput('viba-realtime');
    const sortedBy =
      <T>(key: keyof T) =>
      (a: T, b: T) =>
        String(a[key]).localeCompare(String(b[key]));

    expect(table.Properties.KeySchema).toEqual(local.KeySchema);
    expect(
      (table.Properties.AttributeDefinitions as { AttributeName: string }[]).toSorted(sortedBy('AttributeName')),
    ).toEqual(local.AttributeDefinitions?.toSorted(sortedBy('AttributeName')));
    expect(table.Properties.GlobalSecondaryIndexes).toEqual(local.GlobalSecondaryIndexes);
    expect(table.Properties.BillingMode).toBe(local.BillingMode);
  });
});

describe('the stack and the emulator give each function the same settings', () => {
  /** Each function's environment variable names in the template, without Node's own. */
  const envOf = (props: Parameters<typeof synthAppStack>[0] = {}) => {
    const { template, stack } = synthAppStack(props);
    const ids = Object.fromEntries(
      Object.entries(stack.realtime.functions).map(([handler, fn]) => [logicalIdIn(stack)(fn), handler]),
    );
    const env: Record<string, string[]> = {};
    for (const [id, fn] of resources(template, 'AWS::Lambda::Function')) {
      const handler = ids[id];
      if (handler === undefined) continue;
      const variables = (fn.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables;
      env[handler] = Object.keys(variables ?? {})
        .filter((name) => name !== 'NODE_OPTIONS')
        .toSorted();
    }
    return env;
  };
  const expected = (drop: string[] = []) =>
    Object.fromEntries(
      Object.entries(FUNCTION_ENV).map(([handler, names]) => [
        handler,
        names.filter((name) => !drop.includes(name)).toSorted(),
      ]),
    );

  it("the template sets exactly the protocol's FUNCTION_ENV on every function (the emulator passes only that)", () => {
    expect(envOf()).toEqual(expected());
  });

  it('without the MQTT channel, the same less the IoT endpoint, on the functions that remain', () => {
    const env = envOf({ mqtt: false });
    const all = expected([ENV.iotEndpoint]);
    expect(env).toEqual(Object.fromEntries(Object.keys(env).map((handler) => [handler, all[handler]])));
    expect(Object.keys(env).toSorted()).toEqual(
      [FANOUT_WORKER_HANDLER, TOKEN_SWEEPER_HANDLER, ...Object.values(WS_HANDLERS)].toSorted(),
    );
  });
});

/** MQTT filter matching with `+` and `#`, as IoT Core does it. */
function matchesFilter(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}
