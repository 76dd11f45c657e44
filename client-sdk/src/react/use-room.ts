import type { JsonObject, RoomVisibility } from '@viba-realtime/protocol';
import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import { RealtimeClientError } from '../errors.js';
import type { BodyOf, ChatMessage, RealtimeClient, RealtimeSchema, Room, RoomStatus, SendResult } from '../types.js';
import { boundOf, mergeMessages } from './buffers.js';
import { useRealtime } from './context.js';
import { releaseRoom, retainRoom } from './room-users.js';

/** Default of {@link UseRoomOptions.maxMessages}. */
export const DEFAULT_MAX_MESSAGES = 200;

/** Options of {@link useRoom}. */
export interface UseRoomOptions {
  /** The most messages `messages` keeps; the oldest are dropped beyond it. @default 200 */
  maxMessages?: number;
  /**
   * Load the room's newest history page once the room is joined, so the list starts with what was said
   * before the component mounted (`true`), with at most `limit` messages (`{ limit }`; default: the
   * service's page size), or not at all (`false`: only messages delivered live while mounted).
   *
   * On by default because a chat view almost always wants it; it costs one request per mount. History and
   * live messages are merged: one entry per message `id`, in ascending `seq` order.
   * @default true
   */
  history?: boolean | { limit?: number };
  /**
   * Leave the room when the component unmounts (when the last mounted `useRoom` of this room on this client
   * unmounts, to be exact).
   *
   * Off by default: `client.join()` returns one shared handle per room, so leaving it on unmount would stop
   * the room for every other component (and non-React code) that uses it, and a view that is unmounted and
   * mounted again (tabs, navigation) would leave and join again each time. Turn it on for rooms that only
   * this view uses and that should stop receiving once it is gone. The hook always removes its own
   * listeners on unmount either way.
   * @default false
   */
  leaveOnUnmount?: boolean;
  /** Passed to `client.join()`: the visibility of a room this join creates. */
  visibility?: RoomVisibility;
}

/** What {@link useRoom} returns. */
export interface UseRoomResult<Body extends JsonObject = JsonObject> {
  /** The shared room handle; `undefined` only on the first render of a room nobody joined yet (it is
   * joined in an effect, not during render). */
  room: Room<Body> | undefined;
  /** The room's status (`joining` until the handle exists, `failed` if `client.join` threw); re-renders on
   * every change. */
  status: RoomStatus;
  /** Messages (the newest history page, then those delivered live), ascending `seq`, unique by `id`,
   * at most `maxMessages`. A new array on every change, the same one otherwise. */
  messages: readonly ChatMessage<Body>[];
  /** `room.send()`, stable across renders of the same room: resolves once stored; while disconnected it
   * waits in the client's offline queue. */
  send: (body: Body, options?: { clientId?: string }) => Promise<SendResult>;
  /** Why the room `failed` (`room.error`), else the latest error of the room's `error` event or of the history
   * load; cleared when the room is joined again. */
  error: RealtimeClientError | undefined;
}

interface RoomState {
  client: RealtimeClient;
  name: string;
  room: Room | undefined;
  messages: readonly ChatMessage[];
  error: RealtimeClientError | undefined;
}

const NO_MESSAGES: readonly ChatMessage[] = Object.freeze([]);
const noop = () => {};

function asClientError(error: unknown): RealtimeClientError {
  return error instanceof RealtimeClientError
    ? error
    : new RealtimeClientError('internal', error instanceof Error ? error.message : String(error), { cause: error });
}

/**
 * Joins a room (`client.join(name)`, in an effect) and follows it: its status, its messages (the newest
 * history page, then what is delivered live, bounded by `maxMessages`), a stable `send`, its error. On
 * unmount (or when `name` changes) it removes every listener it added; it leaves the room only with
 * `leaveOnUnmount` (see there why that is off by default). Safe under StrictMode.
 *
 * Typed by the app's schema map: `useRoom<MyApp>('lobby')` types `messages` and `send` with
 * `MyApp['message']` (the map given to `createRealtimeClient<MyApp>()`; the hook cannot infer it from the
 * context).
 *
 * @example
 * interface MyApp { message: { text: string } }
 *
 * function Lobby() {
 *   const { messages, send, status, error } = useRoom<MyApp>('lobby', { maxMessages: 100 });
 *   if (error) return <p>Cannot join: {error.code}</p>;
 *   return (
 *     <>
 *       {status !== 'joined' && <p>{status}…</p>}
 *       <ul>{messages.map((m) => <li key={m.id}>{m.from}: {m.body.text}</li>)}</ul>
 *       <button type="button" onClick={() => send({ text: 'hi' })}>Say hi</button>
 *     </>
 *   );
 * }
 */
