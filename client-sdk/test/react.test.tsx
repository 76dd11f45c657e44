// @vitest-environment happy-dom
/**
 * The React bindings (`@viba-realtime/client/react`) against the real emulator: real SDK clients over `ws`,
 * a raw `ws` peer speaking the protocol, and the backend publisher, rendered with react-dom's `createRoot`
 * in happy-dom.
 *
 * Mounts, unmounts and direct calls run in `act`. What the network causes arrives whenever it does, outside
 * any `act` scope, so React schedules those renders as in an app (the act environment flag is on only inside
 * `act`), and the tests await the rendered result through a `MutationObserver` (or an SDK event), never a sleep.
 */
import {
  createRealtimeClient,
  type RealtimeClient,
  type RealtimeSchema,
  type WebSocketConstructor,
} from '@viba-realtime/client';
import {
  RealtimeProvider,
  type UseNotificationsResult,
  type UseRoomOptions,
  type UseRoomResult,
  useAnnouncements,
  useConnectionState,
  useNotifications,
  useRealtime,
  useRoom,
} from '@viba-realtime/client/react';
import { type Emulator, startEmulator } from '@viba-realtime/local';
import { createPublisher, type Publisher } from '@viba-realtime/publisher';
import { act, type ReactNode, StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { afterAll, afterEach, beforeAll, describe, expect, it, type MockInstance, vi } from 'vitest';
import WebSocket from 'ws';
import { TestClient } from '../../test/support/ws-client.js';
import { mergeMessages, prependUnique } from '../src/react/buffers.js';

const reactGlobals = globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean };

interface App extends RealtimeSchema {
  message: { text: string };
  notification: { title: string };
  announcement: { title: string };
}

let emulator: Emulator;
let publisher: Publisher;
let consoleError: MockInstance<typeof console.error>;
const clients: RealtimeClient<App>[] = [];
const peers: TestClient[] = [];
const unmounts: (() => void)[] = [];

beforeAll(async () => {
  emulator = await startEmulator({ port: 0, logLevel: 'silent' });
  // What `fetchLocalPublisherConfig(emulator.httpUrl)` returns, built here: under happy-dom the global
  // `fetch` is happy-dom's, which refuses the cross-origin request.
  publisher = createPublisher({
    tableName: emulator.tableName,
    connectionsEndpoint: emulator.connectionsEndpoint,
    dynamodbEndpoint: emulator.dynamodbEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    ...(emulator.iotDataEndpoint ? { iotEndpoint: emulator.iotDataEndpoint } : {}),
    ...(emulator.fanoutQueueUrl ? { fanoutQueueUrl: emulator.fanoutQueueUrl, sqsEndpoint: emulator.sqsEndpoint } : {}),
  });
  consoleError = vi.spyOn(console, 'error');
});

afterEach(() => {
  // No React warning (act, keys, updates of unmounted components, ...) in any test.
  const calls = consoleError.mock.calls;
  consoleError.mockClear();
  expect(calls).toEqual([]);
});

afterAll(async () => {
  for (const unmount of unmounts.splice(0)) unmount();
  for (const client of clients.splice(0)) client.close();
  await Promise.all(peers.map((p) => p.close()));
  publisher?.close();
  await emulator?.close();
  consoleError?.mockRestore();
});

/** A real SDK client signed in as `sub`. */
function clientFor(sub: string): RealtimeClient<App> {
  const { idToken } = emulator.issuer.mintPair({ sub });
  const client = createRealtimeClient<App>({
    url: emulator.url,
    getToken: () => idToken,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
  });
  clients.push(client);
  return client;
}

/** A raw `ws` peer (no SDK) signed in as `sub`, joined to `room`. */
async function peerIn(sub: string, room: string): Promise<TestClient> {
  const { idToken } = emulator.issuer.mintPair({ sub });
  const peer = await TestClient.connect(emulator.url, idToken, { name: sub });
  peers.push(peer);
  expect(await peer.request({ action: 'join', room })).toMatchObject({ type: 'ack', action: 'join', room });
  return peer;
}

async function say(peer: TestClient, room: string, text: string) {
  const ack = await peer.request({ action: 'send', room, body: { text } });
  expect(ack).toMatchObject({ type: 'ack', action: 'send', room });
  return ack;
}

/** `act(fn)` with the act environment flag on for its duration: React has rendered what `fn` caused, and run
 * the effects, when it returns. */
function inAct(fn: () => void): void {
  reactGlobals.IS_REACT_ACT_ENVIRONMENT = true;
  try {
    act(fn);
  } finally {
    reactGlobals.IS_REACT_ACT_ENVIRONMENT = false;
  }
}

