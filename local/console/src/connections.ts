/** The connections table: who is connected on which channel, since when, in which rooms; disconnect one. */
import type { ConnectionView } from '../../src/admin/types.js';
import { api, describeError } from './api.js';
import type { App } from './app.js';
import { byId, h, keepFocus, showResult } from './dom.js';
import { clockTime, duration, fullTime, relative } from './format.js';

function channelOf(connection: ConnectionView): string {
  if (connection.channel === 'ws') return 'WebSocket';
  return `MQTT ${connection.protocol ?? ''}${connection.transport === 'ws' ? ' over WS' : ''}`.trim();
}

function expiryCell(connection: ConnectionView, now: number): HTMLTableCellElement {
  if (connection.tokenExp === undefined) return h('td', {}, '–');
  const at = connection.tokenExp * 1000;
  const expired = at <= now;
  // WebSocket: the token's expiry (the next request after it closes the connection). MQTT: when IoT cuts the
  // connection (the authorizer's disconnectAfterInSeconds, never past the token's expiry).
  const what = connection.channel === 'mqtt' ? 'IoT disconnects it' : 'The token expires';
  return h(
    'td',
    { class: expired ? 'expired nowrap' : 'nowrap', title: `${what} ${fullTime(at)}` },
    expired ? `expired ${duration(now - at)} ago` : relative(at, now),
  );
}

function row(connection: ConnectionView, now: number, onDisconnect: (c: ConnectionView) => void) {
  const id = connection.clientId ?? connection.connectionId;
  return h(
    'tr',
    { 'data-connection-id': connection.connectionId },
    h(
      'td',
      {},
      h('strong', {}, connection.user),
      connection.username ? h('span', { class: 'muted' }, ` (${connection.username})`) : null,
      connection.console
        ? h('span', { class: 'tag console', title: 'Opened by this console to act as the user' }, 'console')
        : null,
    ),
    h('td', {}, ...(connection.groups.length ? connection.groups.map((g) => h('span', { class: 'tag' }, g)) : ['–'])),
    h('td', { class: 'nowrap' }, channelOf(connection)),
    h('td', {}, h('code', { class: 'ellipsis', title: connection.connectionId }, id)),
    h(
      'td',
      { class: 'nowrap', title: `${fullTime(connection.connectedAt)} (${relative(connection.connectedAt, now)})` },
      h('time', { datetime: new Date(connection.connectedAt).toISOString() }, clockTime(connection.connectedAt)),
    ),
    h('td', { class: 'nowrap' }, connection.lastActiveAt === undefined ? '–' : relative(connection.lastActiveAt, now)),
    expiryCell(connection, now),
    h('td', {}, ...(connection.rooms.length ? connection.rooms.map((r) => h('span', { class: 'tag' }, r)) : ['–'])),
    h(
      'td',
      {},
      h(
        'button',
        {
          type: 'button',
          class: 'danger',
          'data-focus-key': `disconnect:${connection.connectionId}`,
          'aria-label': `Disconnect ${connection.user} (${id})`,
          onclick: () => onDisconnect(connection),
        },
        'Disconnect',
      ),
    ),
  );
}

/** Renders the table on every state, and wires the disconnect buttons. */
export function setupConnections(app: App): void {
  const body = byId('connections-table', HTMLTableElement).tBodies[0] as HTMLTableSectionElement;
  const count = byId('connections-count', HTMLElement);
  const empty = byId('connections-empty', HTMLElement);
  const result = byId('connections-result', HTMLElement);

  const disconnect = async (connection: ConnectionView) => {
    showResult(result, 'busy', `Disconnecting ${connection.user}…`);
    try {
      await api.post(`/connections/${encodeURIComponent(connection.connectionId)}/disconnect`);
      showResult(result, 'ok', `Disconnected ${connection.user} (${connection.clientId ?? connection.connectionId}).`);
    } catch (error) {
      showResult(result, 'error', describeError(error));
    }
    app.refreshSoon(100);
  };

  const render = () => {
    const connections = app.state?.connections ?? [];
    const now = app.now();
    keepFocus(body, () => body.replaceChildren(...connections.map((c) => row(c, now, disconnect))));
    const ws = connections.filter((c) => c.channel === 'ws').length;
    count.textContent = `${connections.length} open (${ws} WebSocket, ${connections.length - ws} MQTT)`;
    empty.hidden = connections.length > 0;
  };
  app.onState(render);
}
