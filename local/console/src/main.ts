/**
 * The emulator console's page script: connections, rooms, the event log, acting as users and the backend,
 * the clock and faults, all through the admin API of the emulator that serves the page. Bundled by the
 * emulator itself (local/src/admin/assets.ts).
 */
import { setupActions } from './actions.js';
import { App } from './app.js';
import { setupConnections } from './connections.js';
import { byId, h } from './dom.js';
import { setupEvents } from './events.js';
import { setupRooms } from './rooms.js';

/** The datalists the user and room fields suggest from. */
function setupSuggestions(app: App): void {
  const users = byId('user-names', HTMLDataListElement);
  const rooms = byId('room-names', HTMLDataListElement);
  let last = '';
  app.onState((state) => {
    const userNames = [...new Set(state.connections.map((c) => c.user))].sort();
    const roomNames = state.rooms.map((r) => r.room);
    const key = `${userNames.join(',')}|${roomNames.join(',')}`;
    if (key === last) return;
    last = key;
    users.replaceChildren(...userNames.map((value) => h('option', { value })));
    rooms.replaceChildren(...roomNames.map((value) => h('option', { value })));
  });
}

function start(): void {
  const app = new App();
  setupConnections(app);
  setupRooms(app);
  setupActions(app);
  setupSuggestions(app);
  setupEvents(app);
  // Ages ("3 min ago") move on between events.
  window.setInterval(() => void app.refresh(), 5000);
  void app.refresh();
}

start();
