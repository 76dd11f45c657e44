/**
 * Fault injection in the emulator (docs/EMULATOR.md#fault-injection): rules that make DynamoDB, `@connections`,
 * IoT's data plane or a Lambda invocation fail the way AWS fails, so a test can assert what the system does then.
 */
import type { EmulatorLogger } from '../log.js';
import { FaultInjector, type FaultSetting, faultOptionsOf, parseFunctionTimeouts } from './injector.js';
import { LambdaHost } from './lambda-host.js';
import type { FaultTarget } from './rules.js';

export * from './dynamodb-request.js';
export * from './errors.js';
export * from './injector.js';
export * from './lambda-host.js';
export * from './rules.js';

/** The parts of the emulator that fault injection adds. */
export interface FaultInjection {
  injector: FaultInjector;
  /** Invokes the Lambdas with their timeouts, `handler` faults and asynchronous retries. */
  host: LambdaHost;
}

/**
 * Builds the injector (with the setting's rules) and the Lambda host, or undefined when the setting is off.
 * @throws {InvalidFaultRuleError} a rule or a timeout of the setting is not valid
 * @throws {FaultTargetUnavailableError} a rule's target is in `unavailable`
 */
export function createFaultInjection(
  setting: FaultSetting | undefined,
  context: {
    logger: EmulatorLogger;
    region: string;
    accountId: string;
    unavailable?: Partial<Record<FaultTarget, string>>;
  },
): FaultInjection | undefined {
  const options = faultOptionsOf(setting);
  if (options === undefined) return undefined;
  const injector = new FaultInjector({
    logger: context.logger,
    ...(options.seed === undefined ? {} : { seed: options.seed }),
    ...(context.unavailable ? { unavailable: context.unavailable } : {}),
  });
  for (const rule of options.rules ?? []) injector.add(rule);
  const host = new LambdaHost({
    faults: injector.hook('handler'),
    ...(options.functionTimeoutsMs ? { timeoutsMs: parseFunctionTimeouts(options.functionTimeoutsMs) } : {}),
    region: context.region,
    accountId: context.accountId,
    logger: context.logger,
  });
  return { injector, host };
}
