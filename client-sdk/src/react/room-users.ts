/**
 * How many mounted `useRoom` hooks use each room of each client, so `leaveOnUnmount` leaves a room only when
 * the last of them unmounts (the room handle is shared by everything that joined it).
 */
const users = new WeakMap<object, Map<string, number>>();

function count(client: object, name: string): number {
  return users.get(client)?.get(name) ?? 0;
}

/** A `useRoom` of `name` mounted. */
export function retainRoom(client: object, name: string): void {
  let rooms = users.get(client);
  if (rooms === undefined) {
    rooms = new Map();
    users.set(client, rooms);
  }
  rooms.set(name, count(client, name) + 1);
}

/**
 * A `useRoom` of `name` unmounted. With `leave`, calls it if no other `useRoom` of the room is mounted by the
 * end of the current task's microtasks: React StrictMode's unmount-and-remount of effects (and a component
 * replaced by another that uses the same room in the same commit) re-retains it before that, so the room is
 * not left and joined again for nothing.
 */
export function releaseRoom(client: object, name: string, leave: (() => void) | undefined): void {
  const rooms = users.get(client);
  const left = count(client, name) - 1;
  if (left > 0) rooms?.set(name, left);
  else rooms?.delete(name);
  if (leave === undefined) return;
  queueMicrotask(() => {
    if (count(client, name) === 0) leave();
  });
}
