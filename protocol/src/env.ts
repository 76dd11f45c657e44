/**
 * Names of the environment variables the Lambda handlers read. The CDK stack sets them in AWS; the
 * emulator passes the same names to the same handler factories. Nothing else configures a handler.
 */
export const ENV = {
  /** DynamoDB table name. */
  tableName: 'VIBA_TABLE_NAME',
  /** Cognito user pool id, e.g. `eu-west-1_AbCdEf123`. */
  userPoolId: 'VIBA_USER_POOL_ID',
  /** Comma-separated app client ids whose tokens are accepted. */
  clientIds: 'VIBA_CLIENT_IDS',
  /** Which token uses are accepted: `id`, `access` or `id,access` (default both). */
  tokenUse: 'VIBA_TOKEN_USE',
  /** Override of the `@connections` endpoint (the emulator sets it; in AWS it comes from the event). */
  connectionsEndpoint: 'VIBA_CONNECTIONS_ENDPOINT',
  /** IoT Core's data-plane endpoint (`https://{prefix}-ats.iot.{region}.amazonaws.com`, from
   * `aws iot describe-endpoint --endpoint-type iot:Data-ATS`), where MQTT deliveries are published. The CDK
   * stack sets it for every handler that fans out; the emulator sets its HTTP URL. Unset: no MQTT delivery. */
  iotEndpoint: 'VIBA_IOT_ENDPOINT',
  /** URL of the fan-out queue (SQS) that large fan-outs are split onto, drained by the `fanout-worker`
   * handler. Unset: every fan-out is delivered inline by the invocation that published it. */
  fanoutQueueUrl: 'VIBA_FANOUT_QUEUE_URL',
  /** Override of the SQS endpoint (the emulator's in-process queue). */
  sqsEndpoint: 'VIBA_SQS_ENDPOINT',
  /** Override of the DynamoDB endpoint (emulator or DynamoDB Local only). */
  dynamodbEndpoint: 'VIBA_DYNAMODB_ENDPOINT',
  /** Override of the JWKS URL (the emulator's dev issuer); unset in AWS, where Cognito's is used. */
  jwksUri: 'VIBA_JWKS_URI',
  /** The AWS account id (12 digits) in the ARNs of the IoT custom authorizer's policies. The CDK stack
   * sets it (a Lambda's environment has no account id of its own); the emulator sets `000000000000`. */
  iotAccountId: 'VIBA_AWS_ACCOUNT_ID',
  /** Log level: `debug`, `info`, `warn`, `error` (default `info`). */
  logLevel: 'VIBA_LOG_LEVEL',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];
