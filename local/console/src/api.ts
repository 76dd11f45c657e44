/** The admin API as the page calls it: same origin, JSON in and out (docs/EMULATOR.md, "Console"). */
import type { AdminErrorBody } from '../../src/admin/types.js';
import { ADMIN_API_PREFIX, ADMIN_EVENTS_PATH } from '../../src/admin/types.js';

/** An error answer of the admin API, with its stable `code`. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${ADMIN_API_PREFIX}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let value: unknown;
  try {
    value = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new ApiError(response.status, 'bad_response', `The emulator answered ${response.status} with no JSON.`);
  }
  if (!response.ok) {
    const error = value as Partial<AdminErrorBody>;
    throw new ApiError(response.status, error.error ?? 'error', error.message ?? `HTTP ${response.status}`);
  }
  return value as T;
}

export const api = {
  get: <T>(path: string) => request<T>('GET', path),
  post: <T>(path: string, body: unknown = {}) => request<T>('POST', path, body),
  delete: <T>(path: string) => request<T>('DELETE', path),
};

/** `ws://{this page's host}/_admin/events`. */
export function eventsUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${ADMIN_EVENTS_PATH}`;
}

/** An error's message for a status line. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}
