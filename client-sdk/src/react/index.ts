/**
 * `@viba-realtime/client/react`: React 18/19 bindings of the client SDK. `react` is an optional peer
 * dependency of the SDK: only this entry imports it.
 *
 * The app creates (and closes) the client; {@link RealtimeProvider} passes it down; the hooks follow its
 * connection state, rooms, notifications and announcements, remove their listeners on unmount, and are safe
 * under StrictMode. Types come from the app's schema map, passed to each hook: `useRoom<MyApp>('lobby')`.
 *
 * @example
 * import { createRealtimeClient } from '@viba-realtime/client';
 * import { RealtimeProvider, useConnectionState, useRoom } from '@viba-realtime/client/react';
 *
 * interface MyApp { message: { text: string } }
 * const client = createRealtimeClient<MyApp>({ url, getToken });
 *
 * function Lobby() {
 *   const state = useConnectionState();
 *   const { messages, send } = useRoom<MyApp>('lobby');
 *   return (
 *     <>
 *       {state !== 'open' && <p>{state}…</p>}
 *       <ul>{messages.map((m) => <li key={m.id}>{m.body.text}</li>)}</ul>
 *       <button type="button" onClick={() => send({ text: 'hi' })}>Say hi</button>
 *     </>
 *   );
 * }
 *
 * root.render(<RealtimeProvider client={client}><Lobby /></RealtimeProvider>);
 */
export { RealtimeProvider, type RealtimeProviderProps, useRealtime } from './context.js';
export {
  DEFAULT_MAX_ANNOUNCEMENTS,
  type UseAnnouncementsOptions,
  useAnnouncements,
} from './use-announcements.js';
export { useConnectionState } from './use-connection-state.js';
export {
  DEFAULT_MAX_NOTIFICATIONS,
  type UseNotificationsOptions,
  type UseNotificationsResult,
  useNotifications,
} from './use-notifications.js';
export { DEFAULT_MAX_MESSAGES, type UseRoomOptions, type UseRoomResult, useRoom } from './use-room.js';
