#!/usr/bin/env node
/**
 * The deployable app:
 *   npx cdk deploy -c userPoolId=eu-west-1_AbCdEf123 -c userPoolClientIds=clientA,clientB
 * or VIBA_USER_POOL_ID / VIBA_CLIENT_IDS in the environment. Optional context: tokenUse=id,access,
 * stageName=prod, removalPolicy=retain|destroy, createApiGatewayLogRole=true|false, mqtt=true|false,
 * dashboard=true|false, nag=true|false (the cdk-nag AwsSolutions checks, on by default: a finding that is not
 * acknowledged with a reason in src/nag.ts fails the synth).
 */
import { AppConfigError } from '../src/app-config.js';
import { createApp } from './create-app.js';

try {
  createApp();
} catch (error) {
  if (!(error instanceof AppConfigError)) throw error;
  console.error(`viba-realtime: ${error.message}`);
  process.exit(1);
}
