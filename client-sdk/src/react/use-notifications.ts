import type { JsonObject } from '@viba-realtime/protocol';
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import type { BodyOf, Notification, Notifications, RealtimeSchema } from '../types.js';
import { boundOf, prependUnique } from './buffers.js';
import { useRealtime } from './context.js';

/** Default of {@link UseNotificationsOptions.max}. */
export const DEFAULT_MAX_NOTIFICATIONS = 50;

/** Options of {@link useNotifications}. */
export interface UseNotificationsOptions {
  /** The most notifications `latest` keeps; the oldest are dropped beyond it. @default 50 */
  max?: number;
}

/** What {@link useNotifications} returns. */
export interface UseNotificationsResult<Body extends JsonObject = JsonObject> {
  /** Unread notifications in the whole inbox as last reported by the service (`undefined` before the first
   * connect); re-renders on every change. */
  unreadCount: number | undefined;
  /** Notifications received (live, or caught up after a reconnect) while the component is mounted, newest
   * first, at most `max`. Those marked read through this hook's `markRead`/`markAllRead` show `read: true`.
   * For the inbox itself (older ones, on a fresh mount) use `list()`. */
  latest: readonly Notification<Body>[];
  /** `client.notifications.markRead`: resolves to the unread count left. Stable. */
  markRead: (ids: string[]) => Promise<number>;
  /** `client.notifications.markAllRead`: resolves to the unread count left (0). Stable. */
  markAllRead: () => Promise<number>;
  /** `client.notifications.list`: a page of the inbox, newest first. Stable. */
  list: Notifications<Body>['list'];
}

/**
 * The signed-in user's notifications: the unread count (read through `useSyncExternalStore`), the latest ones
 * received while mounted, and stable `markRead` / `markAllRead` / `list`. Removes its listeners on unmount.
 *
 * Typed by the app's schema map: `useNotifications<MyApp>()` types bodies with `MyApp['notification']`.
 *
 * @example
 * function Bell() {
 *   const { unreadCount, latest, markAllRead } = useNotifications<MyApp>();
 *   return (
 *     <button type="button" onClick={() => markAllRead()} title={latest[0]?.body.title}>
 *       🔔 {unreadCount ?? 0}
 *     </button>
 *   );
 * }
 */
export function useNotifications<S extends RealtimeSchema = RealtimeSchema>(
  options: UseNotificationsOptions = {},
): UseNotificationsResult<BodyOf<S, 'notification'>> {
  type Body = BodyOf<S, 'notification'>;
  const notifications = useRealtime<S>().notifications;
  const max = boundOf(options.max, DEFAULT_MAX_NOTIFICATIONS);

  const subscribe = useCallback((onChange: () => void) => notifications.on('unread', onChange), [notifications]);
  const getUnread = useCallback(() => notifications.unreadCount, [notifications]);
  const unreadCount = useSyncExternalStore(subscribe, getUnread, getUnread);

  const [state, setState] = useState<{ of: Notifications<Body>; latest: readonly Notification<Body>[] }>({
    of: notifications,
    latest: [],
  });
  const latest = state.of === notifications ? state.latest : NONE;

  const maxRef = useRef(max);
  // Whether this hook is mounted with this inbox: `markRead` answers arriving later change nothing.
  const currentRef = useRef<Notifications<Body> | undefined>(undefined);
  useEffect(() => {
    maxRef.current = max;
    setState((s) => (s.latest.length > max ? { ...s, latest: s.latest.slice(0, max) } : s));
  }, [max]);

  useEffect(() => {
    currentRef.current = notifications;
    setState((s) => (s.of === notifications ? s : { of: notifications, latest: [] }));
    const off = notifications.on('notification', (notification) => {
      setState((s) => {
        if (s.of !== notifications) return s;
        const next = prependUnique(s.latest, notification, maxRef.current);
        return next === s.latest ? s : { ...s, latest: next };
      });
    });
    return () => {
      off();
      if (currentRef.current === notifications) currentRef.current = undefined;
    };
  }, [notifications]);

  /** Marks `ids` (or all) read in `latest`, if still mounted with the same inbox. */
  const markLocally = useCallback(
    (ids: ReadonlySet<string> | 'all') => {
      if (currentRef.current !== notifications) return;
      setState((s) => {
        if (s.of !== notifications) return s;
        let changed = false;
        const next = s.latest.map((n) => {
          if (n.read || (ids !== 'all' && !ids.has(n.id))) return n;
          changed = true;
          return { ...n, read: true };
        });
        return changed ? { ...s, latest: next } : s;
      });
    },
    [notifications],
  );

  const markRead = useCallback(
    async (ids: string[]) => {
      const unread = await notifications.markRead(ids);
      markLocally(new Set(ids));
      return unread;
    },
    [notifications, markLocally],
  );
  const markAllRead = useCallback(async () => {
    const unread = await notifications.markAllRead();
    markLocally('all');
    return unread;
  }, [notifications, markLocally]);
  const list = useCallback<Notifications<Body>['list']>(
    (listOptions) => notifications.list(listOptions),
    [notifications],
  );

  return { unreadCount, latest, markRead, markAllRead, list };
}

const NONE: readonly never[] = Object.freeze([]);
