import { describe, expect, it } from 'vitest';
import { FANOUT_WORKER_HANDLER, TOKEN_SWEEPER_HANDLER } from '../src/realtime.js';
import { evaluate, logicalIdIn, resources, synth } from './support.js';

type AlarmProperties = {
  AlarmDescription: string;
  MetricName?: string;
  Namespace?: string;
  Dimensions?: { Name: string; Value: unknown }[];
  Metrics?: {
    Id: string;
    Expression?: string;
    MetricStat?: { Metric: { MetricName: string; Dimensions: { Name: string; Value: unknown }[] } };
  }[];
  AlarmActions?: unknown;
  TreatMissingData: string;
};

function alarmsOf(props: Parameters<typeof synth>[0] = {}) {
  const synthesized = synth(props);
  const alarms = Object.fromEntries(
    resources(synthesized.template, 'AWS::CloudWatch::Alarm').map(([id, r]) => [id, r.Properties as AlarmProperties]),
  );
  return { ...synthesized, alarms };
}

describe('Realtime alarms', () => {
  it('watch every function but the WebSocket authorizer for errors, all of them for throttles, and the DLQ', () => {
    const { alarms, functionIds, realtime, stack } = alarmsOf();
    const idOf = logicalIdIn(stack);

    const errorTargets = Object.values(alarms)
      .filter((a) => a.MetricName === 'Errors')
      .map((a) => a.Dimensions?.[0]?.Value);
    // ws-authorizer throws `Unauthorized` for every tokenless connect: its errors are not faults.
    const watched = Object.entries(functionIds).filter(([handler]) => handler !== 'ws-authorizer');
    expect(errorTargets.toSorted(byJson)).toEqual(watched.map(([, id]) => ({ Ref: id })).toSorted(byJson));
    expect(Object.keys(realtime.errorAlarms).toSorted()).toEqual(watched.map(([handler]) => handler).toSorted());

    const throttles = alarms[idOf(realtime.throttlesAlarm)];
    expect(throttles?.Metrics?.find((m) => m.Expression)?.Expression).toBe('SUM(METRICS())');
    const throttled = (throttles?.Metrics ?? []).flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric] : []));
    expect(throttled.map((m) => m.MetricName)).toEqual(Array(7).fill('Throttles'));
    expect(throttled.map((m) => m.Dimensions[0]?.Value).toSorted(byJson)).toEqual(
      Object.values(functionIds)
        .map((id) => ({ Ref: id }))
        .toSorted(byJson),
    );

    expect(alarms[idOf(realtime.fanout.deadLetterAlarm)]?.MetricName).toBe('ApproximateNumberOfMessagesVisible');
    // Errors of six functions, throttles, the dead-letter queue: nothing else, and all listed on the construct.
    expect(Object.keys(alarms)).toHaveLength(8);
    expect(realtime.alarms.map(idOf).toSorted()).toEqual(Object.keys(alarms).toSorted());
  });

  it('have no action of their own and treat no data as OK', () => {
    const { alarms } = alarmsOf();

    for (const [id, alarm] of Object.entries(alarms)) {
      expect(alarm.AlarmActions, id).toBeUndefined();
      expect(alarm.TreatMissingData, id).toBe('notBreaching');
      expect(alarm.AlarmDescription, id).toMatch(/^viba-realtime: /);
    }
  });

  it('cover only the functions that exist with mqtt: false', () => {
    const { alarms, realtime } = alarmsOf({ mqtt: false });

    expect(Object.keys(alarms)).toHaveLength(5);
    expect(Object.keys(realtime.errorAlarms).toSorted()).toEqual([
      FANOUT_WORKER_HANDLER,
      TOKEN_SWEEPER_HANDLER,
      'ws-routes',
    ]);
  });
});

type Widget = { type: string; properties: { title: string; metrics?: unknown[][]; alarms?: string[] } };

