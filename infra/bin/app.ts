#!/usr/bin/env node
/**
 * The deployable app:
 *   npx cdk deploy -c userPoolId=eu-west-1_AbCdEf123 -c userPoolClientIds=clientA,clientB
 * or VIBA_USER_POOL_ID / VIBA_CLIENT_IDS in the environment. Optional context: tokenUse=id,access,
 * stageName=prod, removalPolicy=retain|destroy, createApiGatewayLogRole=true|false, mqtt=true|false.
 */
import { Annotations, App } from 'aws-cdk-lib';
import { AppConfigError, resolveAppConfig } from '../src/app-config.js';
import { VibaRealtimeStack } from '../src/stack.js';

const app = new App();

let config: ReturnType<typeof resolveAppConfig>;
try {
  config = resolveAppConfig({ context: (key) => app.node.tryGetContext(key), env: process.env });
} catch (error) {
  if (!(error instanceof AppConfigError)) throw error;
  console.error(`viba-realtime: ${error.message}`);
  process.exit(1);
}

const { placeholders, ...settings } = config;
// Environment-agnostic on purpose: synth needs no account, and `cdk deploy` targets the caller's
// default account and region.
const stack = new VibaRealtimeStack(app, 'VibaRealtimeStack', {
  description: 'viba-realtime: WebSocket and MQTT chat on API Gateway, IoT Core, Lambda, DynamoDB and Cognito',
  ...settings,
});

if (placeholders.length > 0) {
  // A warning, not an error: CI synthesizes with the examples, and an error would fail that synth.
  Annotations.of(stack).addWarningV2(
    'viba:placeholder-config',
    `Using the example ${placeholders.join(' and ')} from cdk.json: no real token will be accepted. ` +
      'Pass -c userPoolId=... -c userPoolClientIds=... (or VIBA_USER_POOL_ID / VIBA_CLIENT_IDS) before deploying.',
  );
}
