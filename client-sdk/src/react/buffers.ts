/**
 * Pure helpers of the hooks' bounded lists (exported for the tests, not from the package).
 */
/** Merges `incoming` into `list` (ascending `seq`, no two with the same `id`) and keeps the newest `max`.
 * Returns `list` itself when nothing changed, so a state update with it does not re-render. */
export function mergeMessages<M extends { readonly id: string; readonly seq: number }>(
  list: readonly M[],
  incoming: readonly M[],
  max: number,
): readonly M[] {
  let next: M[] | undefined;
  for (const message of incoming) {
    const current: readonly M[] = next ?? list;
    const last = current[current.length - 1];
    if (last === undefined || message.seq > last.seq) {
      // The usual case, a live message after the others: append.
      next ??= [...list];
      next.push(message);
      continue;
    }
    if (current.some((m) => m.id === message.id)) continue;
    next ??= [...list];
    // Insert before the first message with a higher seq (history arriving after live messages).
    const index = next.findIndex((m) => m.seq > message.seq);
    next.splice(index < 0 ? next.length : index, 0, message);
  }
  if (next === undefined) return list;
  return next.length > max ? next.slice(next.length - Math.max(0, max)) : next;
}

/** Puts `item` first in `list` (newest first) unless an item with its `id` is already there; keeps `max`. */
export function prependUnique<T extends { readonly id: string }>(
  list: readonly T[],
  item: T,
  max: number,
): readonly T[] {
  if (list.some((x) => x.id === item.id)) return list;
  const next = [item, ...list];
  return next.length > max ? next.slice(0, Math.max(0, max)) : next;
}

/** The bound of a list option: a non-negative integer, or `fallback`. */
export function boundOf(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value >= 0 ? Math.floor(value) : fallback;
}