/** Renders `node` into a fresh container, in `act`. */
function render(node: ReactNode) {
  const container = document.createElement('div');
  document.body.append(container);
  const root = createRoot(container);
  inAct(() => root.render(node));
  let mounted = true;
  const unmount = () => {
    if (!mounted) return;
    mounted = false;
    inAct(() => root.unmount());
    container.remove();
  };
  unmounts.push(unmount);
  return { container, unmount };
}

/** Resolves once `check()` holds for the rendered document: at once, or after a DOM change that makes it so. */
function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const observer = new MutationObserver(() => {
      if (!check()) return;
      stop();
      resolve();
    });
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`Not rendered within ${timeoutMs} ms: ${what}. The document: ${document.body.innerHTML}`));
    }, timeoutMs);
    const stop = () => {
      observer.disconnect();
      clearTimeout(timer);
    };
    observer.observe(document.body, { childList: true, subtree: true, characterData: true });
  });
}

/** The texts of the elements matching `selector` in `container`. */
const texts = (container: HTMLElement, selector = 'li') =>
  Array.from(container.querySelectorAll(selector), (element) => element.textContent);

/** Resolves once the texts of `selector` in `container` are `expected`. */
function rendered(container: HTMLElement, expected: (string | null)[], selector = 'li'): Promise<void> {
  return until(
    () => JSON.stringify(texts(container, selector)) === JSON.stringify(expected),
    `${selector} = ${JSON.stringify(expected)}`,
  );
}

/** The first call of a listener registered with `on` whose arguments satisfy `match` (then unsubscribes). */
function nextEvent<A extends unknown[]>(
  on: (listener: (...args: A) => void) => () => void,
  match: (...args: A) => boolean = () => true,
): Promise<A> {
  return new Promise((resolve) => {
    const off = on((...args) => {
      if (!match(...args)) return;
      off();
      resolve(args);
    });
  });
}

/**
 * Counts the listeners registered through `target.on(...)` and not yet removed (through the function `on`
 * returned), per event. The bindings remove their listeners that way.
 */
function countListeners(target: object): Map<string, number> {
  const counts = new Map<string, number>();
  const subject = target as { on: (event: string, listener: unknown) => () => void };
  const on = subject.on.bind(target);
  subject.on = (event, listener) => {
    counts.set(event, (counts.get(event) ?? 0) + 1);
    const off = on(event, listener);
    let removed = false;
    return () => {
      if (!removed) counts.set(event, (counts.get(event) ?? 0) - 1);
      removed = true;
      off();
    };
  };
  return counts;
}

function ConnectionState() {
  return <p className="state">{useConnectionState()}</p>;
}

function Chat({
  name,
  options,
  expose,
  onRender,
}: {
  name: string;
  options?: UseRoomOptions;
  expose?: (r: UseRoomResult<App['message']>) => void;
  onRender?: () => void;
}) {
  const result = useRoom<App>(name, options);
  onRender?.();
  expose?.(result);
  return (
    <div>
      <p className="status">{result.status}</p>
      {result.error && <p className="error">{result.error.code}</p>}
      <ul>
        {result.messages.map((m) => (
          <li key={m.id}>{m.body.text}</li>
        ))}
      </ul>
    </div>
  );
}

function Probe({ expose }: { expose: (client: RealtimeClient<App>) => void }) {
  expose(useRealtime<App>());
  return null;
}

function Bell({ expose }: { expose: (result: UseNotificationsResult<App['notification']>) => void }) {
  const bell = useNotifications<App>({ max: 2 });
  expose(bell);
  return (
    <div>
      <p className="unread">{bell.unreadCount ?? '-'}</p>
      <ul>
        {bell.latest.map((n) => (
          <li key={n.id}>{`${n.body.title}${n.read ? ' (read)' : ''}`}</li>
        ))}
      </ul>
    </div>
  );
}

function Feed() {
  const announcements = useAnnouncements<App>();
  return (
    <ul>
      {announcements.map((a) => (
        <li key={a.id}>{a.body.title}</li>
      ))}
    </ul>
  );
}

describe('RealtimeProvider / useRealtime', () => {
  it('gives the client to the hooks, and throws a clear error outside a provider', () => {
    const client = clientFor('rx-provider');
    let seen: RealtimeClient<App> | undefined;
    render(
      <RealtimeProvider client={client}>
        <Probe expose={(c) => (seen = c)} />
      </RealtimeProvider>,
    );
    expect(seen).toBe(client);
    // `act` rethrows what the render threw.
    expect(() => render(<Probe expose={() => {}} />)).toThrow(/must be called inside a <RealtimeProvider/);
  });
});

describe('useConnectionState', () => {
  it('follows the client to open, then to closed', async () => {
    const client = clientFor('rx-state');
    const listeners = countListeners(client);
    const view = render(
      <RealtimeProvider client={client}>
        <ConnectionState />
      </RealtimeProvider>,
    );
    expect(texts(view.container, '.state')).toEqual([client.state]);
    expect(listeners.get('state')).toBe(1);
    await rendered(view.container, ['open'], '.state');

    inAct(() => client.close());
    expect(texts(view.container, '.state')).toEqual(['closed']);
    view.unmount();
    expect(listeners.get('state')).toBe(0);
  });
});

