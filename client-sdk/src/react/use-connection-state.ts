import { useCallback, useSyncExternalStore } from 'react';
import type { ConnectionState } from '../types.js';
import { useRealtime } from './context.js';

/**
 * The client's connection state (`idle`, `connecting`, `open`, `reconnecting`, `closed`); the component
 * re-renders on every change. Read through `useSyncExternalStore`, so every component of a render sees the
 * same value.
 *
 * @example
 * function ConnectionBadge() {
 *   const state = useConnectionState();
 *   return state === 'open' ? null : <span className="badge">{state}…</span>;
 * }
 */
export function useConnectionState(): ConnectionState {
  const client = useRealtime();
  const subscribe = useCallback((onChange: () => void) => client.on('state', onChange), [client]);
  const getSnapshot = useCallback(() => client.state, [client]);
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}