export function useRoom<S extends RealtimeSchema = RealtimeSchema>(
  name: string,
  options: UseRoomOptions = {},
): UseRoomResult<BodyOf<S, 'message'>> {
  type Body = BodyOf<S, 'message'>;
  const client = useRealtime();
  const max = boundOf(options.maxMessages, DEFAULT_MAX_MESSAGES);
  const historyOn = options.history !== false;
  const historyLimit = typeof options.history === 'object' ? options.history.limit : undefined;
  const leaveOnUnmount = options.leaveOnUnmount === true;
  const visibility = options.visibility;

  const [state, setState] = useState<RoomState | undefined>(undefined);
  const current = state !== undefined && state.client === client && state.name === name ? state : undefined;
  // Before the effect ran: the handle if something already joined the room (a pure read).
  const room = current?.room ?? client.room(name);

  // The bound as of the latest commit, for the listeners (changing it must not resubscribe).
  const maxRef = useRef(max);
  useEffect(() => {
    maxRef.current = max;
  }, [max]);
  // The handle `send` uses: the one this hook joined, also after unmount (a left room's send rejects).
  const handleRef = useRef<{ client: RealtimeClient; name: string; room: Room } | undefined>(undefined);

  useEffect(() => {
    let active = true;
    const matches = (s: RoomState | undefined): s is RoomState => s?.client === client && s.name === name;
    const update = (change: (s: RoomState) => RoomState) => setState((s) => (active && matches(s) ? change(s) : s));
    const fresh = (r: Room | undefined): RoomState => ({
      client,
      name,
      room: r,
      messages: NO_MESSAGES,
      error: undefined,
    });

    let joined: Room;
    try {
      joined = client.join(name, visibility === undefined ? undefined : { visibility });
    } catch (error) {
      // A name the SDK refuses outright (`invalid_room`).
      setState({ ...fresh(undefined), error: asClientError(error) });
      return () => {
        active = false;
      };
    }
    const r = joined;
    retainRoom(client, name);
    handleRef.current = { client, name, room: r };
    // Keep the messages of a re-run for the same room (StrictMode, an option change); start over otherwise.
    setState((s) => (matches(s) ? (s.room === r ? s : { ...s, room: r }) : fresh(r)));

    const offMessage = r.on('message', (message) => {
      update((s) => {
        const messages = mergeMessages(s.messages, [message], maxRef.current);
        return messages === s.messages ? s : { ...s, messages };
      });
    });
    const offError = r.on('error', (error) => update((s) => ({ ...s, error })));
    const offStatus = r.on('status', (status) => {
      if (status === 'joined') update((s) => (s.error === undefined ? s : { ...s, error: undefined }));
    });

    if (historyOn) {
      r.ready()
        .then(() => (active ? r.history(historyLimit === undefined ? undefined : { limit: historyLimit }) : undefined))
        .then(
          (page) => {
            if (page === undefined) return;
            update((s) => {
              const messages = mergeMessages(s.messages, page.messages, maxRef.current);
              return messages === s.messages ? s : { ...s, messages };
            });
          },
          // A refused join is already `status: 'failed'` with `room.error`; a left room is not an error here.
          (error: unknown) => {
            if (error instanceof RealtimeClientError && error.code === 'room_left') return;
            update((s) => ({ ...s, error: asClientError(error) }));
          },
        );
    }

    return () => {
      active = false;
      offMessage();
      offError();
      offStatus();
      releaseRoom(
        client,
        name,
        leaveOnUnmount
          ? () => {
              // Only the handle this hook joined, if it is still the room's (nobody left and joined it since).
              if (client.room(name) === r) r.leave().catch(noop);
            }
          : undefined,
      );
    };
  }, [client, name, visibility, historyOn, historyLimit, leaveOnUnmount]);

  const subscribeStatus = useCallback((onChange: () => void) => (room ? room.on('status', onChange) : noop), [room]);
  const joinFailed = room === undefined && current?.error !== undefined;
  const getStatus = useCallback(
    (): RoomStatus => room?.status ?? (joinFailed ? 'failed' : 'joining'),
    [room, joinFailed],
  );
  const status = useSyncExternalStore(subscribeStatus, getStatus, getStatus);

  const all = current?.messages ?? NO_MESSAGES;
  const messages = useMemo(() => (all.length > max ? all.slice(all.length - max) : all), [all, max]);

  const send = useCallback(
    (body: Body, sendOptions?: { clientId?: string }): Promise<SendResult> => {
      const handle = handleRef.current;
      const target =
        handle !== undefined && handle.client === client && handle.name === name
          ? handle.room
          : client.join(name, visibility === undefined ? undefined : { visibility });
      return target.send(body, sendOptions);
    },
    [client, name, visibility],
  );

  const error = (status === 'failed' ? room?.error : undefined) ?? current?.error;
  return {
    room: room as Room<Body> | undefined,
    status,
    messages: messages as readonly ChatMessage<Body>[],
    send,
    error,
  };
}