describe('useRoom', () => {
  it('loads the newest history, then adds messages of another client live, in seq order, once each', async () => {
    const name = 'rx-history';
    const bob = await peerIn('rx-bob', name);
    await say(bob, name, 'one');
    await say(bob, name, 'two');

    const client = clientFor('rx-alice');
    let latest: UseRoomResult<App['message']> | undefined;
    const view = render(
      <RealtimeProvider client={client}>
        <Chat name={name} expose={(r) => (latest = r)} />
      </RealtimeProvider>,
    );
    // Joined by the hook's effect: the handle is the client's.
    expect(latest?.room).toBeDefined();
    expect(client.room(name)).toBe(latest?.room);
    await rendered(view.container, ['joined'], '.status');
    await rendered(view.container, ['one', 'two']);

    await say(bob, name, 'three');
    await rendered(view.container, ['one', 'two', 'three']);
    expect(latest?.messages.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(latest?.error).toBeUndefined();
    view.unmount();
  });

  it('sends through a stable send, keeps at most maxMessages, and removes its listeners on unmount', async () => {
    const name = 'rx-send';
    const bob = await peerIn('rx-bob2', name);
    const client = clientFor('rx-carol');
    const room = client.join(name);
    const listeners = countListeners(room);
    const sends = new Set<UseRoomResult<App['message']>['send']>();
    let renders = 0;
    const view = render(
      <RealtimeProvider client={client}>
        <Chat
          name={name}
          options={{ maxMessages: 2, history: false }}
          expose={(r) => sends.add(r.send)}
          onRender={() => renders++}
        />
      </RealtimeProvider>,
    );
    // One listener per event from the hook's effect, one `status` more from `useSyncExternalStore`.
    expect(Object.fromEntries(listeners)).toEqual({ message: 1, error: 1, status: 2 });
    await rendered(view.container, ['joined'], '.status');

    const [send] = sends;
    for (const text of ['a', 'b', 'c']) {
      const atBob = bob.nextChat(name);
      expect(await send?.({ text })).toMatchObject({ duplicate: false });
      expect(await atBob).toMatchObject({ type: 'chat', room: name, from: 'rx-carol', body: { text } });
    }
    await rendered(view.container, ['b', 'c']);
    expect(sends.size).toBe(1);

    view.unmount();
    expect(Object.fromEntries(listeners)).toEqual({ message: 0, error: 0, status: 0 });
    // Not left by default: the handle is shared.
    expect(client.room(name)).toBe(room);
    expect(room.status).toBe('joined');

    // Nothing renders after the unmount when more messages arrive: a witness mounted now renders them, and
    // the unmounted one does not.
    const rendersAtUnmount = renders;
    const witness = render(
      <RealtimeProvider client={client}>
        <Chat name={name} options={{ history: false }} />
      </RealtimeProvider>,
    );
    await say(bob, name, 'late');
    await rendered(witness.container, ['late']);
    expect(renders).toBe(rendersAtUnmount);
    witness.unmount();
  });

  it('under StrictMode subscribes once, stays joined through the simulated unmount, leaves on the real one (leaveOnUnmount)', async () => {
    const name = 'rx-strict';
    const bob = await peerIn('rx-bob3', name);
    const client = clientFor('rx-dave');
    const room = client.join(name);
    const listeners = countListeners(room);
    const view = render(
      <StrictMode>
        <RealtimeProvider client={client}>
          <Chat name={name} options={{ leaveOnUnmount: true, history: false }} />
        </RealtimeProvider>
      </StrictMode>,
    );
    expect(Object.fromEntries(listeners)).toEqual({ message: 1, error: 1, status: 2 });
    await rendered(view.container, ['joined'], '.status');
    expect(client.room(name)).toBe(room);

    await say(bob, name, 'strict');
    await rendered(view.container, ['strict']);

    view.unmount();
    expect(Object.fromEntries(listeners)).toEqual({ message: 0, error: 0, status: 0 });
    // The leave runs once the microtasks after the commit have run.
    if (room.status !== 'left')
      await nextEvent<[string]>(
        (l) => room.on('status', l),
        (s) => s === 'left',
      );
    expect(client.room(name)).toBeUndefined();
  });

  it('reports a refused join as status failed with the error', async () => {
    const client = clientFor('rx-hank');
    const view = render(
      <RealtimeProvider client={client}>
        <Chat name="not a valid room name!" />
      </RealtimeProvider>,
    );
    await rendered(view.container, ['failed'], '.status');
    expect(texts(view.container, '.error')).toEqual(['invalid_room']);
    view.unmount();
  });

  it('two components share the room; one unmounting (leaveOnUnmount) leaves the other receiving', async () => {
    const name = 'rx-shared';
    const bob = await peerIn('rx-bob4', name);
    const client = clientFor('rx-erin');
    const room = client.join(name);
    const listeners = countListeners(room);
    const first = render(
      <RealtimeProvider client={client}>
        <Chat name={name} options={{ leaveOnUnmount: true, history: false }} />
      </RealtimeProvider>,
    );
    const second = render(
      <RealtimeProvider client={client}>
        <Chat name={name} options={{ history: false }} />
      </RealtimeProvider>,
    );
    expect(listeners.get('message')).toBe(2);
    await rendered(second.container, ['joined'], '.status');

    first.unmount();
    expect(listeners.get('message')).toBe(1);
    await say(bob, name, 'still here');
    await rendered(second.container, ['still here']);
    // `leaveOnUnmount` of the first does not leave a room another mounted `useRoom` uses.
    expect(client.room(name)).toBe(room);
    expect(room.status).toBe('joined');
    second.unmount();
  });
});

describe('useNotifications / useAnnouncements', () => {
  it('shows the unread count and the latest notifications the publisher sends, and marks them read', async () => {
    const client = clientFor('rx-frank');
    const inbox = countListeners(client.notifications);
    let bell: UseNotificationsResult<App['notification']> | undefined;
    const view = render(
      <RealtimeProvider client={client}>
        <Bell expose={(b) => (bell = b)} />
      </RealtimeProvider>,
    );
    expect(Object.fromEntries(inbox)).toEqual({ unread: 1, notification: 1 });
    // Known once the client has asked the service, on connect.
    await rendered(view.container, ['0'], '.unread');

    await publisher.notify('rx-frank', { title: 'first' });
    await rendered(view.container, ['1'], '.unread');
    await publisher.notify('rx-frank', { title: 'second' });
    await publisher.notify('rx-frank', { title: 'third' });
    await rendered(view.container, ['3'], '.unread');
    // Newest first, at most `max`.
    await rendered(view.container, ['third', 'second']);

    const third = bell?.latest[0]?.id as string;
    expect(await bell?.markRead([third])).toBe(2);
    await rendered(view.container, ['third (read)', 'second']);
    await rendered(view.container, ['2'], '.unread');

    const page = await bell?.list({ limit: 10 });
    expect(page?.notifications.map((n) => [n.body.title, n.read])).toEqual([
      ['third', true],
      ['second', false],
      ['first', false],
    ]);

    expect(await bell?.markAllRead()).toBe(0);
    await rendered(view.container, ['third (read)', 'second (read)']);
    await rendered(view.container, ['0'], '.unread');

    view.unmount();
    expect(Object.fromEntries(inbox)).toEqual({ unread: 0, notification: 0 });
  });

  it('shows announcements received live, newest first', async () => {
    const client = clientFor('rx-gina');
    const feed = countListeners(client.announcements);
    const view = render(
      <RealtimeProvider client={client}>
        <Feed />
      </RealtimeProvider>,
    );
    expect(feed.get('announcement')).toBe(1);
    if (client.state !== 'open') await nextEvent<[]>((l) => client.on('open', l));
    await publisher.announce({ title: 'maintenance' });
    await rendered(view.container, ['maintenance']);
    await publisher.announce({ title: 'new feature' });
    await rendered(view.container, ['new feature', 'maintenance']);
    view.unmount();
    expect(feed.get('announcement')).toBe(0);
  });
});

describe('list helpers', () => {
  const m = (id: string, seq: number) => ({ id, seq });

  it('mergeMessages keeps ascending seq, one per id, the newest max, and the same array when nothing changed', () => {
    const live = [m('c', 3), m('d', 4)];
    const merged = mergeMessages(live, [m('a', 1), m('b', 2), m('c', 3)], 10);
    expect(merged).toEqual([m('a', 1), m('b', 2), m('c', 3), m('d', 4)]);
    expect(mergeMessages(merged, [m('b', 2), m('d', 4)], 10)).toBe(merged);
    expect(mergeMessages(merged, [m('e', 5), m('f', 6)], 3)).toEqual([m('d', 4), m('e', 5), m('f', 6)]);
  });

  it('prependUnique puts the newest first, once per id, at most max', () => {
    const list = prependUnique(prependUnique([], { id: 'a' }, 2), { id: 'b' }, 2);
    expect(list).toEqual([{ id: 'b' }, { id: 'a' }]);
    expect(prependUnique(list, { id: 'a' }, 2)).toBe(list);
    expect(prependUnique(list, { id: 'c' }, 2)).toEqual([{ id: 'c' }, { id: 'b' }]);
  });
});