function dashboardOf(props: Parameters<typeof synth>[0] = {}) {
  const synthesized = synth(props);
  const dashboards = resources(synthesized.template, 'AWS::CloudWatch::Dashboard');
  const body = dashboards[0]?.[1].Properties.DashboardBody;
  const widgets = body === undefined ? [] : (JSON.parse(evaluate(body)) as { widgets: Widget[] }).widgets;
  const byTitle = Object.fromEntries(widgets.map((w) => [w.properties.title, w]));
  return { ...synthesized, dashboards, widgets, byTitle };
}

/** A widget's metrics as `namespace metric dimension-value` lines. */
const metricLines = (widget: Widget | undefined) =>
  (widget?.properties.metrics ?? []).map((m) => m.filter((part) => typeof part === 'string').join(' '));

describe('Realtime dashboard', () => {
  it('exists by default and is exposed', () => {
    const { dashboards, realtime, stack } = dashboardOf();

    expect(dashboards).toHaveLength(1);
    expect(realtime.dashboard).toBeDefined();
    expect(realtime.dashboard && logicalIdIn(stack)(realtime.dashboard)).toBe(dashboards[0]?.[0]);
  });

  it('shows WebSocket traffic and errors of this API', () => {
    const { byTitle, apiId } = dashboardOf();

    expect(metricLines(byTitle['WebSocket: connects and messages'])).toEqual([
      `AWS/ApiGateway ConnectCount ApiId <${apiId}>`,
      `AWS/ApiGateway MessageCount ApiId <${apiId}>`,
    ]);
    expect(metricLines(byTitle['WebSocket: errors'])).toEqual([
      `AWS/ApiGateway ClientError ApiId <${apiId}>`,
      `AWS/ApiGateway IntegrationError ApiId <${apiId}>`,
      `AWS/ApiGateway ExecutionError ApiId <${apiId}>`,
    ]);
  });

  it('shows errors, throttles and duration of every function', () => {
    const { byTitle, functionIds } = dashboardOf();
    const perFunction = (metric: string) =>
      Object.values(functionIds)
        .map((id) => `AWS/Lambda ${metric} FunctionName <${id}>`)
        .toSorted();

    expect(metricLines(byTitle['Lambda: errors']).toSorted()).toEqual(perFunction('Errors'));
    expect(metricLines(byTitle['Lambda: throttles']).toSorted()).toEqual(perFunction('Throttles'));
    expect(metricLines(byTitle['Lambda: duration p99 (ms)']).toSorted()).toEqual(perFunction('Duration'));
  });

  it('shows the fan-out queue depth and age, the dead-letter queue depth, and every alarm', () => {
    const { byTitle, template, realtime, stack } = dashboardOf();
    const idOf = logicalIdIn(stack);
    const queue = `<${idOf(realtime.fanout.queue)}.QueueName>`;
    const dlq = `<${idOf(realtime.fanout.deadLetterQueue)}.QueueName>`;

    expect(metricLines(byTitle['Fan-out: messages waiting'])).toEqual([
      `AWS/SQS ApproximateNumberOfMessagesVisible QueueName ${queue}`,
      `AWS/SQS ApproximateNumberOfMessagesVisible QueueName ${dlq}`,
    ]);
    expect(metricLines(byTitle['Fan-out: age of the oldest message (s)'])).toEqual([
      `AWS/SQS ApproximateAgeOfOldestMessage QueueName ${queue}`,
    ]);
    const alarmIds = resources(template, 'AWS::CloudWatch::Alarm').map(([id]) => `<${id}.Arn>`);
    expect(byTitle.Alarms?.properties.alarms?.toSorted()).toEqual(alarmIds.toSorted());
  });

  it('is left out with dashboard: false, alarms kept', () => {
    const { dashboards, realtime, template } = dashboardOf({ dashboard: false });

    expect(dashboards).toEqual([]);
    expect(realtime.dashboard).toBeUndefined();
    expect(resources(template, 'AWS::CloudWatch::Alarm')).toHaveLength(8);
  });
});

function byJson(a: unknown, b: unknown): number {
  return JSON.stringify(a).localeCompare(JSON.stringify(b));
}
