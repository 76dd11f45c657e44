/**
 * The DynamoDbStore contract, run against every DynamoDB we support (dynalite in the emulator, Amazon's
 * DynamoDB Local), so that a pass proves our use of the DynamoDB API and not one emulator's quirks.
 */
import { randomUUID } from 'node:crypto';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import {
  AUDIENCE_ALL,
  AUDIENCE_SHARDS,
  audienceShardOf,
  groupAudience,
  keys,
  LIMITS,
  timeId,
} from '@viba-realtime/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  AnnouncementRecord,
  ConnectionRecord,
  DeliveryTarget,
  NotificationRecord,
  StoredMessage,
} from '../src/core/ports.js';
import { DynamoDbStore, RoomNotFoundError } from '../src/store/dynamodb.js';
import { ensureTable } from '../src/store/table-definition.js';

/** A running DynamoDB-compatible endpoint. */
export interface StoreBackend {
  endpoint: string;
  close(): Promise<void>;
}

const T0 = Date.UTC(2030, 0, 1);

/** A clock the test moves by hand. */
function manualClock(start = T0): { now: () => number; set: (ms: number) => void; advance: (ms: number) => void } {
  let current = start;
  return {
    now: () => current,
    set: (ms) => {
      current = ms;
    },
    advance: (ms) => {
      current += ms;
    },
  };
}

function connection(connectionId: string, sub: string, expiresAt: number): ConnectionRecord {
  return {
    connectionId,
    sub,
    username: `${sub}-name`,
    groups: ['admins', 'staff'],
    channel: 'ws',
    connectedAt: T0,
    tokenExp: Math.floor(T0 / 1000) + 3600,
    expiresAt,
  };
}

function message(room: string, seq: number, ts = T0 + seq): StoredMessage {
  return { id: `m-${seq}`, room, from: 'alice', seq, ts, body: { text: `hello ${seq}`, n: seq }, ref: `c-${seq}` };
}

const T0_SECONDS = Math.floor(T0 / 1000);
/** The token expiry of {@link connection}'s records. */
const TOKEN_EXP = T0_SECONDS + 3600;

/** A notification of `sub` made at T0 + `offset` ms, kept `keepSeconds`. */
function notification(
  sub: string,
  offset: number,
  keepSeconds = LIMITS.notificationRetentionSeconds,
): NotificationRecord {
  const ts = T0 + offset;
  return {
    sub,
    id: timeId('n', ts, `r${offset}`),
    ts,
    body: { text: `note ${offset}`, n: offset },
    read: false,
    expiresAt: Math.ceil(ts / 1000) + keepSeconds,
  };
}

/** An announcement to `audience` made at T0 + `offset` ms. */
function announcement(
  audience: string,
  offset: number,
  keepSeconds = LIMITS.announcementRetentionSeconds,
): AnnouncementRecord {
  const ts = T0 + offset;
  return {
    audience,
    id: timeId('a', ts, `r${offset}`),
    ts,
    from: 'backend',
    ...(audience.startsWith('group.') ? { group: audience.slice('group.'.length) } : {}),
    body: { text: `news ${offset}` },
    expiresAt: Math.ceil(ts / 1000) + keepSeconds,
  };
}

const byConnectionId = (a: DeliveryTarget, b: DeliveryTarget) => (a.connectionId < b.connectionId ? -1 : 1);

const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/**
 * Defines the store suite against the backend `start` returns. Each test gets its own table.
 */
