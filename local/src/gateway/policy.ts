/**
 * Evaluation of the IAM policy a Lambda authorizer returns, the way API Gateway does it for `$connect`:
 * an explicit Deny of the method ARN wins, otherwise an Allow of it is needed; no matching statement
 * means Deny (HTTP 403).
 */
import type { WsAuthorizerResult } from '@viba-realtime/lambdas/handlers/events';

function asList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** IAM wildcards: `*` any run of characters, `?` one character. */
function wildcardMatch(pattern: string, value: string): boolean {
  const regex = new RegExp(
    `^${pattern
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
  );
  return regex.test(value);
}

function statementMatches(statement: Record<string, unknown>, methodArn: string): boolean {
  const actions = asList(statement.Action as string | string[] | undefined);
  const notActions = asList(statement.NotAction as string | string[] | undefined);
  const invoke = 'execute-api:Invoke';
  const actionOk =
    actions.length > 0
      ? actions.some((a) => wildcardMatch(a, invoke))
      : notActions.length > 0 && !notActions.some((a) => wildcardMatch(a, invoke));
  if (!actionOk) return false;
  const resources = asList(statement.Resource as string | string[] | undefined);
  const notResources = asList(statement.NotResource as string | string[] | undefined);
  if (resources.length > 0) return resources.some((r) => wildcardMatch(r, methodArn));
  return notResources.length > 0 && !notResources.some((r) => wildcardMatch(r, methodArn));
}

/**
 * Whether the authorizer's answer lets the caller invoke `methodArn`.
 * @example
 * isAllowed(result, 'arn:aws:execute-api:us-east-1:000000000000:localapi01/local/$connect')
 */
export function isAllowed(result: WsAuthorizerResult, methodArn: string): boolean {
  const statements = (result.policyDocument?.Statement ?? []) as unknown as Record<string, unknown>[];
  const matching = statements.filter((s) => statementMatches(s, methodArn));
  if (matching.some((s) => s.Effect === 'Deny')) return false;
  return matching.some((s) => s.Effect === 'Allow');
}
