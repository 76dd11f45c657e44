/**
 * The DynamoDbStore contract, run against every DynamoDB we support (dynalite in the emulator, Amazon's
 * DynamoDB Local), so that a pass proves our use of the DynamoDB API and not one emulator's quirks.
 */
import { randomUUID } from 'node:crypto';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { keys, LIMITS } from '@viba-realtime/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionRecord, StoredMessage } from '../src/core/ports.js';
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

    it('raises SDK errors it does not map with their own name', async () => {
      const store = new DynamoDbStore({ client: documentClient, tableName: unique('missing-table') });
      await expect(store.getRoom('r')).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    });
  });
}
