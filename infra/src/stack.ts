import { CfnOutput, type RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { acknowledgeRealtimeNagFindings } from './nag.js';
import { Realtime, type TokenUse } from './realtime.js';

/** Properties of {@link VibaRealtimeStack}. */
export interface VibaRealtimeStackProps extends StackProps {
  /** Id of the Cognito user pool whose tokens may connect. */
  readonly userPoolId: string;
  /** App client ids whose tokens are accepted (at least one). */
  readonly userPoolClientIds: string[];
  /**
   * Which token uses are accepted.
   * @default ['id', 'access']
   */
  readonly tokenUse?: TokenUse[];
  /**
   * WebSocket stage name.
   * @default 'prod'
   */
  readonly stageName?: string;
  /**
   * Removal policy of the table and log groups.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * See `RealtimeProps.createApiGatewayLogRole`. On by default here, unlike in the construct: this
   * app is the quick start, and a fresh account has no API Gateway logging role, without which the
   * WebSocket stage cannot log and fails to deploy.
   * @default true
   */
  readonly createApiGatewayLogRole?: boolean;
  /**
   * Deploy the MQTT channel on IoT Core (see `RealtimeProps.mqtt`).
   * @default true
   */
  readonly mqtt?: boolean;
  /**
   * Create the CloudWatch dashboard (see `RealtimeProps.dashboard`).
   * @default true
   */
  readonly dashboard?: boolean;
}

/**
 * A deployable, environment-agnostic stack holding one {@link Realtime}, with its outputs: the WebSocket URL,
 * the table, the fan-out queue, with MQTT the IoT endpoint and authorizer name, and `ClientConfig`, the JSON
 * the SDK takes as is (`createRealtimeClient({ config: JSON.parse(output), getToken })`).
 *
 * The cdk-nag AwsSolutions findings the design raises are acknowledged with their reasons (`nag.ts`); the
 * app (bin/app.ts) runs the checks on every synth.
 */
export class VibaRealtimeStack extends Stack {
  readonly realtime: Realtime;

  constructor(scope: Construct, id: string, props: VibaRealtimeStackProps) {
    super(scope, id, props);
    this.realtime = new Realtime(this, 'Realtime', {
      userPool: props.userPoolId,
      userPoolClientIds: props.userPoolClientIds,
      createApiGatewayLogRole: props.createApiGatewayLogRole ?? true,
      ...(props.tokenUse ? { tokenUse: props.tokenUse } : {}),
      ...(props.stageName ? { stageName: props.stageName } : {}),
      ...(props.removalPolicy ? { removalPolicy: props.removalPolicy } : {}),
      ...(props.mqtt === undefined ? {} : { mqtt: props.mqtt }),
      ...(props.dashboard === undefined ? {} : { dashboard: props.dashboard }),
    });
    acknowledgeRealtimeNagFindings(this.realtime);
    new CfnOutput(this, 'WebSocketUrl', {
      description: 'URL clients connect to (append ?token=<Cognito JWT>).',
      value: this.realtime.webSocketUrl,
    });
    new CfnOutput(this, 'ClientConfig', {
      description:
        'What a client app needs (protocol RealtimeClientConfig): createRealtimeClient({ config: JSON.parse(this), getToken }).',
      // toJsonString renders the deploy-time values (region, URLs, endpoint) inside the JSON string.
      value: this.toJsonString(this.realtime.clientConfig()),
    });
    new CfnOutput(this, 'TableName', {
      description: 'The DynamoDB table.',
      value: this.realtime.table.tableName,
    });
    new CfnOutput(this, 'FanoutQueueUrl', {
      description: "The fan-out queue (SQS): a backend publisher's VIBA_FANOUT_QUEUE_URL.",
      value: this.realtime.fanout.queue.queueUrl,
    });
    const mqtt = this.realtime.mqtt;
    if (mqtt) {
      new CfnOutput(this, 'MqttEndpoint', {
        description: "Host MQTT clients connect to (the account's IoT Core data endpoint, iot:Data-ATS).",
        value: mqtt.endpointAddress,
      });
      new CfnOutput(this, 'IotAuthorizerName', {
        description: 'IoT custom authorizer clients name in their CONNECT (x-amz-customauthorizer-name).',
        value: mqtt.authorizerName,
      });
    }
  }
}
