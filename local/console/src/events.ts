/**
 * The live event log: `/_admin/events` (a backlog, then batches as they happen), filtered by user, room and
 * kind, pausable. The newest event is on top. The stream reconnects by itself, with growing pauses, and a
 * restarted emulator (whose event ids start again at 1) is noticed and shown from scratch.
 */
import { ADMIN_EVENT_CATEGORIES, type AdminEvent, type AdminEventCategory } from '../../src/admin/types.js';
import { eventsUrl } from './api.js';
import type { App } from './app.js';
import { byId, field, h } from './dom.js';
import { clockTime, fullTime } from './format.js';

/** Events kept in the page. */
const KEPT = 2000;
/** Rows in the table at most: enough to scroll back, few enough to stay fast. */
const SHOWN = 400;
/** Events after which the state (connections, rooms) is read again. */
const CHANGES_STATE: ReadonlySet<AdminEventCategory> = new Set([
  'connect',
  'disconnect',
  'route',
  'gone',
  'limit',
  'admin',
  'mqtt',
]);

type StreamMessage =
  | { type: 'backlog'; events: AdminEvent[] }
  | { type: 'events'; events: AdminEvent[] }
  | { type: 'dropped'; count: number };

export function setupEvents(app: App): void {
  const form = byId('events-filter', HTMLFormElement);
  const body = byId('events-table', HTMLTableElement).tBodies[0] as HTMLTableSectionElement;
  const count = byId('events-count', HTMLElement);
  const pause = byId('events-pause', HTMLButtonElement);
  const clear = byId('events-clear', HTMLButtonElement);
  const kind = form.elements.namedItem('category');
  if (kind instanceof HTMLSelectElement) {
    for (const category of ADMIN_EVENT_CATEGORIES) kind.append(h('option', { value: category }, category));
  }

  let events: AdminEvent[] = [];
  let lastId = 0;
  let paused = false;
  let waiting = 0;
  let dropped = 0;

  const matches = (event: AdminEvent): boolean => {
    const user = field(form, 'user').toLowerCase();
    const room = field(form, 'room').toLowerCase();
    const category = field(form, 'category');
    if (category && event.category !== category) return false;
    if (user && !(event.user ?? '').toLowerCase().includes(user)) return false;
    if (room) {
      if ((event.room ?? '').toLowerCase().includes(room)) return true;
      // `@connections` posts name no room; a delivery to a connection that is in the room belongs to it.
      const connection = app.state?.connections.find((c) => c.connectionId === event.connectionId);
      return connection?.rooms.some((r) => r.toLowerCase().includes(room)) ?? false;
    }
    return true;
  };

  const eventRow = (event: AdminEvent) =>
    h(
      'tr',
      { 'data-level': event.level, 'data-category': event.category },
      h(
        'td',
        { title: fullTime(event.ts) },
        h('time', { datetime: new Date(event.ts).toISOString() }, clockTime(event.ts)),
      ),
      h(
        'td',
        {},
        h('span', { class: 'kind', 'data-category': event.category }, event.category),
        h('br'),
        h('span', { class: 'muted small' }, event.kind),
      ),
      h(
        'td',
        {},
        event.user ? h('span', { class: 'tag' }, `user ${event.user}`) : null,
        event.room ? h('span', { class: 'tag' }, `room ${event.room}`) : null,
        event.status ? h('span', { class: 'tag' }, event.status) : null,
        h('span', { class: 'mono small' }, event.text),
        event.reason ? h('div', { class: 'small' }, event.reason) : null,
      ),
    );

  const showCount = () => {
    const shown = body.rows.length;
    const notes = [
      `${shown} shown of ${events.length}`,
      paused && waiting > 0 ? `${waiting} new while paused` : '',
      dropped > 0 ? `${dropped} missed (the page fell behind)` : '',
    ].filter(Boolean);
    count.textContent = notes.join(' · ');
  };

  const renderAll = () => {
    const shown = events.filter(matches).slice(-SHOWN).reverse();
    body.replaceChildren(...shown.map(eventRow));
    waiting = 0;
    showCount();
  };

  const add = (incoming: AdminEvent[]) => {
    const fresh = incoming.filter((event) => event.id > lastId);
    if (fresh.length === 0) return;
    lastId = fresh[fresh.length - 1]?.id ?? lastId;
    events.push(...fresh);
    if (events.length > KEPT) events = events.slice(events.length - KEPT);
    if (fresh.some((event) => CHANGES_STATE.has(event.category))) app.refreshSoon();
    if (paused) {
      waiting += fresh.length;
      showCount();
      return;
    }
    const rows = fresh.filter(matches).map(eventRow).reverse();
    body.prepend(...rows);
    while (body.rows.length > SHOWN) body.deleteRow(-1);
    showCount();
  };

  const onMessage = (message: StreamMessage) => {
    if (message.type === 'dropped') {
      dropped += message.count;
      showCount();
      return;
    }
    if (message.type === 'backlog') {
      const newest = message.events.at(-1)?.id ?? 0;
      // Ids only grow in one emulator's life: a lower newest id is a restarted emulator.
      if (newest < lastId) {
        events = [];
        lastId = 0;
        body.replaceChildren();
      }
    }
    add(message.events);
  };

  let retryMs = 500;
  const connect = () => {
    app.setLink('connecting');
    const socket = new WebSocket(eventsUrl());
    socket.addEventListener('open', () => {
      retryMs = 500;
      app.setLink('live');
      void app.refresh();
    });
    socket.addEventListener('message', (message) => {
      try {
        onMessage(JSON.parse(String(message.data)) as StreamMessage);
      } catch {
        // A frame the page does not understand (a newer emulator): skipped, the next ones still count.
      }
    });
    socket.addEventListener('close', () => {
      app.setLink('down');
      window.setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10_000);
    });
  };

  form.addEventListener('input', renderAll);
  form.addEventListener('change', renderAll);
  form.addEventListener('submit', (event) => event.preventDefault());
  pause.addEventListener('click', () => {
    paused = !paused;
    // A toggle keeps its name; aria-pressed (and the header's pill) say whether it is on.
    pause.setAttribute('aria-pressed', String(paused));
    app.setPaused(paused);
    if (!paused) renderAll();
    else showCount();
  });
  clear.addEventListener('click', () => {
    events = [];
    dropped = 0;
    renderAll();
  });

  connect();
}