export function describeStoreContract(name: string, start: () => Promise<StoreBackend>): void {
  describe(`DynamoDbStore contract (${name})`, () => {
    let backend: StoreBackend;
    let raw: DynamoDBClient;
    let documentClient: DynamoDBDocumentClient;

    beforeAll(async () => {
      backend = await start();
      raw = new DynamoDBClient({
        endpoint: backend.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      });
      documentClient = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
    });

    afterAll(async () => {
      raw?.destroy();
      await backend?.close();
    });

    async function freshStore(options: { clock?: () => number; pageSize?: number } = {}) {
      const tableName = unique('store');
      await ensureTable(raw, tableName);
      const store = new DynamoDbStore({
        client: documentClient,
        tableName,
        ...(options.clock === undefined ? {} : { clock: options.clock }),
        ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
      });
      return { store, tableName };
    }

    it('ensureTable is idempotent', async () => {
      const tableName = unique('twice');
      await ensureTable(raw, tableName);
      await expect(ensureTable(raw, tableName)).resolves.toBeUndefined();
    });

    it('puts, gets and lists connections; deleteConnection removes its subscriptions and is idempotent', async () => {
      const clock = manualClock();
      const { store } = await freshStore({ clock: clock.now });
      const expiresAt = Math.floor(T0 / 1000) + 7200;
      const c1 = connection('c1', 'alice', expiresAt);
      const c2 = connection('c2', 'alice', expiresAt);
      await store.putConnection(c1);
      await store.putConnection(c2);
      await store.putConnection(connection('c3', 'bob', expiresAt));
      await store.subscribe({ room: 'r1', connectionId: 'c1', sub: 'alice' }, expiresAt);
      await store.subscribe({ room: 'r2', connectionId: 'c1', sub: 'alice' }, expiresAt);
      await store.subscribe({ room: 'r1', connectionId: 'c2', sub: 'alice' }, expiresAt);

      expect(await store.getConnection('c1')).toEqual(c1);
      expect(await store.getConnection('nope')).toBeUndefined();
      const mine = await store.listUserConnections('alice');
      expect(mine.map((c) => c.connectionId).sort()).toEqual(['c1', 'c2']);
      expect(mine.find((c) => c.connectionId === 'c2')).toEqual(c2);

      expect((await store.deleteConnection('c1')).sort()).toEqual(['r1', 'r2']);
      expect(await store.getConnection('c1')).toBeUndefined();
      expect(await store.isSubscribed('r1', 'c1')).toBe(false);
      expect(await store.listConnectionRooms('c1')).toEqual([]);
      expect(await store.listRoomSubscriptions('r1')).toEqual([{ room: 'r1', connectionId: 'c2', sub: 'alice' }]);
      expect((await store.listUserConnections('alice')).map((c) => c.connectionId)).toEqual(['c2']);

      expect(await store.deleteConnection('c1')).toEqual([]);
      expect(await store.deleteConnection('never-existed')).toEqual([]);

      // A WebSocket subscription keeps its token's expiry, for fan-outs that run after the room was read.
      await store.subscribe(
        { room: 'r3', connectionId: 'c3', sub: 'bob', subscribedAt: T0, tokenExp: TOKEN_EXP },
        expiresAt,
      );
      expect(await store.listRoomSubscriptions('r3')).toEqual([
        { room: 'r3', connectionId: 'c3', sub: 'bob', subscribedAt: T0, tokenExp: TOKEN_EXP },
      ]);
    });

    it('deleteConnection removes more subscriptions than one batch write holds', async () => {
      const { store } = await freshStore({ pageSize: 10 });
      const expiresAt = Math.floor(Date.now() / 1000) + 7200;
      const rooms = Array.from({ length: 30 }, (_, i) => `room-${String(i).padStart(2, '0')}`);
      await Promise.all(rooms.map((room) => store.subscribe({ room, connectionId: 'big', sub: 'alice' }, expiresAt)));
      expect((await store.deleteConnection('big')).sort()).toEqual(rooms);
      expect(await store.listConnectionRooms('big')).toEqual([]);
      expect(await store.isSubscribed('room-29', 'big')).toBe(false);
    });

    it('createRoom x5 concurrently: exactly one creates, all see the same room, the owner is a member', async () => {
      const { store } = await freshStore();
      const results = await Promise.all(
        ['u1', 'u2', 'u3', 'u4', 'u5'].map((owner, i) =>
          store.createRoom({ room: 'lobby', visibility: i % 2 === 0 ? 'private' : 'public', owner, createdAt: T0 + i }),
        ),
      );
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const winner = results.find((r) => r.created)?.room;
      expect(winner?.lastSeq).toBe(0);
      for (const result of results) expect(result.room).toEqual(winner);
      expect(await store.getRoom('lobby')).toEqual(winner);
      const owner = winner?.owner ?? '';
      expect(await store.isMember('lobby', owner)).toBe(true);
      const losers = ['u1', 'u2', 'u3', 'u4', 'u5'].filter((u) => u !== owner);
      for (const loser of losers) expect(await store.isMember('lobby', loser)).toBe(false);
    });

    it('adds, checks and removes members', async () => {
      const { store } = await freshStore();
      expect(await store.isMember('r', 'bob')).toBe(false);
      await store.addMember('r', 'bob');
      await store.addMember('r', 'bob');
      expect(await store.isMember('r', 'bob')).toBe(true);
      expect(await store.isMember('other', 'bob')).toBe(false);
      await store.removeMember('r', 'bob');
      expect(await store.isMember('r', 'bob')).toBe(false);
      await expect(store.removeMember('r', 'bob')).resolves.toBeUndefined();
    });

    it("lists a user's rooms across pages, and only theirs (pageSize 2)", async () => {
      const { store } = await freshStore({ pageSize: 2 });
      expect(await store.listUserRooms('carol')).toEqual([]);
      for (const room of ['r3', 'r1', 'r2', 'r4', 'r5']) await store.addMember(room, 'carol');
      await store.addMember('r1', 'dave');
      // Connections share the user's index partition (USER#{sub}); they must not be read as rooms.
      await store.putConnection(connection('conn-carol', 'carol', Math.floor(Date.now() / 1000) + 7200));
      await store.removeMember('r4', 'carol');
      expect(await store.listUserRooms('carol')).toEqual(['r1', 'r2', 'r3', 'r5']);
      expect(await store.listUserRooms('dave')).toEqual(['r1']);
    });

    it('reads every subscription across pages (pageSize 2)', async () => {
      const { store } = await freshStore({ pageSize: 2 });
      const expiresAt = Math.floor(Date.now() / 1000) + 7200;
      const ids = Array.from({ length: 7 }, (_, i) => `conn-${i}`);
      for (const id of ids) await store.subscribe({ room: 'busy', connectionId: id, sub: `user-${id}` }, expiresAt);
      for (const room of ['a', 'b', 'c', 'd', 'e'])
        await store.subscribe({ room, connectionId: 'conn-0', sub: 'x' }, expiresAt);
      // A membership and the META item share the room's partition; only SUB# items are subscriptions.
      await store.createRoom({ room: 'busy', visibility: 'public', owner: 'zed', createdAt: T0 });

      const subs = await store.listRoomSubscriptions('busy');
      expect(subs.map((s) => s.connectionId).sort()).toEqual(ids);
      expect(subs.find((s) => s.connectionId === 'conn-3')).toEqual({
        room: 'busy',
        connectionId: 'conn-3',
        sub: 'user-conn-3',
      });
      expect((await store.listConnectionRooms('conn-0')).sort()).toEqual(['a', 'b', 'busy', 'c', 'd', 'e']);
      expect(await store.isSubscribed('busy', 'conn-6')).toBe(true);
      await store.unsubscribe('busy', 'conn-6');
      expect(await store.isSubscribed('busy', 'conn-6')).toBe(false);
      expect(await store.listRoomSubscriptions('busy')).toHaveLength(6);
    });

    it('nextSeq x20 concurrently hands out exactly 1..20 and the room keeps the counter', async () => {
      const { store } = await freshStore();
      await store.createRoom({ room: 'counter', visibility: 'public', owner: 'o', createdAt: T0 });
      const seqs = await Promise.all(Array.from({ length: 20 }, () => store.nextSeq('counter')));
      expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect((await store.getRoom('counter'))?.lastSeq).toBe(20);
    });

    it('nextSeq on a missing room rejects with RoomNotFoundError and creates nothing', async () => {
      expect.assertions(3);
      const { store } = await freshStore();
      try {
        await store.nextSeq('ghost');
      } catch (error) {
        expect(error).toBeInstanceOf(RoomNotFoundError);
        expect((error as RoomNotFoundError).room).toBe('ghost');
      }
      expect(await store.getRoom('ghost')).toBeUndefined();
    });

    it('claimDedupe x5 concurrently: one winner, the others see its record', async () => {
      const { store } = await freshStore();
      const results = await Promise.all(
        [1, 2, 3, 4, 5].map((i) => store.claimDedupe('r', 'alice', 'client-1', `msg-${i}`, T0 + i)),
      );
      const winners = results.filter((r) => r.claimed);
      expect(winners).toHaveLength(1);
      const losers = results.flatMap((r) => (r.claimed ? [] : [r.existing]));
      expect(losers).toHaveLength(4);
      const first = losers[0];
      expect(first?.seq).toBeUndefined();
      for (const existing of losers) expect(existing).toEqual(first);
      // The winner's messageId is whichever of the five the record holds, with that caller's claim time.
      const index = Number(first?.messageId.slice('msg-'.length));
      expect(first?.claimedAt).toBe(T0 + index);
      // Other senders and other client ids are independent.
      expect((await store.claimDedupe('r', 'bob', 'client-1', 'other', T0)).claimed).toBe(true);
      expect((await store.claimDedupe('r', 'alice', 'client-2', 'other', T0)).claimed).toBe(true);
    });

    it('moves a claim from claimed to reserved to stored, only for the holder of its message id', async () => {
      const { store } = await freshStore();
      await store.claimDedupe('r', 'alice', 'c1', 'first', T0);
      // Someone who does not hold the claim can neither reserve nor mark it.
      expect(await store.reserveSeq('r', 'alice', 'c1', 'intruder', { seq: 9, ts: T0 })).toBe(false);
      expect(await store.reserveSeq('r', 'alice', 'c1', 'first', { seq: 7, ts: T0 + 1 })).toBe(true);
      // A seq is reserved once.
      expect(await store.reserveSeq('r', 'alice', 'c1', 'first', { seq: 8, ts: T0 + 2 })).toBe(false);
      await store.markStored('r', 'alice', 'c1', 'intruder');
      const reserved = await store.claimDedupe('r', 'alice', 'c1', 'again', T0 + 3);
      expect(reserved).toEqual({ claimed: false, existing: { messageId: 'first', claimedAt: T0, seq: 7, ts: T0 + 1 } });
      await store.markStored('r', 'alice', 'c1', 'first');
      const stored = await store.claimDedupe('r', 'alice', 'c1', 'again', T0 + 4);
      expect(stored).toEqual({
        claimed: false,
        existing: { messageId: 'first', claimedAt: T0, seq: 7, ts: T0 + 1, stored: true },
      });
    });

    it('takeOverClaim: exactly one of concurrent takeovers wins, only on an unchanged, unstored record', async () => {
      const { store } = await freshStore();
      await store.claimDedupe('r', 'alice', 'c1', 'first', T0);
      const seen = { messageId: 'first', claimedAt: T0 };
      // A record that changed since it was seen is not taken over.
      expect(await store.takeOverClaim('r', 'alice', 'c1', { ...seen, claimedAt: T0 - 1 }, 'x', T0 + 1)).toBe(false);
      expect(await store.takeOverClaim('r', 'alice', 'missing', seen, 'x', T0 + 1)).toBe(false);
      const now = T0 + LIMITS.dedupeClaimStaleMs + 5;
      const takeovers = await Promise.all([
        store.takeOverClaim('r', 'alice', 'c1', seen, 'second', now),
        store.takeOverClaim('r', 'alice', 'c1', seen, 'third', now),
      ]);
      expect(takeovers.filter(Boolean)).toHaveLength(1);
      const claim = await store.claimDedupe('r', 'alice', 'c1', 'fourth', now);
      const taken = claim.claimed ? undefined : claim.existing;
      expect(taken?.claimedAt).toBe(now);
      expect(['second', 'third']).toContain(taken?.messageId);
      // The request that lost its claim can no longer reserve a seq.
      expect(await store.reserveSeq('r', 'alice', 'c1', 'first', { seq: 1, ts: now })).toBe(false);
      // A stored record is never taken over, however old.
      const holder = taken?.messageId ?? '';
      expect(await store.reserveSeq('r', 'alice', 'c1', holder, { seq: 2, ts: now })).toBe(true);
      await store.markStored('r', 'alice', 'c1', holder);
      const late = { messageId: holder, claimedAt: now };
      expect(await store.takeOverClaim('r', 'alice', 'c1', late, 'late', now + 10 ** 9)).toBe(false);
    });

    it('takeOverClaim fails once the holder reserved a seq since it was seen', async () => {
      const { store } = await freshStore();
      await store.claimDedupe('r', 'alice', 'c1', 'first', T0);
      const seen = { messageId: 'first', claimedAt: T0 };
      expect(await store.reserveSeq('r', 'alice', 'c1', 'first', { seq: 4, ts: T0 })).toBe(true);
      const now = T0 + LIMITS.dedupeClaimStaleMs + 5;
      expect(await store.takeOverClaim('r', 'alice', 'c1', seen, 'second', now)).toBe(false);
      expect(await store.takeOverClaim('r', 'alice', 'c1', { ...seen, seq: 4, ts: T0 }, 'first', now)).toBe(true);
      // The new holder may move the reservation to a fresh seq, once, and only from the seq it saw.
      expect(await store.reserveSeq('r', 'alice', 'c1', 'first', { seq: 9, ts: now }, 5)).toBe(false);
      expect(await store.reserveSeq('r', 'alice', 'c1', 'first', { seq: 9, ts: now }, 4)).toBe(true);
      const claim = await store.claimDedupe('r', 'alice', 'c1', 'x', now);
      expect(claim.claimed ? undefined : claim.existing).toMatchObject({ seq: 9, ts: now });
    });

    it('abandonSeq returns a stored message, or closes the seq for good', async () => {
      const { store } = await freshStore({ clock: () => T0 });
      await store.putMessage(message('r', 1));
      expect(await store.abandonSeq('r', 1)).toEqual(message('r', 1));
      expect(await store.abandonSeq('r', 2)).toBeUndefined();
      expect(await store.abandonSeq('r', 2)).toBeUndefined();
      await expect(store.putMessage(message('r', 2))).rejects.toMatchObject({ code: 'message_exists' });
      await store.putMessage(message('r', 3));
      expect((await store.listMessages('r', { limit: 10 })).messages.map((m) => m.seq)).toEqual([1, 3]);
      expect((await store.listMessages('r', { after: 1, limit: 1 })).messages.map((m) => m.seq)).toEqual([3]);
    });

    it('reserveSeq and markStored without a claim create nothing', async () => {
      const { store } = await freshStore();
      expect(await store.reserveSeq('r', 'alice', 'never-claimed', 'm', { seq: 1, ts: T0 })).toBe(false);
      await store.markStored('r', 'alice', 'never-claimed', 'm');
      expect((await store.claimDedupe('r', 'alice', 'never-claimed', 'm', T0)).claimed).toBe(true);
    });

    it('putMessage is idempotent for the same id at a seq', async () => {
      const { store } = await freshStore();
      await store.putMessage(message('r', 1));
      await store.putMessage(message('r', 1));
      expect((await store.listMessages('r', { limit: 10 })).messages).toEqual([message('r', 1)]);
    });

    it('putMessage refuses a second message with the same seq', async () => {
      const { store } = await freshStore();
      await store.putMessage(message('r', 1));
      await expect(store.putMessage({ ...message('r', 1), id: 'other' })).rejects.toMatchObject({
        name: 'MessageExistsError',
        code: 'message_exists',
      });
    });

    describe('listMessages', () => {
      const room = 'history';
      let store: DynamoDbStore;

      beforeAll(async () => {
        ({ store } = await freshStore({ clock: () => T0, pageSize: 3 }));
        for (let seq = 1; seq <= 10; seq++) await store.putMessage(message(room, seq));
        // De-duplication records live in the same partition as the messages; they must never be listed.
        await store.claimDedupe(room, 'alice', 'a', 'x', T0);
        await store.claimDedupe(room, 'zed', 'z', 'y', T0);
        await store.reserveSeq(room, 'zed', 'z', 'y', { seq: 3, ts: T0 });
        await store.markStored(room, 'zed', 'z', 'y');
        await store.putMessage(message('history-other', 1));
      });

      const seqsOf = (page: { messages: StoredMessage[] }) => page.messages.map((m) => m.seq);

      it('returns the newest page in ascending order with a cursor backwards', async () => {
        const page = await store.listMessages(room, { limit: 4 });
        expect(seqsOf(page)).toEqual([7, 8, 9, 10]);
        expect(page.next).toEqual({ before: 7 });
        expect(page.messages[0]).toEqual(message(room, 7));
      });

      it('pages backward to the start with cursors', async () => {
        const seen: number[][] = [];
        let before: number | undefined;
        for (let i = 0; i < 10; i++) {
          const page = await store.listMessages(room, before === undefined ? { limit: 4 } : { before, limit: 4 });
          seen.push(seqsOf(page));
          if (page.next === undefined) break;
          expect(page.next).toHaveProperty('before');
          before = (page.next as { before: number }).before;
        }
        expect(seen.slice(0, 3)).toEqual([
          [7, 8, 9, 10],
          [3, 4, 5, 6],
          [1, 2],
        ]);
        // A full last page may still carry a cursor; what follows it is empty.
        expect(seen.flat()).toHaveLength(10);
      });

      it('pages forward with cursors', async () => {
        const first = await store.listMessages(room, { after: 0, limit: 4 });
        expect(seqsOf(first)).toEqual([1, 2, 3, 4]);
        expect(first.next).toEqual({ after: 4 });
        const second = await store.listMessages(room, { after: 4, limit: 4 });
        expect(seqsOf(second)).toEqual([5, 6, 7, 8]);
        const last = await store.listMessages(room, { after: 8, limit: 4 });
        expect(seqsOf(last)).toEqual([9, 10]);
        expect(last.next).toBeUndefined();
        expect(await store.listMessages(room, { after: 10, limit: 4 })).toEqual({ messages: [] });
      });

      it('returns everything without a cursor when the limit exceeds the history', async () => {
        const page = await store.listMessages(room, { limit: 50 });
        expect(seqsOf(page)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        expect(page.next).toBeUndefined();
        expect(seqsOf(await store.listMessages(room, { before: 4, limit: 50 }))).toEqual([1, 2, 3]);
        expect(await store.listMessages(room, { before: 1, limit: 5 })).toEqual({ messages: [] });
        expect(await store.listMessages('empty-room', { limit: 5 })).toEqual({ messages: [] });
      });

      it('round-trips message bodies exactly', async () => {
        const body = { '': 'empty key', big: 1e300, nested: { list: [1, 'two', null, { three: true }] }, text: '' };
        await store.putMessage({ ...message('bodies', 1), body });
        expect((await store.listMessages('bodies', { limit: 1 })).messages[0]?.body).toEqual(body);
      });
    });

    it('never returns expired items', async () => {
      const clock = manualClock();
      const { store } = await freshStore({ clock: clock.now, pageSize: 2 });
      const nowSeconds = Math.floor(T0 / 1000);
      const expiresAt = nowSeconds + 60;
      await store.putConnection(connection('old', 'carol', expiresAt));
      await store.putConnection(connection('new', 'carol', expiresAt + 3600));
      await store.subscribe({ room: 'r', connectionId: 'old', sub: 'carol' }, expiresAt);
      await store.subscribe({ room: 'r', connectionId: 'new', sub: 'carol' }, expiresAt + 3600);
      await store.createRoom({ room: 'r', visibility: 'public', owner: 'carol', createdAt: T0 });
      await store.addMember('r', 'dave');
      await store.putMessage(message('r', 1, T0));
      await store.putMessage(message('r', 2, T0 + 2 * 24 * 3600 * 1000));
      await store.claimDedupe('r', 'carol', 'c', 'first', T0);

      // Exactly at expiresAt the items count as expired (ttl <= now).
      clock.set(expiresAt * 1000);
      expect(await store.getConnection('old')).toBeUndefined();
      expect(await store.getConnection('new')).toBeDefined();
      expect((await store.listUserConnections('carol')).map((c) => c.connectionId)).toEqual(['new']);
      expect(await store.isSubscribed('r', 'old')).toBe(false);
      expect(await store.listConnectionRooms('old')).toEqual([]);
      expect((await store.listRoomSubscriptions('r')).map((s) => s.connectionId)).toEqual(['new']);
      expect(await store.deleteConnection('old')).toEqual([]);

      // Past the message retention of message 1 and the de-duplication window.
      clock.set(T0 + LIMITS.messageRetentionSeconds * 1000 + 1000);
      const page = await store.listMessages('r', { limit: 10 });
      expect(page.messages.map((m) => m.seq)).toEqual([2]);
      expect((await store.listMessages('r', { after: 0, limit: 10 })).messages.map((m) => m.seq)).toEqual([2]);
      // An expired claim that TTL has not deleted yet does not block a new one.
      expect((await store.claimDedupe('r', 'carol', 'c', 'second', clock.now())).claimed).toBe(true);
      // Rooms and memberships never expire.
      expect((await store.getRoom('r'))?.owner).toBe('carol');
      expect(await store.isMember('r', 'dave')).toBe(true);
    });

    it('writes the TTL attribute the way DynamoDB TTL expects (epoch seconds)', async () => {
      const { store, tableName } = await freshStore();
      await store.putMessage(message('ttl', 1, T0 + 1500));
      await store.claimDedupe('ttl', 'alice', 'c', 'm', T0 + 2500);
      await store.createRoom({ room: 'ttl', visibility: 'public', owner: 'alice', createdAt: T0 });
      const read = async (key: { pk: string; sk: string }) =>
        (await raw.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: key.pk }, sk: { S: key.sk } } })))
          .Item;
      const seconds = Math.floor(T0 / 1000);
      expect((await read(keys.message('ttl', 1)))?.ttl).toEqual({
        N: String(seconds + 1 + LIMITS.messageRetentionSeconds),
      });
      expect((await read(keys.dedupe('ttl', 'alice', 'c')))?.ttl).toEqual({
        N: String(seconds + 2 + LIMITS.dedupeWindowSeconds),
      });
      expect((await read(keys.room('ttl')))?.ttl).toBeUndefined();
      expect((await read(keys.membership('ttl', 'alice')))?.ttl).toBeUndefined();
    });

    describe('rooms: close and members', () => {
      it('closeRoom sets closed on an existing room only, and getRoom returns it', async () => {
        const { store } = await freshStore();
        await store.createRoom({ room: 'r', visibility: 'public', owner: 'alice', createdAt: T0 });
        expect((await store.getRoom('r'))?.closed).toBeUndefined();
        expect(await store.closeRoom('r')).toBe(true);
        expect(await store.getRoom('r')).toEqual({
          room: 'r',
          visibility: 'public',
          owner: 'alice',
          createdAt: T0,
          lastSeq: 0,
          closed: true,
        });
        // Idempotent; the counter still works (closing is the core's business, not the counter's).
        expect(await store.closeRoom('r')).toBe(true);
        expect(await store.nextSeq('r')).toBe(1);
        expect(await store.closeRoom('ghost')).toBe(false);
        expect(await store.getRoom('ghost')).toBeUndefined();
      });

      it('listRoomMembers reads every page and nothing but memberships (pageSize 2)', async () => {
        const { store } = await freshStore({ pageSize: 2 });
        expect(await store.listRoomMembers('club')).toEqual([]);
        await store.createRoom({ room: 'club', visibility: 'private', owner: 'owner', createdAt: T0 });
        for (const sub of ['m3', 'm1', 'm5', 'm2', 'm4']) await store.addMember('club', sub);
        await store.addMember('club-2', 'other');
        await store.subscribe({ room: 'club', connectionId: 'c1', sub: 'm1' }, T0_SECONDS + 3600);
        await store.removeMember('club', 'm4');
        expect(await store.listRoomMembers('club')).toEqual(['m1', 'm2', 'm3', 'm5', 'owner']);
      });
    });

    describe('notifications', () => {
      it('lists the inbox newest first, paging by exclusive id (limit 2 with 5, pageSize 2)', async () => {
        const { store } = await freshStore({ clock: () => T0, pageSize: 2 });
        const notes = [1, 2, 3, 4, 5].map((i) => notification('alice', i));
        for (const note of notes)
          expect(await store.putNotification(note)).toEqual({ notification: note, duplicate: false });
        // A key record lives in the same partition; it is no notification.
        await store.putNotification(notification('alice', 6), 'k');
        await store.putNotification(notification('bob', 1));
        const [n1, n2, n3, n4, n5, n6] = [...notes, notification('alice', 6)];

        const first = await store.listNotifications('alice', { limit: 2, unreadOnly: false });
        expect(first).toEqual({ notifications: [n6, n5], next: { before: n5?.id } });
        const second = await store.listNotifications('alice', { before: n5?.id, limit: 2, unreadOnly: false });
        expect(second).toEqual({ notifications: [n4, n3], next: { before: n3?.id } });
        const third = await store.listNotifications('alice', { before: n3?.id, limit: 2, unreadOnly: false });
        // Exactly what is left, and no cursor: nothing older exists.
        expect(third).toEqual({ notifications: [n2, n1] });
        expect(await store.listNotifications('alice', { before: n1?.id, limit: 2, unreadOnly: false })).toEqual({
          notifications: [],
        });
        expect((await store.listNotifications('alice', { limit: 50, unreadOnly: false })).notifications).toHaveLength(
          6,
        );
        expect(await store.listNotifications('nobody', { limit: 5, unreadOnly: false })).toEqual({ notifications: [] });
        expect(await store.listNotifications('alice', { limit: 0, unreadOnly: false })).toEqual({ notifications: [] });
      });

      it('round-trips bodies exactly', async () => {
        const { store } = await freshStore({ clock: () => T0 });
        const body = { '': 'empty key', big: 1e300, nested: { list: [1, 'two', null, { three: true }] } };
        const note = { ...notification('alice', 1), body };
        await store.putNotification(note);
        expect((await store.listNotifications('alice', { limit: 1, unreadOnly: false })).notifications).toEqual([note]);
      });

      it('a key stores once per user: the retry gets the first notification back, marked duplicate', async () => {
        const { store } = await freshStore({ clock: () => T0 });
        const first = notification('alice', 1);
        expect(await store.putNotification(first, 'order-7')).toEqual({ notification: first, duplicate: false });
        const retry = { ...notification('alice', 2), body: { text: 'retry' } };
        expect(await store.putNotification(retry, 'order-7')).toEqual({ notification: first, duplicate: true });
        // The duplicate comes back as stored now: read.
        await store.markNotificationsRead('alice', [first.id]);
        expect(await store.putNotification(retry, 'order-7')).toEqual({
          notification: { ...first, read: true },
          duplicate: true,
        });
        expect((await store.listNotifications('alice', { limit: 10, unreadOnly: false })).notifications).toHaveLength(
          1,
        );
        // Keys are per user; another key is another notification.
        const bobs = notification('bob', 3);
        expect(await store.putNotification(bobs, 'order-7')).toEqual({ notification: bobs, duplicate: false });
        expect((await store.putNotification(notification('alice', 4), 'order-8')).duplicate).toBe(false);
        expect((await store.listNotifications('alice', { limit: 10, unreadOnly: false })).notifications).toHaveLength(
          2,
        );
      });

      it('x5 concurrent puts with one key: one stores, all answer with the same notification', async () => {
        const { store } = await freshStore({ clock: () => T0 });
        const results = await Promise.all(
          [1, 2, 3, 4, 5].map((i) => store.putNotification(notification('alice', i), 'same')),
        );
        expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
        const stored = await store.listNotifications('alice', { limit: 10, unreadOnly: false });
        expect(stored.notifications).toHaveLength(1);
        for (const result of results) expect(result.notification).toEqual(stored.notifications[0]);
        expect(await store.countUnread('alice')).toBe(1);
      });

      it('a key whose notification is missing (the first call died between its writes) stores it once', async () => {
        const { store, tableName } = await freshStore({ clock: () => T0 });
        const lost = notification('alice', 1);
        // What the dead call left: its key record, not its notification.
        await documentClient.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              ...keys.notifyKey('alice', 'k'),
              type: 'notify-key',
              sub: 'alice',
              key: 'k',
              notificationId: lost.id,
              ts: lost.ts,
              ttl: lost.expiresAt,
            },
          }),
        );
        const retry = { ...notification('alice', 2), body: lost.body };
        expect(await store.putNotification(retry, 'k')).toEqual({ notification: lost, duplicate: true });
        expect(await store.putNotification(retry, 'k')).toEqual({ notification: lost, duplicate: true });
        expect((await store.listNotifications('alice', { limit: 10, unreadOnly: false })).notifications).toEqual([
          lost,
        ]);
        expect(await store.countUnread('alice')).toBe(1);
      });

      it('unread ones come from the index; markRead counts only what it changed', async () => {
        const { store } = await freshStore({ clock: () => T0, pageSize: 2 });
        const notes = [1, 2, 3, 4, 5].map((i) => notification('alice', i));
        for (const note of notes) await store.putNotification(note);
        const [n1, n2, n3, n4, n5] = notes.map((n) => n.id);
        expect(await store.countUnread('alice')).toBe(5);

        // Unknown ids, duplicates and ids of another user's inbox are skipped; nothing is created.
        expect(await store.markNotificationsRead('alice', [n2 ?? '', n4 ?? '', n4 ?? '', 'n-unknown'])).toBe(2);
        expect(await store.markNotificationsRead('alice', [n2 ?? ''])).toBe(0);
        expect(await store.markNotificationsRead('bob', [n1 ?? ''])).toBe(0);
        expect(await store.markNotificationsRead('alice', [])).toBe(0);
        expect(await store.countUnread('alice')).toBe(3);
        expect(await store.countUnread('bob')).toBe(0);
        expect((await store.listNotifications('bob', { limit: 10, unreadOnly: false })).notifications).toEqual([]);

        const all = await store.listNotifications('alice', { limit: 10, unreadOnly: false });
        expect(all.notifications.map((n) => [n.id, n.read])).toEqual([
          [n5, false],
          [n4, true],
          [n3, false],
          [n2, true],
          [n1, false],
        ]);
        const unread = await store.listNotifications('alice', { limit: 2, unreadOnly: true });
        expect(unread.notifications.map((n) => n.id)).toEqual([n5, n3]);
        expect(unread.next).toEqual({ before: n3 });
        const rest = await store.listNotifications('alice', { before: n3, limit: 2, unreadOnly: true });
        expect(rest).toEqual({ notifications: [notes[0]] });
        // A cursor at a read notification works too.
        expect(
          (await store.listNotifications('alice', { before: n4, limit: 5, unreadOnly: true })).notifications.map(
            (n) => n.id,
          ),
        ).toEqual([n3, n1]);
      });

      it('markAllNotificationsRead reads every page of the index (7 unread, pageSize 2)', async () => {
        const { store } = await freshStore({ clock: () => T0, pageSize: 2 });
        for (let i = 1; i <= 8; i++) await store.putNotification(notification('alice', i));
        await store.putNotification(notification('bob', 1));
        await store.markNotificationsRead('alice', [notification('alice', 8).id]);
        expect(await store.countUnread('alice')).toBe(7);
        expect(await store.markAllNotificationsRead('alice')).toBe(7);
        expect(await store.countUnread('alice')).toBe(0);
        expect(await store.listNotifications('alice', { limit: 10, unreadOnly: true })).toEqual({ notifications: [] });
        const all = await store.listNotifications('alice', { limit: 10, unreadOnly: false });
        expect(all.notifications.every((n) => n.read)).toBe(true);
        expect(all.notifications).toHaveLength(8);
        expect(await store.markAllNotificationsRead('alice')).toBe(0);
        expect(await store.markAllNotificationsRead('nobody')).toBe(0);
        expect(await store.countUnread('bob')).toBe(1);
      });

      it('hides expired notifications everywhere, and an expired key no longer de-duplicates', async () => {
        const clock = manualClock();
        const { store } = await freshStore({ clock: clock.now, pageSize: 2 });
        const short = notification('alice', 1, 60);
        const long = notification('alice', 2);
        await store.putNotification(short, 'short-key');
        await store.putNotification(long);
        await store.putNotification(notification('alice', 3, 60));
        expect(await store.countUnread('alice')).toBe(3);

        // Exactly at expiresAt they count as expired (ttl <= now).
        clock.set(short.expiresAt * 1000);
        expect(await store.countUnread('alice')).toBe(1);
        expect((await store.listNotifications('alice', { limit: 1, unreadOnly: false })).notifications).toEqual([long]);
        expect(await store.listNotifications('alice', { limit: 1, unreadOnly: false })).toEqual({
          notifications: [long],
        });
        expect(await store.listNotifications('alice', { limit: 5, unreadOnly: true })).toEqual({
          notifications: [long],
        });
        expect(await store.markNotificationsRead('alice', [short.id])).toBe(0);

        const again = notification('alice', 70_000);
        expect(await store.putNotification(again, 'short-key')).toEqual({ notification: again, duplicate: false });
        expect(await store.markAllNotificationsRead('alice')).toBe(2);
        expect(await store.countUnread('alice')).toBe(0);
      });
    });

    describe('announcements', () => {
      it('a key stores once (globally): the retry gets the first announcement back', async () => {
        const { store } = await freshStore({ clock: () => T0 });
        const first = announcement(AUDIENCE_ALL, 1);
        expect(await store.putAnnouncement(first, 'launch')).toEqual({ announcement: first, duplicate: false });
        const retry = announcement(groupAudience('staff'), 2);
        expect(await store.putAnnouncement(retry, 'launch')).toEqual({ announcement: first, duplicate: true });
        expect((await store.listAnnouncements([AUDIENCE_ALL, 'group.staff'], { limit: 10 })).announcements).toEqual([
          first,
        ]);
        const results = await Promise.all(
          [3, 4, 5, 6].map((i) => store.putAnnouncement(announcement(AUDIENCE_ALL, i), 'race')),
        );
        expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
        const winner = results.find((r) => !r.duplicate)?.announcement;
        for (const result of results) expect(result.announcement).toEqual(winner);
        expect((await store.listAnnouncements([AUDIENCE_ALL], { limit: 10 })).announcements).toHaveLength(2);
      });

      it('a key whose announcement is missing (the first call died between its writes) stores it once', async () => {
        const { store, tableName } = await freshStore({ clock: () => T0 });
        const lost = announcement('group.staff', 1);
        await documentClient.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              ...keys.announceKey('k'),
              type: 'announce-key',
              key: 'k',
              audience: lost.audience,
              announcementId: lost.id,
              ts: lost.ts,
              ttl: lost.expiresAt,
            },
          }),
        );
        const retry = { ...announcement('group.staff', 2), body: lost.body };
        expect(await store.putAnnouncement(retry, 'k')).toEqual({ announcement: lost, duplicate: true });
        expect((await store.listAnnouncements(['group.staff'], { limit: 10 })).announcements).toEqual([lost]);
      });

      describe('listAnnouncements', () => {
        const all = [1, 4, 5, 8, 9].map((i) => announcement(AUDIENCE_ALL, i * 1000));
        const staff = [2, 3, 6, 7].map((i) => announcement('group.staff', i * 1000));
        const merged = [...all, ...staff].sort((a, b) => a.ts - b.ts);
        const ids = (page: { announcements: AnnouncementRecord[] }) =>
          page.announcements.map((a) => a.ts / 1000 - T0 / 1000);
        let store: DynamoDbStore;

        beforeAll(async () => {
          ({ store } = await freshStore({ clock: () => T0 + 10_000, pageSize: 2 }));
          for (const a of [...all, ...staff]) await store.putAnnouncement(a);
          await store.putAnnouncement(announcement('group.other', 5500));
          // Expired: hidden from every read.
          await store.putAnnouncement(announcement(AUDIENCE_ALL, 4500, 1));
        });

        it('merges audiences oldest first and pages with an exclusive `after`', async () => {
          const first = await store.listAnnouncements([AUDIENCE_ALL, 'group.staff'], { limit: 4 });
          expect(first.announcements).toEqual(merged.slice(0, 4));
          expect(first.next).toEqual({ after: merged[3]?.id });
          const second = await store.listAnnouncements([AUDIENCE_ALL, 'group.staff'], {
            after: merged[3]?.id,
            limit: 4,
          });
          expect(ids(second)).toEqual([5, 6, 7, 8]);
          expect(second.next).toEqual({ after: merged[7]?.id });
          const last = await store.listAnnouncements([AUDIENCE_ALL, 'group.staff'], { after: merged[7]?.id, limit: 4 });
          expect(ids(last)).toEqual([9]);
          expect(last.next).toBeUndefined();
          // All of it, an audience listed twice, an audience with nothing.
          const everything = await store.listAnnouncements([AUDIENCE_ALL, 'group.staff', AUDIENCE_ALL, 'group.none'], {
            limit: 9,
          });
          expect(everything).toEqual({ announcements: merged });
          expect(ids(await store.listAnnouncements(['group.staff'], { limit: 10 }))).toEqual([2, 3, 6, 7]);
          expect(await store.listAnnouncements([], { limit: 10 })).toEqual({ announcements: [] });
          expect(await store.listAnnouncements([AUDIENCE_ALL], { limit: 0 })).toEqual({ announcements: [] });
        });

        it('since is inclusive by time; with after, the later bound wins', async () => {
          const since = await store.listAnnouncements([AUDIENCE_ALL, 'group.staff'], { since: T0 + 5000, limit: 3 });
          expect(ids(since)).toEqual([5, 6, 7]);
          expect(since.next).toEqual({ after: merged[6]?.id });
          expect(ids(await store.listAnnouncements([AUDIENCE_ALL], { since: T0 + 5001, limit: 10 }))).toEqual([8, 9]);
          expect(
            ids(await store.listAnnouncements(['group.staff'], { since: T0 + 2000, after: merged[5]?.id, limit: 10 })),
          ).toEqual([7]);
          expect(
            ids(await store.listAnnouncements(['group.staff'], { since: T0 + 6500, after: merged[0]?.id, limit: 10 })),
          ).toEqual([7]);
          expect(await store.listAnnouncements([AUDIENCE_ALL], { since: T0 + 60_000, limit: 10 })).toEqual({
            announcements: [],
          });
        });
      });
    });

    describe('audience directory', () => {
      /** An entry as listed: with the token expiry of {@link connection}'s records. */
      const target = (connectionId: string, sub: string): DeliveryTarget => ({
        connectionId,
        sub,
        tokenExp: TOKEN_EXP,
      });
      /** Every live entry of an audience, all shards read. */
      async function audienceOf(store: DynamoDbStore, audience: string): Promise<DeliveryTarget[]> {
        const shards = await Promise.all(
          Array.from({ length: AUDIENCE_SHARDS }, (_, shard) => store.listAudienceShard(audience, shard)),
        );
        return shards.flat().sort(byConnectionId);
      }

      it('a ws connection is entered in `all` and its valid groups, in its shard; an MQTT one nowhere', async () => {
        const { store } = await freshStore({ clock: () => T0 });
        const expiresAt = T0_SECONDS + 7200;
        await store.putConnection({ ...connection('ws-1', 'alice', expiresAt), groups: ['admins', 'staff', 'bad/x'] });
        await store.putConnection({ ...connection('ws-2', 'bob', expiresAt), groups: ['staff', 'staff'] });
        await store.putConnection({ ...connection('ws-3', 'carol', expiresAt), groups: [] });
        await store.putConnection({
          ...connection('mqtt:dave', 'dave', expiresAt),
          channel: 'mqtt',
          groups: ['staff'],
          lifecycle: { versionNumber: 1, timestamp: T0 },
        });
        await store.putConnection({
          ...connection('mqtt:erin', 'erin', expiresAt),
          channel: 'mqtt',
          groups: ['staff'],
        });

        expect(await store.listAudienceShard(AUDIENCE_ALL, audienceShardOf('ws-1'))).toContainEqual(
          target('ws-1', 'alice'),
        );
        expect(await audienceOf(store, AUDIENCE_ALL)).toEqual([
          target('ws-1', 'alice'),
          target('ws-2', 'bob'),
          target('ws-3', 'carol'),
        ]);
        expect(await audienceOf(store, groupAudience('staff'))).toEqual([
          target('ws-1', 'alice'),
          target('ws-2', 'bob'),
        ]);
        expect(await audienceOf(store, groupAudience('admins'))).toEqual([target('ws-1', 'alice')]);
        expect(await audienceOf(store, groupAudience('bad/x'))).toEqual([]);
        await expect(store.listAudienceShard(AUDIENCE_ALL, AUDIENCE_SHARDS)).rejects.toBeInstanceOf(RangeError);
        await expect(store.listAudienceShard(AUDIENCE_ALL, -1)).rejects.toBeInstanceOf(RangeError);
      });

      it('spreads connections over the shards and reads every page of one (pageSize 2)', async () => {
        const { store } = await freshStore({ clock: () => T0, pageSize: 2 });
        const ids = Array.from({ length: 60 }, (_, i) => `conn-${String(i).padStart(2, '0')}`);
        await Promise.all(ids.map((id) => store.putConnection(connection(id, `u-${id}`, T0_SECONDS + 7200))));
        const shards = await Promise.all(
          Array.from({ length: AUDIENCE_SHARDS }, (_, shard) => store.listAudienceShard('group.staff', shard)),
        );
        shards.forEach((targets, shard) => {
          for (const target of targets) expect(audienceShardOf(target.connectionId)).toBe(shard);
        });
        expect(shards.filter((targets) => targets.length > 0).length).toBeGreaterThan(AUDIENCE_SHARDS / 2);
        expect((await audienceOf(store, 'group.staff')).map((t) => t.connectionId)).toEqual(ids);
      });

      it('deleteConnection removes the entries, with or without the connection record', async () => {
        const { store, tableName } = await freshStore({ clock: () => T0 });
        const expiresAt = T0_SECONDS + 7200;
        await store.putConnection(connection('gone-1', 'alice', expiresAt));
        await store.putConnection(connection('gone-2', 'bob', expiresAt));
        await store.putConnection(connection('stays', 'carol', expiresAt));
        await store.subscribe({ room: 'r', connectionId: 'gone-1', sub: 'alice' }, expiresAt);

        expect(await store.deleteConnection('gone-1')).toEqual(['r']);
        // A call that died after deleting the record: the `all` entry still leads to the group entries.
        await documentClient.send(new DeleteCommand({ TableName: tableName, Key: keys.connection('gone-2') }));
        expect(await store.deleteConnection('gone-2')).toEqual([]);
        for (const audience of [AUDIENCE_ALL, 'group.admins', 'group.staff']) {
          expect(await audienceOf(store, audience)).toEqual([target('stays', 'carol')]);
        }
        expect(await store.deleteConnection('gone-1')).toEqual([]);
        expect(await store.deleteConnection('mqtt:never')).toEqual([]);
      });

      it('putConnection again under the same id moves the entries to the new groups', async () => {
        const { store } = await freshStore({ clock: () => T0 });
        const expiresAt = T0_SECONDS + 7200;
        await store.putConnection(connection('c', 'alice', expiresAt));
        await store.putConnection({ ...connection('c', 'alice', expiresAt), groups: ['staff', 'ops'] });
        expect(await audienceOf(store, 'group.admins')).toEqual([]);
        expect(await audienceOf(store, 'group.staff')).toHaveLength(1);
        expect(await audienceOf(store, 'group.ops')).toHaveLength(1);
        await store.deleteConnection('c');
        for (const audience of [AUDIENCE_ALL, 'group.staff', 'group.ops'])
          expect(await audienceOf(store, audience)).toEqual([]);
      });

      it('expired entries are not listed', async () => {
        const clock = manualClock();
        const { store } = await freshStore({ clock: clock.now });
        await store.putConnection(connection('old', 'alice', T0_SECONDS + 60));
        await store.putConnection(connection('new', 'bob', T0_SECONDS + 7200));
        clock.set((T0_SECONDS + 60) * 1000);
        expect(await audienceOf(store, AUDIENCE_ALL)).toEqual([target('new', 'bob')]);
        expect(await audienceOf(store, 'group.staff')).toEqual([target('new', 'bob')]);
      });
    });

    describe('token-expiry index', () => {
      /** Every connection whose token expired by `nowSeconds`, all shards read. */
      async function expiredBy(store: DynamoDbStore, nowSeconds: number, limit = 100): Promise<DeliveryTarget[]> {
        const shards = await Promise.all(
          Array.from({ length: AUDIENCE_SHARDS }, (_, shard) => store.listExpiredConnections(shard, nowSeconds, limit)),
        );
        return shards.flat().sort(byConnectionId);
      }
      const withToken = (id: string, sub: string, tokenExp: number): ConnectionRecord => ({
        ...connection(id, sub, T0_SECONDS + 7200),
        tokenExp,
      });

      it('lists the ws connections whose token expired at or before the time, with their expiry; MQTT ones never', async () => {
        const { store } = await freshStore({ clock: () => T0 });
        await store.putConnection(withToken('a', 'alice', T0_SECONDS + 100));
        await store.putConnection(withToken('b', 'bob', T0_SECONDS + 101));
        await store.putConnection(withToken('c', 'carol', T0_SECONDS + 5000));
        await store.putConnection({
          ...withToken('mqtt:dave', 'dave', T0_SECONDS + 50),
          channel: 'mqtt',
          lifecycle: { versionNumber: 1, timestamp: T0 },
        });
        expect(await expiredBy(store, T0_SECONDS + 99)).toEqual([]);
        // `exp` is the first second a token is no longer good: both ends of the range are inclusive.
        expect(await expiredBy(store, T0_SECONDS + 100)).toEqual([
          { connectionId: 'a', sub: 'alice', tokenExp: T0_SECONDS + 100 },
        ]);
        expect(await expiredBy(store, T0_SECONDS + 4999)).toEqual([
          { connectionId: 'a', sub: 'alice', tokenExp: T0_SECONDS + 100 },
          { connectionId: 'b', sub: 'bob', tokenExp: T0_SECONDS + 101 },
        ]);
        expect((await expiredBy(store, T0_SECONDS + 5000)).map((t) => t.connectionId)).toEqual(['a', 'b', 'c']);
        await expect(store.listExpiredConnections(AUDIENCE_SHARDS, T0_SECONDS, 10)).rejects.toBeInstanceOf(RangeError);
      });

      it('forgets a connection with deleteConnection, and moves it when the same id is put with a new token', async () => {
        const { store } = await freshStore({ clock: () => T0 });
        await store.putConnection(withToken('a', 'alice', T0_SECONDS + 100));
        await store.putConnection(withToken('b', 'bob', T0_SECONDS + 100));
        await store.deleteConnection('a');
        await store.putConnection(withToken('b', 'bob', T0_SECONDS + 900));
        expect(await expiredBy(store, T0_SECONDS + 899)).toEqual([]);
        expect(await expiredBy(store, T0_SECONDS + 900)).toEqual([
          { connectionId: 'b', sub: 'bob', tokenExp: T0_SECONDS + 900 },
        ]);
      });

      it('oldest expiry first, at most `limit` per shard, every page read (pageSize 2); entries past their TTL are left out', async () => {
        const clock = manualClock();
        const { store } = await freshStore({ clock: clock.now, pageSize: 2 });
        // Ids in one shard, so the limit applies to one partition of the index.
        const sameShard = Array.from({ length: 400 }, (_, i) => `id-${i}`)
          .filter((id) => audienceShardOf(id) === 3)
          .slice(0, 6);
        for (const [i, id] of sameShard.entries())
          await store.putConnection(withToken(id, `u${i}`, T0_SECONDS + 600 - i));
        const firstFour = await store.listExpiredConnections(3, T0_SECONDS + 600, 4);
        expect(firstFour.map((t) => t.tokenExp)).toEqual([595, 596, 597, 598].map((d) => T0_SECONDS + d));
        expect(await store.listExpiredConnections(3, T0_SECONDS + 600, 100)).toHaveLength(6);
        // API Gateway cut them at 2 hours: their entries outlive them only until TTL deletes them.
        clock.set((T0_SECONDS + 7200) * 1000);
        expect(await store.listExpiredConnections(3, T0_SECONDS + 7200, 100)).toEqual([]);
      });
    });

    describe('fan-out batches', () => {
      it('x5 concurrent claims: exactly one runs the batch', async () => {
        const { store } = await freshStore({ clock: () => T0 });
        const claims = await Promise.all([1, 2, 3, 4, 5].map((i) => store.claimBatch('b1', T0 + i)));
        expect(claims.filter((c) => c.claimed)).toEqual([{ claimed: true, doneCount: 0 }]);
        expect(claims.filter((c) => !c.claimed)).toEqual(Array(4).fill({ claimed: false, state: 'running' }));
        expect(await store.claimBatch('b2', T0)).toEqual({ claimed: true, doneCount: 0 });
      });

      it('a stale claim is taken over once, with its checkpoint; a fresh one is not', async () => {
        const { store } = await freshStore({ clock: () => T0 });
        expect(await store.claimBatch('b', T0)).toEqual({ claimed: true, doneCount: 0 });
        await store.checkpointBatch('b', 250);
        // Checkpoints only move forward.
        await store.checkpointBatch('b', 100);
        expect(await store.claimBatch('b', T0 + LIMITS.fanoutClaimStaleMs - 1)).toEqual({
          claimed: false,
          state: 'running',
        });
        const stale = T0 + LIMITS.fanoutClaimStaleMs;
        const takeovers = await Promise.all([store.claimBatch('b', stale), store.claimBatch('b', stale)]);
        expect(takeovers.filter((c) => c.claimed)).toEqual([{ claimed: true, doneCount: 250 }]);
        expect(takeovers.filter((c) => !c.claimed)).toEqual([{ claimed: false, state: 'running' }]);
        // The takeover's claim is fresh now.
        expect(await store.claimBatch('b', stale + 1000)).toEqual({ claimed: false, state: 'running' });
        await store.checkpointBatch('b', 400);
        expect(await store.claimBatch('b', stale + LIMITS.fanoutClaimStaleMs)).toEqual({
          claimed: true,
          doneCount: 400,
        });
      });

      it('a done batch is refused, however old its claim; completing an unclaimed one marks it done', async () => {
        const { store } = await freshStore({ clock: () => T0 });
        await store.claimBatch('b', T0);
        await store.checkpointBatch('b', 10);
        await store.completeBatch('b', T0 + 500);
        expect(await store.claimBatch('b', T0 + 1000)).toEqual({ claimed: false, state: 'done' });
        expect(await store.claimBatch('b', T0 + 10 * LIMITS.fanoutClaimStaleMs)).toEqual({
          claimed: false,
          state: 'done',
        });
        // A checkpoint of a done batch changes nothing.
        await store.checkpointBatch('b', 20);
        expect(await store.claimBatch('b', T0 + 10 * LIMITS.fanoutClaimStaleMs)).toEqual({
          claimed: false,
          state: 'done',
        });
        await store.completeBatch('never-claimed', T0);
        expect(await store.claimBatch('never-claimed', T0)).toEqual({ claimed: false, state: 'done' });
      });

      it('a batch record is kept a day, then may be claimed anew', async () => {
        const clock = manualClock();
        const { store } = await freshStore({ clock: clock.now });
        await store.claimBatch('b', T0);
        await store.completeBatch('b', T0);
        clock.set(T0 + 24 * 3600 * 1000 - 1000);
        expect(await store.claimBatch('b', clock.now())).toEqual({ claimed: false, state: 'done' });
        clock.set(T0 + 24 * 3600 * 1000);
        expect(await store.claimBatch('b', clock.now())).toEqual({ claimed: true, doneCount: 0 });
      });
    });

    it('writes the TTL of the new items in epoch seconds', async () => {
      const { store, tableName } = await freshStore({ clock: () => T0 });
      const read = async (key: { pk: string; sk: string }) =>
        (await raw.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: key.pk }, sk: { S: key.sk } } })))
          .Item;
      const note = notification('alice', 1500);
      await store.putNotification(note, 'k');
      const news = announcement(AUDIENCE_ALL, 2500);
      await store.putAnnouncement(news, 'k');
      await store.putConnection(connection('c', 'alice', T0_SECONDS + 7200));
      await store.claimBatch('b', T0 + 3500);
      expect((await read(keys.notification('alice', note.id)))?.ttl).toEqual({ N: String(note.expiresAt) });
      expect((await read(keys.notifyKey('alice', 'k')))?.ttl).toEqual({ N: String(note.expiresAt) });
      expect((await read(keys.announcement(AUDIENCE_ALL, news.id)))?.ttl).toEqual({ N: String(news.expiresAt) });
      expect((await read(keys.announceKey('k')))?.ttl).toEqual({ N: String(news.expiresAt) });
      expect((await read(keys.audienceEntry('group.staff', audienceShardOf('c'), 'c')))?.ttl).toEqual({
        N: String(T0_SECONDS + 7200),
      });
      expect((await read(keys.fanoutBatch('b')))?.ttl).toEqual({ N: String(T0_SECONDS + 3 + 24 * 3600) });
    });

    it('raises SDK errors it does not map with their own name', async () => {
      const store = new DynamoDbStore({ client: documentClient, tableName: unique('missing-table') });
      await expect(store.getRoom('r')).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    });
  });
}
