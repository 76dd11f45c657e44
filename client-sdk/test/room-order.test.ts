/**
 * Unit test of the room's ordering logic alone (pure logic; the integration suite `client.test.ts` runs it
 * against the emulator). A scripted context stands in for the client: it answers `join` with the room's
 * latest seq and `history` from a list, so each case can set up an order of arrival the service produces
 * only by chance (concurrent sends, a failed send's gap, a late store).
 */
import type { ChatFrame, ClientFrame, ServerFrame } from '@viba-realtime/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RequestError } from '../src/errors.js';
import type { ClientContext } from '../src/internal/context.js';
import { RoomHandle } from '../src/room.js';

function chat(seq: number, id = `m${seq}`): ChatFrame {
  return { type: 'chat', id, room: 'r', from: 'u', seq, ts: seq, body: { n: seq }, ref: `c${seq}` };
}

function setup(options: { latest: number; stored?: ChatFrame[]; failHistory?: number }) {
  const requests: ClientFrame[] = [];
  const stored = options.stored ?? [];
  let failures = options.failHistory ?? 0;
  const ctx: ClientContext = {
    async request(frame) {
      requests.push(frame);
      if (frame.action === 'join')
        return { type: 'ack', action: 'join', room: 'r', seq: options.latest, ts: 0, ref: 'j' };
      if (frame.action === 'history') {
        if (failures-- > 0) throw new RequestError('internal', 'Internal error.');
        const after = frame.body?.after ?? 0;
        return { type: 'history', room: 'r', messages: stored.filter((m) => m.seq > after) } as ServerFrame;
      }
      throw new Error(`unexpected ${frame.action}`);
    },
    flush: () => undefined,
    isOpen: true,
    userId: 'u',
    reportError: () => undefined,
    listenerFailed: (_event, error) => {
      throw error;
    },
    checkIncoming: (_kind, body) => body,
    checkOutgoing: () => undefined,
    failRoomRequests: () => undefined,
    tokenExpired: () => undefined,
    logger: {},
    retryDelay: () => 10,
  };
  const room = new RoomHandle('r', ctx, { removeRoom: () => undefined, pendingLeave: () => undefined });
  const delivered: number[] = [];
  room.on('message', (m) => delivered.push(m.seq));
  return { room, delivered, requests, stored };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('room ordering', () => {
  it('holds a frame that arrives before its predecessor and delivers both in seq order', async () => {
    const { room, delivered, requests } = setup({ latest: 1 });
    await room.ready();
    room.chat(chat(3));
    expect(delivered).toEqual([]);
    room.chat(chat(2));
    expect(delivered).toEqual([2, 3]);
    await vi.runAllTimersAsync();
    expect(requests.filter((r) => r.action === 'history')).toEqual([]);
  });

  it('fills a gap that stays open from history, then releases what it held', async () => {
    const { room, delivered, stored, requests } = setup({ latest: 1 });
    await room.ready();
    stored.push(chat(2));
    room.chat(chat(3));
    room.chat(chat(4));
    await vi.advanceTimersByTimeAsync(250);
    expect(delivered).toEqual([2, 3, 4]);
    expect(requests.filter((r) => r.action === 'history')).toHaveLength(1);
  });

  it('passes over a gap that history confirms (a send that failed half-way)', async () => {
    const { room, delivered } = setup({ latest: 1 });
    await room.ready();
    room.chat(chat(3));
    await vi.advanceTimersByTimeAsync(250);
    expect(delivered).toEqual([3]);
    room.chat(chat(4));
    expect(delivered).toEqual([3, 4]);
  });

  it('drops duplicates by id and still delivers a late frame it never saw', async () => {
    const { room, delivered } = setup({ latest: 0 });
    await room.ready();
    room.chat(chat(1));
    room.chat(chat(1));
    room.chat(chat(2));
    room.chat(chat(2));
    expect(delivered).toEqual([1, 2]);
    room.chat(chat(1, 'other-id')); // stored after seq 2 was delivered: late, not lost
    expect(delivered).toEqual([1, 2, 1]);
  });

  it('starts a first join at the room present and catches up after a rejoin', async () => {
    const { room, delivered, stored } = setup({ latest: 5 });
    await room.ready();
    expect(room.lastSeq).toBe(5);
    room.disconnected();
    expect(room.status).toBe('rejoining');
    room.chat(chat(8)); // arrives while rejoining: held
    stored.push(chat(6), chat(7), chat(8));
    room.connected();
    await vi.runAllTimersAsync();
    expect(room.status).toBe('joined');
    expect(delivered).toEqual([6, 7, 8]);
  });

  it('keeps holding when a gap fill fails, and fills it on the retry (never skips stored messages)', async () => {
    const { room, delivered, stored, requests } = setup({ latest: 1, failHistory: 1 });
    await room.ready();
    stored.push(chat(2));
    room.chat(chat(3));
    await vi.advanceTimersByTimeAsync(205); // the gap wait, then a failed history read (retry due in 10 ms)
    expect(delivered).toEqual([]);
    await vi.runAllTimersAsync(); // the retry
    expect(delivered).toEqual([2, 3]);
    expect(requests.filter((r) => r.action === 'history')).toHaveLength(2);
  });
});
