/**
 * Builds the deployable app (bin/app.ts) from context and environment, so that a test can synthesize exactly
 * what `cdk synth` does. It lives next to the entry point, not in src/: it runs cdk-nag, a development tool
 * that the construct library does not depend on.
 */
import { Annotations, App, type AppProps, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { type AppConfig, resolveAppConfig } from '../src/app-config.js';
import { VibaRealtimeStack } from '../src/stack.js';

/** The app's one stack. */
export const STACK_NAME = 'VibaRealtimeStack';

export interface CreateAppOptions {
  /** Props of the `App` (context, outdir); the CDK CLI passes its context through the environment instead. */
  readonly appProps?: AppProps;
  /** Where `VIBA_USER_POOL_ID` / `VIBA_CLIENT_IDS` are read. @default process.env */
  readonly env?: Record<string, string | undefined>;
}

/**
 * The app, its stack and the settings it was built from.
 * @throws {AppConfigError} when the Cognito settings are missing or a context value is malformed.
 */
export function createApp(options: CreateAppOptions = {}): { app: App; stack: VibaRealtimeStack; config: AppConfig } {
  const app = new App(options.appProps);
  const config = resolveAppConfig({ context: (key) => app.node.tryGetContext(key), env: options.env ?? process.env });
  const { placeholders, nag, ...settings } = config;
  // Environment-agnostic on purpose: synth needs no account, and `cdk deploy` targets the caller's
  // default account and region.
  const stack = new VibaRealtimeStack(app, STACK_NAME, {
    description: 'viba-realtime: WebSocket and MQTT chat on API Gateway, IoT Core, Lambda, DynamoDB and Cognito',
    ...settings,
  });

  if (nag) {
    // cdk-nag 3 is a policy validation plugin (the v2 `Aspects.of(app).add(...)` form throws): a finding that
    // is not acknowledged (src/nag.ts, each with its reason) fails the synth.
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  }

  if (placeholders.length > 0) {
    // A warning, not an error: CI synthesizes with the examples, and an error would fail that synth.
    Annotations.of(stack).addWarningV2(
      'viba:placeholder-config',
      `Using the example ${placeholders.join(' and ')} from cdk.json: no real token will be accepted. ` +
        'Pass -c userPoolId=... -c userPoolClientIds=... (or VIBA_USER_POOL_ID / VIBA_CLIENT_IDS) before deploying.',
    );
  }
  return { app, stack, config };
}
