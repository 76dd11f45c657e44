/**
 * Rooms: the list, one room's members (who is online), its latest messages with their `seq`, and the forms that
 * create rooms and grant or revoke membership (the backend publisher's calls).
 */
import type { RoomDetail, RoomSummary } from '../../src/admin/types.js';
import { api, describeError } from './api.js';
import type { App } from './app.js';
import { byId, field, h, keepFocus, listField, showResult } from './dom.js';
import { clockTime, fullTime } from './format.js';

/** A message body in one line: its `text` (and `title`) when it has them, else its JSON. */
export function bodyText(body: Record<string, unknown>): string {
  const parts = [body.title, body.text].filter((part): part is string => typeof part === 'string');
  return parts.length > 0 ? parts.join(' — ') : JSON.stringify(body);
}

function detailView(detail: RoomDetail): HTMLElement[] {
  const online = new Set(detail.online.map((o) => o.user));
  // Members first; then anyone subscribed without a membership (an owner's connection, say).
  const people = [...new Set([...detail.members, ...online])];
  return [
    h(
      'h3',
      { id: 'room-detail-title' },
      `Room ${detail.room} `,
      h('span', { class: 'tag' }, detail.visibility),
      detail.closed ? h('span', { class: 'tag' }, 'closed') : null,
    ),
    h(
      'p',
      { class: 'muted small' },
      `Owner ${detail.owner} · created ${fullTime(detail.createdAt)} · last seq ${detail.lastSeq} · ${online.size} online`,
    ),
    h('h4', { class: 'visually-hidden' }, 'Members'),
    people.length === 0
      ? h('p', { class: 'empty' }, 'No members.')
      : h(
          'ul',
          { 'aria-label': 'Members' },
          ...people.map((user) =>
            h(
              'li',
              { class: online.has(user) ? 'online' : 'offline' },
              user,
              h('span', { class: 'visually-hidden' }, online.has(user) ? ' (online)' : ' (offline)'),
              detail.members.includes(user) ? null : h('span', { class: 'muted' }, ' (not a member)'),
            ),
          ),
        ),
    detail.messages.length === 0
      ? h('p', { class: 'empty' }, 'No messages yet.')
      : h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            {},
            h('caption', { class: 'visually-hidden' }, `Latest messages in ${detail.room}`),
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                h('th', { scope: 'col', class: 'num' }, 'Seq'),
                h('th', { scope: 'col' }, 'From'),
                h('th', { scope: 'col' }, 'Time'),
                h('th', { scope: 'col' }, 'Message'),
              ),
            ),
            h(
              'tbody',
              {},
              ...[...detail.messages]
                .reverse()
                .map((m) =>
                  h(
                    'tr',
                    {},
                    h('td', { class: 'num' }, m.seq),
                    h('td', {}, m.from),
                    h('td', { title: fullTime(m.ts) }, clockTime(m.ts)),
                    h('td', {}, bodyText(m.body)),
                  ),
                ),
            ),
          ),
        ),
  ];
}

/** Renders the room list on every state, the selected room's detail, and wires the room forms. */
export function setupRooms(app: App): void {
  const body = byId('rooms-table', HTMLTableElement).tBodies[0] as HTMLTableSectionElement;
  const count = byId('rooms-count', HTMLElement);
  const empty = byId('rooms-empty', HTMLElement);
  const detail = byId('room-detail', HTMLElement);
  const createForm = byId('create-room-form', HTMLFormElement);
  const membershipForm = byId('membership-form', HTMLFormElement);
  let selected: string | undefined;
  let loading = 0;

  const loadDetail = async () => {
    if (selected === undefined) return;
    const room = selected;
    const ticket = ++loading;
    try {
      const view = await api.get<RoomDetail>(`/rooms/${encodeURIComponent(room)}`);
      if (ticket !== loading) return;
      keepFocus(detail, () => detail.replaceChildren(...detailView(view)));
    } catch (error) {
      if (ticket !== loading) return;
      detail.replaceChildren(h('p', { class: 'empty' }, `Room ${room}: ${describeError(error)}`));
    }
  };

  const select = (room: string) => {
    selected = room;
    const roomField = membershipForm.elements.namedItem('room');
    if (roomField instanceof HTMLInputElement) roomField.value = room;
    render();
    void loadDetail();
  };

  const row = (room: RoomSummary) =>
    h(
      'tr',
      { 'data-selected': room.room === selected ? 'true' : undefined },
      h(
        'td',
        {},
        h(
          'button',
          {
            type: 'button',
            class: 'link',
            'data-focus-key': `room:${room.room}`,
            'aria-current': room.room === selected ? 'true' : undefined,
            onclick: () => select(room.room),
          },
          room.room,
        ),
        room.closed ? h('span', { class: 'tag' }, 'closed') : null,
      ),
      h('td', {}, room.visibility),
      h('td', {}, room.owner),
      h('td', { class: 'num' }, room.lastSeq),
    );

  const render = () => {
    const rooms = app.state?.rooms ?? [];
    keepFocus(body, () => body.replaceChildren(...rooms.map(row)));
    count.textContent = `${rooms.length} room${rooms.length === 1 ? '' : 's'}`;
    empty.hidden = rooms.length > 0;
  };

  app.onState(() => {
    render();
    void loadDetail();
  });

  createForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const result = createForm.querySelector('.result');
    const room = field(createForm, 'room');
    showResult(result, 'busy', `Creating ${room}…`);
    try {
      const answer = await api.post<{ created: boolean }>('/rooms', {
        room,
        visibility: field(createForm, 'visibility'),
        members: listField(createForm, 'members'),
      });
      showResult(result, 'ok', answer.created ? `Created ${room}.` : `${room} already exists; members granted.`);
      select(room);
      await app.refresh();
    } catch (error) {
      showResult(result, 'error', describeError(error));
    }
  });

  membershipForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const action = event.submitter instanceof HTMLButtonElement ? event.submitter.value : 'grant';
    const result = membershipForm.querySelector('.result');
    const room = field(membershipForm, 'room');
    const users = listField(membershipForm, 'users');
    showResult(result, 'busy', `${action === 'grant' ? 'Granting' : 'Revoking'}…`);
    try {
      await api.post(`/rooms/${encodeURIComponent(room)}/${action === 'revoke' ? 'revoke' : 'grant'}`, { users });
      showResult(
        result,
        'ok',
        action === 'revoke' ? `Revoked ${users.join(', ')} from ${room}.` : `Granted ${users.join(', ')} in ${room}.`,
      );
      if (selected === room) void loadDetail();
      app.refreshSoon(100);
    } catch (error) {
      showResult(result, 'error', describeError(error));
    }
  });
}
