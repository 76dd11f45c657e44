/**
 * The scheduled functions: one EventBridge rule per entry of the protocol's `SCHEDULES`, and the token sweeper
 * it runs (lambdas/src/handlers/token-sweeper.ts): its timeout, environment, permissions and alarm.
 */
import { existsSync } from 'node:fs';
import { ENV, FUNCTION_TIMEOUTS_MS, LIMITS, SCHEDULES, WS_HANDLERS } from '@viba-realtime/protocol';
import type { Alarm } from 'aws-cdk-lib/aws-cloudwatch';
import { describe, expect, it } from 'vitest';
import { TOKEN_SWEEPER_HANDLER, TOKEN_SWEEPER_TABLE_ACTIONS } from '../src/realtime.js';
import {
  actionsOf,
  connectionsOf,
  envOf,
  evaluate,
  logicalIdIn,
  logWriteStatement,
  normalizedStatements,
  type Resource,
  resources,
  statementsOfRole,
  synth,
  tableArns,
} from './support.js';

const SWEEPER = TOKEN_SWEEPER_HANDLER;

/** Synth plus the logical ids the schedule tests compare against. */
function synthSchedules(props: Parameters<typeof synth>[0] = {}) {
  const synthesized = synth(props);
  const idOf = logicalIdIn(synthesized.stack);
  const { realtime } = synthesized;
  return {
    ...synthesized,
    idOf,
    tableId: idOf(realtime.table),
    sweeperId: synthesized.functionIds[SWEEPER],
    sweeperLogGroupId: idOf(realtime.tokenSweeperFunction.logGroup),
  };
}

/** EventBridge's spelling of a rate in minutes. */
const rateExpression = (minutes: number) => (minutes === 1 ? 'rate(1 minute)' : `rate(${minutes} minutes)`);

describe('the contract SCHEDULES', () => {
  it('runs the token sweeper every minute, and only functions the construct has', () => {
    const { realtime } = synthSchedules();

    expect(SCHEDULES).toEqual([{ handler: SWEEPER, rateMinutes: 1 }]);
    for (const { handler, rateMinutes } of SCHEDULES) {
      expect(realtime.functions[handler], handler).toBeDefined();
      expect(Number.isInteger(rateMinutes) && rateMinutes >= 1, handler).toBe(true);
    }
  });
});

