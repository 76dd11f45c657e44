import { useEffect, useRef, useState } from 'react';
import type { Announcement, Announcements, BodyOf, RealtimeSchema } from '../types.js';
import { boundOf, prependUnique } from './buffers.js';
import { useRealtime } from './context.js';

/** Default of {@link UseAnnouncementsOptions.max}. */
export const DEFAULT_MAX_ANNOUNCEMENTS = 50;

/** Options of {@link useAnnouncements}. */
export interface UseAnnouncementsOptions {
  /** The most announcements kept; the oldest are dropped beyond it. @default 50 */
  max?: number;
}

/**
 * Announcements (to everyone and to the user's groups) received while the component is mounted, live or
 * caught up after a reconnect: newest first, unique by `id`, at most `max`. Removes its listener on unmount.
 * For stored ones from before the mount, call `useRealtime().announcements.since(...)`.
 *
 * Typed by the app's schema map: `useAnnouncements<MyApp>()` types bodies with `MyApp['announcement']`.
 *
 * @example
 * function Banner() {
 *   const [latest] = useAnnouncements<MyApp>({ max: 1 });
 *   return latest ? <div role="status">{latest.body.title}</div> : null;
 * }
 */
export function useAnnouncements<S extends RealtimeSchema = RealtimeSchema>(
  options: UseAnnouncementsOptions = {},
): readonly Announcement<BodyOf<S, 'announcement'>>[] {
  type Body = BodyOf<S, 'announcement'>;
  const announcements = useRealtime<S>().announcements;
  const max = boundOf(options.max, DEFAULT_MAX_ANNOUNCEMENTS);

  const [state, setState] = useState<{ of: Announcements<Body>; list: readonly Announcement<Body>[] }>({
    of: announcements,
    list: [],
  });

  const maxRef = useRef(max);
  useEffect(() => {
    maxRef.current = max;
    setState((s) => (s.list.length > max ? { ...s, list: s.list.slice(0, max) } : s));
  }, [max]);

  useEffect(() => {
    setState((s) => (s.of === announcements ? s : { of: announcements, list: [] }));
    return announcements.on('announcement', (announcement) => {
      setState((s) => {
        if (s.of !== announcements) return s;
        const list = prependUnique(s.list, announcement, maxRef.current);
        return list === s.list ? s : { ...s, list };
      });
    });
  }, [announcements]);

  return state.of === announcements ? state.list : NONE;
}

const NONE: readonly never[] = Object.freeze([]);
