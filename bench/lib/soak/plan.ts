/**
 * Who is who in a soak run, from the seed: each client's user, channel and MQTT version, the rooms (a mix of
 * sizes, as chat apps have: many direct messages and small groups, fewer channels, a few big rooms) and each
 * client's home rooms.
 */
import type { Channel } from './links.js';
import { Random } from './random.js';

/** Room kinds with their size and their share of all memberships. */
export const ROOM_KINDS = [
  { kind: 'dm', size: 2, share: 0.35 },
  { kind: 'group', size: 6, share: 0.35 },
  { kind: 'channel', size: 20, share: 0.2 },
  { kind: 'big', size: 60, share: 0.1 },
] as const;

export type RoomKind = (typeof ROOM_KINDS)[number]['kind'];

export interface RoomPlan {
  name: string;
  kind: RoomKind;
  /** Clients that join it from the start. */
  members: number[];
}

export interface ClientPlan {
  index: number;
  sub: string;
  channel: Channel;
  protocolVersion: 4 | 5;
  homeRooms: string[];
}

/** What {@link summarizePlan} reports. */
export interface PlanSummary {
  clients: Record<Channel, number>;
  mqttVersions: { v4: number; v5: number };
  rooms: Record<string, { rooms: number; members: number }>;
  memberships: number;
}

export interface SoakPlan {
  clients: ClientPlan[];
  rooms: RoomPlan[];
  /** Rooms churn joins go to (groups, channels and big rooms; direct messages stay between their two). */
  churnRooms: string[];
}

/** Builds the plan for `connections` clients. */
export function planSoak(options: {
  connections: number;
  mqttShare: number;
  mqttOverWsShare: number;
  roomsPerUser: number;
  maxRoomSize: number;
  seed: number;
}): SoakPlan {
  const random = new Random(options.seed);
  const n = options.connections;
  const mqtt = Math.round(n * options.mqttShare);
  const mqttOverWs = Math.round(mqtt * options.mqttOverWsShare);
  const channels: Channel[] = Array.from({ length: n }, (_, i) =>
    i < mqttOverWs ? 'mqtt-ws' : i < mqtt ? 'mqtt-tcp' : 'websocket',
  );
  random.shuffle(channels);
  let mqttSeen = 0;
  const clients: ClientPlan[] = channels.map((channel, index) => ({
    index,
    // Subs are `[A-Za-z0-9_-]` (no `.`: it separates an MQTT client id's suffix).
    sub: `soak${options.seed}-u${index}`,
    channel,
    // MQTT 3.1.1 and 5 in turn: IoT Core speaks both and the broker has code paths for each.
    protocolVersion: channel === 'websocket' ? 5 : mqttSeen++ % 2 === 0 ? 5 : 4,
    homeRooms: [],
  }));

  const perUser = Math.min(options.roomsPerUser, n);
  const memberships = n * perUser;
  // A small run keeps every kind, each room no larger than a fifth of the clients (nor the cap).
  const sizeOf = (kind: RoomKind) =>
    Math.max(2, Math.min(ROOM_KINDS.find((k) => k.kind === kind)?.size ?? 2, Math.floor(n / 5), options.maxRoomSize));
  const rooms: RoomPlan[] = [];
  for (const { kind, share } of ROOM_KINDS) {
    const count = Math.max(1, Math.ceil((memberships * share) / sizeOf(kind)));
    for (let r = 0; r < count; r++) rooms.push({ name: `soak-${kind}-${r}`, kind, members: [] });
  }
  const capacity = (room: RoomPlan) => sizeOf(room.kind);
  // Every client `perUser` times, shuffled, placed in the next room with space that it is not in yet.
  const entries = random.shuffle(Array.from({ length: memberships }, (_, i) => i % n));
  let cursor = 0;
  for (const client of entries) {
    for (let tried = 0; tried < rooms.length; tried++) {
      const room = rooms[(cursor + tried) % rooms.length] as RoomPlan;
      if (room.members.length < capacity(room) && !room.members.includes(client)) {
        room.members.push(client);
        (clients[client] as ClientPlan).homeRooms.push(room.name);
        cursor = (cursor + tried) % rooms.length;
        break;
      }
    }
  }
  const used = rooms.filter((room) => room.members.length > 0);
  return {
    clients,
    rooms: used,
    churnRooms: used.filter((room) => room.kind !== 'dm').map((room) => room.name),
  };
}

/** Clients per channel and MQTT version, rooms and members per kind. */
export function summarizePlan(plan: SoakPlan): PlanSummary {
  const clients = { websocket: 0, 'mqtt-tcp': 0, 'mqtt-ws': 0 } as Record<Channel, number>;
  const mqttVersions = { v4: 0, v5: 0 };
  for (const c of plan.clients) {
    clients[c.channel]++;
    if (c.channel !== 'websocket') mqttVersions[c.protocolVersion === 4 ? 'v4' : 'v5']++;
  }
  const rooms: Record<string, { rooms: number; members: number }> = {};
  for (const { kind } of ROOM_KINDS) rooms[kind] = { rooms: 0, members: 0 };
  for (const room of plan.rooms) {
    const entry = rooms[room.kind] as { rooms: number; members: number };
    entry.rooms++;
    entry.members += room.members.length;
  }
  return { clients, mqttVersions, rooms, memberships: plan.rooms.reduce((n, r) => n + r.members.length, 0) };
}