describe('Realtime schedules', () => {
  it('are one EventBridge rule per SCHEDULES entry, rate(N minutes), targeting that function alone', () => {
    const { template, realtime, functionIds, idOf } = synthSchedules();

    const rules = Object.fromEntries(resources(template, 'AWS::Events::Rule'));
    expect(Object.keys(rules)).toHaveLength(SCHEDULES.length);
    expect(Object.keys(realtime.schedules).toSorted()).toEqual(SCHEDULES.map((s) => s.handler).toSorted());
    for (const definition of SCHEDULES) {
      const schedule = realtime.schedules[definition.handler];
      expect(schedule.definition).toBe(definition);
      expect(schedule.function).toBe(realtime.functions[definition.handler]);
      const period = definition.rateMinutes * 60;
      expect(rules[idOf(schedule.rule)]?.Properties, definition.handler).toEqual({
        Description: expect.stringMatching(/^viba-realtime: /),
        ScheduleExpression: rateExpression(definition.rateMinutes),
        State: 'ENABLED',
        Targets: [
          {
            Arn: { 'Fn::GetAtt': [functionIds[definition.handler], 'Arn'] },
            Id: 'Target0',
            // One retry of a failed invoke, and never past the period: the next run starts over.
            RetryPolicy: { MaximumRetryAttempts: 1, MaximumEventAgeInSeconds: period },
          },
        ],
      });
    }
  });

  it('run the token sweeper at rate(1 minute)', () => {
    const { template, sweeperId } = synthSchedules();

    const [[, rule]] = resources(template, 'AWS::Events::Rule').filter(([, r]) =>
      JSON.stringify(r.Properties.Targets).includes(`"${sweeperId}"`),
    ) as [[string, Resource]];
    expect(rule.Properties.ScheduleExpression).toBe('rate(1 minute)');
  });

  it('may invoke their function only from their own rule', () => {
    const { template, realtime, functionIds, idOf } = synthSchedules();

    for (const { handler } of SCHEDULES) {
      const arn = { 'Fn::GetAtt': [functionIds[handler], 'Arn'] };
      const permissions = resources(template, 'AWS::Lambda::Permission').filter(
        ([, p]) => JSON.stringify(p.Properties.FunctionName) === JSON.stringify(arn),
      );
      expect(permissions.map(([, p]) => p.Properties)).toEqual([
        {
          Action: 'lambda:InvokeFunction',
          FunctionName: arn,
          Principal: 'events.amazonaws.com',
          SourceArn: { 'Fn::GetAtt': [idOf(realtime.schedules[handler].rule), 'Arn'] },
        },
      ]);
    }
  });

  it('are not retried by Lambda, nor kept queued past their period: the next run starts over', () => {
    const { template, functionIds } = synthSchedules();

    const configs = resources(template, 'AWS::Lambda::EventInvokeConfig');
    expect(configs).toHaveLength(SCHEDULES.length);
    for (const { handler, rateMinutes } of SCHEDULES) {
      const config = configs.find(([, c]) => JSON.stringify(c.Properties.FunctionName).includes(functionIds[handler]));
      expect(config?.[1].Properties, handler).toEqual({
        FunctionName: { Ref: functionIds[handler] },
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 0,
        MaximumEventAgeInSeconds: rateMinutes * 60,
      });
    }
  });

  it('stay with mqtt: false (the sweeper serves the WebSocket channel, which is always there)', () => {
    const { template, realtime } = synthSchedules({ mqtt: false });

    expect(resources(template, 'AWS::Events::Rule')).toHaveLength(SCHEDULES.length);
    expect(realtime.functions[SWEEPER]).toBe(realtime.tokenSweeperFunction);
  });
});

