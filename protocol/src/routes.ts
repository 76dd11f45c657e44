/**
 * The API Gateway WebSocket route table. The CDK stack creates exactly these routes and the emulator
 * serves exactly these; a test asserts both match this table.
 */
import { CLIENT_ACTIONS } from './frames.js';

/** API Gateway's route selection expression: routes are chosen by the frame's `action` field. */
export const ROUTE_SELECTION_EXPRESSION = '$request.body.action';

/** The Lambda entry points of the WebSocket API (one file each in lambdas/src/handlers/). */
export const WS_HANDLERS = {
  /** REQUEST authorizer on `$connect`. */
  authorizer: 'ws-authorizer',
  /** Every route, dispatched on `requestContext.routeKey`. */
  routes: 'ws-routes',
} as const;
export type WsHandlerName = (typeof WS_HANDLERS)[keyof typeof WS_HANDLERS];

export const SPECIAL_ROUTES = ['$connect', '$disconnect', '$default'] as const;
export type RouteKey = (typeof SPECIAL_ROUTES)[number] | (typeof CLIENT_ACTIONS)[number];

export interface RouteDefinition {
  readonly routeKey: RouteKey;
  readonly handler: WsHandlerName;
  /** Whether API Gateway runs the authorizer before this route (only `$connect` can have one). */
  readonly authorized: boolean;
  /** Two-way route: the Lambda's response `body` is sent back to the caller as one frame (API Gateway
   * route response `$default`). Used for acks, errors, history pages and pongs. */
  readonly returnResponse: boolean;
}

/** Every route of the WebSocket API, in a stable order. */
export const WS_ROUTES: readonly RouteDefinition[] = [
  { routeKey: '$connect', handler: WS_HANDLERS.routes, authorized: true, returnResponse: false },
  { routeKey: '$disconnect', handler: WS_HANDLERS.routes, authorized: false, returnResponse: false },
  { routeKey: '$default', handler: WS_HANDLERS.routes, authorized: false, returnResponse: true },
  ...CLIENT_ACTIONS.map((action) => ({
    routeKey: action,
    handler: WS_HANDLERS.routes,
    authorized: false,
    returnResponse: true,
  })),
];

/** The stage name the emulator serves (`ws://HOST/local`). */
export const LOCAL_STAGE = 'local';

/** Query string parameter that carries the token on connect (browsers cannot set headers). */
export const TOKEN_QUERY_PARAM = 'token';
