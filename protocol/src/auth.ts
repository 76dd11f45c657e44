/**
 * What the WebSocket authorizer hands to every route (API Gateway passes the `context` map of the
 * authorizer's answer on `$connect` to all later routes as `requestContext.authorizer`). Values are
 * strings and numbers only, as API Gateway requires.
 */
export interface AuthorizerContext {
  /** Cognito `sub`: the user id used everywhere as the sender and member id. */
  sub: string;
  /** Cognito username, for logs and display. */
  username: string;
  /** Cognito groups, comma-separated ('' when none). */
  groups: string;
  /** Token expiry, epoch seconds. The connection is closed when it acts after this. */
  exp: number;
  /** `id` or `access`. */
  tokenUse: string;
}

/** Splits the comma-separated `groups` of {@link AuthorizerContext}. */
export function parseGroups(groups: string | undefined): string[] {
  return groups ? groups.split(',').filter((g) => g.length > 0) : [];
}
