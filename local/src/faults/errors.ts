/**
 * Errors of the fault injection API: one base class with a stable `code`, a subclass per failure kind. Both are
 * the caller's mistake (a rule that cannot be run), so an admin API answers them with 400 and `toJSON()`.
 */

/** Stable codes of {@link FaultInjectionError}. */
export type FaultInjectionErrorCode = 'invalid_fault_rule' | 'fault_target_unavailable';

/** Base class of the fault injection API's errors. Branch on `code` or `instanceof`. */
export class FaultInjectionError extends Error {
  override readonly name: string = 'FaultInjectionError';
  /** The HTTP status an admin API answers with: the request, not the emulator, is at fault. */
  readonly statusCode = 400;

  constructor(
    readonly code: FaultInjectionErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** What an admin API sends back. */
  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message };
  }
}

/**
 * A rule that is not valid: an unknown target or fault, a fault its target cannot have, a bad `times`, `skip`,
 * `probability` or `match` field, an unknown field (a typo would otherwise match everything), or an `id` in use.
 * @example
 * try { emulator.faults?.add(input); } catch (e) { if (e instanceof InvalidFaultRuleError) console.log(e.field); }
 */
export class InvalidFaultRuleError extends FaultInjectionError {
  override readonly name = 'InvalidFaultRuleError';

  constructor(
    /** The offending field's path, e.g. `match.operation` or `rules[2].fault`. */
    readonly field: string,
    /** What was given (as JSON allows). */
    readonly actual: unknown,
    /** What would have been accepted. */
    readonly expected: string,
  ) {
    super('invalid_fault_rule', `${field} must be ${expected}, got ${describe(actual)}.`);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), field: this.field, actual: this.actual, expected: this.expected };
  }
}

/** A rule for a service this emulator does not run: `dynamodb` with `--dynamodb-endpoint` (an external table
 * cannot be made to fail), `iot-publish` with `--no-iot`. */
export class FaultTargetUnavailableError extends FaultInjectionError {
  override readonly name = 'FaultTargetUnavailableError';

  constructor(
    readonly target: string,
    readonly reason: string,
  ) {
    super('fault_target_unavailable', `Faults for ${target} cannot be injected: ${reason}.`);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), target: this.target, reason: this.reason };
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  try {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return String(value);
  }
}