describe('token sweeper function', () => {
  it('is built from lambdas/src/handlers/token-sweeper.ts with the settings of every other function', () => {
    const { template, functionIds } = synthSchedules();
    const propertiesOf = (id: string) => {
      const { Timeout, Environment, Role, Code, LoggingConfig, ...rest } = (template.toJSON().Resources[id] as Resource)
        .Properties;
      const { LogGroup, ...logging } = LoggingConfig as Record<string, unknown>;
      return { ...rest, LoggingConfig: logging };
    };

    expect(existsSync(new URL(`../../lambdas/src/handlers/${SWEEPER}.ts`, import.meta.url))).toBe(true);
    expect(propertiesOf(functionIds[SWEEPER])).toEqual(propertiesOf(functionIds[WS_HANDLERS.routes]));
  });

  it('times out at the contract’s FUNCTION_TIMEOUTS_MS, within one period of its schedule', () => {
    const { template, sweeperId } = synthSchedules();
    const timeout = (template.toJSON().Resources[sweeperId] as Resource).Properties.Timeout as number;

    expect(timeout).toBe(FUNCTION_TIMEOUTS_MS[SWEEPER] / 1000);
    expect(timeout).toBe(60);
    const rateMinutes = SCHEDULES.find((s) => s.handler === SWEEPER)?.rateMinutes ?? 0;
    expect(timeout).toBeLessThanOrEqual(rateMinutes * 60);
    expect(LIMITS.tokenSweepMaxPerRun).toBeGreaterThan(0);
  });

  it('gets the table, the stage’s @connections URL and the log level, and nothing else', () => {
    for (const props of [{ logLevel: 'warn' as const }, { logLevel: 'warn' as const, mqtt: false }]) {
      const { template, sweeperId, tableId, apiId } = synthSchedules(props);

      expect(envOf(template, sweeperId), JSON.stringify(props)).toEqual({
        [ENV.tableName]: { Ref: tableId },
        // A scheduled event carries no API Gateway domain to build the endpoint from.
        [ENV.connectionsEndpoint]: connectionsOf(apiId).url,
        [ENV.logLevel]: 'warn',
        NODE_OPTIONS: '--enable-source-maps',
      });
    }
  });

  it('may exactly: write its logs, query the index, get/delete/batch-write on the table, manage this stage’s connections', () => {
    for (const props of [{}, { mqtt: false }]) {
      const { template, roleId, tableId, apiId, sweeperLogGroupId } = synthSchedules(props);
      const { table, index } = tableArns(tableId);

      expect(normalizedStatements(statementsOfRole(template, roleId(SWEEPER))), JSON.stringify(props)).toEqual(
        normalizedStatements([
          logWriteStatement(sweeperLogGroupId),
          // Spelled out rather than read from TOKEN_SWEEPER_TABLE_ACTIONS, so that widening the grant fails here.
          {
            Effect: 'Allow',
            Action: ['dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem'],
            Resource: table,
          },
          // The index only: the expired tokens of each shard, and a gone connection's subscriptions.
          { Effect: 'Allow', Action: 'dynamodb:Query', Resource: index },
          // PostToConnection (the token_expired frame) and DeleteConnection (the close), on this API and stage.
          { Effect: 'Allow', Action: 'execute-api:ManageConnections', Resource: connectionsOf(apiId).arn },
        ]),
      );
    }
    expect([...TOKEN_SWEEPER_TABLE_ACTIONS].toSorted()).toEqual([
      'dynamodb:BatchWriteItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
    ]);
  });

  it('has a role of its own, no inline or managed policy, and no wildcard action', () => {
    const { template, roleId } = synthSchedules();
    const role = template.toJSON().Resources[roleId(SWEEPER) ?? ''] as Resource;

    expect(role.Properties.Policies).toBeUndefined();
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    for (const action of statementsOfRole(template, roleId(SWEEPER)).flatMap(actionsOf)) {
      expect(action).not.toContain('*');
    }
  });

  it('alarms on any failed run over 5 minutes, with no action of its own', () => {
    const { template, realtime, sweeperId, idOf } = synthSchedules();
    const alarm = realtime.errorAlarms[SWEEPER];

    expect(alarm).toBeDefined();
    expect(realtime.alarms).toContain(alarm);
    expect((template.toJSON().Resources[idOf(alarm as Alarm)] as Resource).Properties).toEqual({
      AlarmDescription: expect.stringContaining('the token sweeper (token-sweeper) failed'),
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Statistic: 'Sum',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: sweeperId } }],
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      EvaluationPeriods: 1,
      Period: 300,
      TreatMissingData: 'notBreaching',
    });
  });

  it('is on the dashboard: per-function health, and its runs and EventBridge’s failed invokes', () => {
    const { template, realtime, sweeperId, idOf } = synthSchedules();
    const [[, dashboard]] = resources(template, 'AWS::CloudWatch::Dashboard') as [[string, Resource]];
    type Widget = { properties: { title: string; metrics?: unknown[][] } };
    const widgets = (JSON.parse(evaluate(dashboard.Properties.DashboardBody)) as { widgets: Widget[] }).widgets;
    const lines = (title: string) =>
      (widgets.find((w) => w.properties.title === title)?.properties.metrics ?? []).map((m) =>
        m.filter((part) => typeof part === 'string').join(' '),
      );

    for (const [title, metric] of [
      ['Lambda: errors', 'Errors'],
      ['Lambda: throttles', 'Throttles'],
      ['Lambda: duration p99 (ms)', 'Duration'],
    ]) {
      expect(lines(title as string), title).toContain(`AWS/Lambda ${metric} FunctionName <${sweeperId}>`);
    }
    expect(lines('Scheduled functions: runs')).toEqual([
      `AWS/Lambda Invocations FunctionName <${sweeperId}>`,
      `AWS/Events FailedInvocations RuleName <${idOf(realtime.schedules[SWEEPER].rule)}>`,
    ]);
  });
});
