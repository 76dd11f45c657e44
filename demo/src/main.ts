/**
 * The demo chat page: one room and the user's notification inbox through `@viba-realtime/client`.
 * Query parameters: `?ws=` the WebSocket URL (default the emulator's `ws://127.0.0.1:4000/local`), `?user=` the
 * user id (default a random guest), `?room=` (default `lobby`). Tokens come from the emulator's `/dev/token`
 * (a stand-in for a Cognito sign-in), fetched again before every connect.
 */
import {
  type ChatMessage,
  createRealtimeClient,
  type JsonObject,
  type Notification,
  type RealtimeClient,
} from '@viba-realtime/client';

const params = new URLSearchParams(location.search);
const wsUrl = params.get('ws') ?? 'ws://127.0.0.1:4000/local';
const user = params.get('user') ?? `guest-${Math.random().toString(36).slice(2, 8)}`;
const roomName = params.get('room') ?? 'lobby';

/** The element with `data-testid="{id}"`. */
function byTestId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.querySelector<T>(`[data-testid="${id}"]`);
  if (element === null) throw new Error(`index.html has no data-testid="${id}"`);
  return element;
}

const ui = {
  user: byTestId('user'),
  room: byTestId('room'),
  roomStatus: byTestId('room-status'),
  state: byTestId('state'),
  error: byTestId('error'),
  messages: byTestId<HTMLUListElement>('messages'),
  form: byTestId<HTMLFormElement>('send-form'),
  input: byTestId<HTMLInputElement>('message-input'),
  unread: byTestId('unread'),
  markAllRead: byTestId<HTMLButtonElement>('mark-all-read'),
  notifications: byTestId<HTMLUListElement>('notifications'),
};

/** The emulator's token URL for a WebSocket URL: same host and port, http(s). */
function devTokenUrl(ws: string, sub: string): string {
  const url = new URL(ws);
  const scheme = url.protocol === 'wss:' ? 'https:' : 'http:';
  return `${scheme}//${url.host}/dev/token?sub=${encodeURIComponent(sub)}`;
}

async function getToken(): Promise<string> {
  const response = await fetch(devTokenUrl(wsUrl, user), { cache: 'no-store' });
  if (!response.ok) throw new Error(`/dev/token answered ${response.status}: ${await response.text()}`);
  const { idToken } = (await response.json()) as { idToken: string };
  return idToken;
}

function showError(error: unknown): void {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  ui.error.textContent = message;
  ui.error.hidden = false;
  console.error(error);
}

function setState(state: string): void {
  ui.state.textContent = state;
  ui.state.dataset.state = state;
}

function items(list: HTMLUListElement): HTMLLIElement[] {
  return Array.from(list.querySelectorAll<HTMLLIElement>(':scope > li'));
}

/** A body's text: `text`, else `title`, else the JSON. */
function textOf(body: JsonObject): string {
  if (typeof body.text === 'string') return body.text;
  if (typeof body.title === 'string') return body.title;
  return JSON.stringify(body);
}

/** Adds a message once (by id), in `seq` order: live messages, the sender's own sends and history may overlap. */
function addMessage(message: ChatMessage): void {
  if (ui.messages.querySelector(`[data-id="${CSS.escape(message.id)}"]`)) return;
  const item = document.createElement('li');
  item.dataset.testid = 'message';
  item.dataset.id = message.id;
  item.dataset.seq = String(message.seq);
  item.dataset.from = message.from;
  item.title = new Date(message.ts).toLocaleString();
  const from = document.createElement('span');
  from.className = 'from';
  from.textContent = message.from === user ? `${message.from} (you)` : message.from;
  item.append(from, textOf(message.body));
  const next = items(ui.messages).find((li) => Number(li.dataset.seq) > message.seq);
  ui.messages.insertBefore(item, next ?? null);
  if (!next) ui.messages.scrollTop = ui.messages.scrollHeight;
}

/** Adds a notification once (by id), newest first. */
function addNotification(notification: Notification): void {
  if (ui.notifications.querySelector(`[data-id="${CSS.escape(notification.id)}"]`)) return;
  const item = document.createElement('li');
  item.dataset.testid = 'notification';
  item.dataset.id = notification.id;
  item.dataset.ts = String(notification.ts);
  item.classList.toggle('unread', !notification.read);
  item.title = new Date(notification.ts).toLocaleString();
  item.textContent = textOf(notification.body);
  const next = items(ui.notifications).find((li) => Number(li.dataset.ts) < notification.ts);
  ui.notifications.insertBefore(item, next ?? null);
}

function setUnread(count: number): void {
  ui.unread.textContent = String(count);
  ui.unread.dataset.count = String(count);
}

function start(): RealtimeClient {
  const client = createRealtimeClient({ url: wsUrl, getToken, logger: console });
  setState(client.state);
  client.on('state', setState);
  client.on('error', showError);
  client.on('closed', (error) => {
    if (error) showError(error);
  });
  client.on('open', () => {
    ui.error.hidden = true;
  });

  const room = client.join(roomName);
  ui.roomStatus.textContent = room.status;
  room.on('status', (status, error) => {
    ui.roomStatus.textContent = status;
    if (error) showError(error);
  });
  room.on('message', addMessage);
  room
    .ready()
    .then(() => room.history({ limit: 50 }))
    .then((page) => page.messages.forEach(addMessage))
    .catch(showError);

  ui.form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = ui.input.value.trim();
    if (text === '') return;
    ui.input.value = '';
    const body = { text };
    room
      .send(body)
      .then((sent) => addMessage({ ...sent, room: roomName, from: user, body }))
      .catch(showError);
  });

  const inbox = client.notifications;
  inbox.on('notification', addNotification);
  inbox.on('unread', setUnread);
  // The inbox as it is on the first connect; later ones arrive as `notification` events.
  const stopInitialLoad = client.on('open', () => {
    stopInitialLoad();
    inbox
      .list({ limit: 20 })
      .then((page) => {
        page.notifications.forEach(addNotification);
        setUnread(inbox.unreadCount ?? page.unread);
      })
      .catch(showError);
  });
  ui.markAllRead.addEventListener('click', () => {
    inbox
      .markAllRead()
      .then((left) => {
        setUnread(left);
        for (const item of items(ui.notifications)) item.classList.remove('unread');
      })
      .catch(showError);
  });

  addEventListener('pagehide', () => client.close());
  return client;
}

ui.user.textContent = user;
ui.room.textContent = roomName;
try {
  start();
} catch (error) {
  setState('error');
  showError(error);
}
