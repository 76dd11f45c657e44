/**
 * Every answer is one WebSocket message (API Gateway: 128 KB) or one MQTT payload (IoT: 128 KB). A page of items
 * with large bodies (16 KiB each, up to 100 of them) would not fit, and API Gateway would answer the client
 * `Internal server error` instead, IoT refuse the publish. So a page is cut short to `LIMITS.historyPageMaxBytes`
 * and its cursor moved to the last item kept, as `history` does (rooms.ts).
 */
import { LIMITS, utf8Length } from '@viba-realtime/protocol';

/** The longest start of `items` whose JSON fits in `budget` bytes (at least one item), and whether it was cut. */
export function fitPage<T>(
  items: readonly T[],
  budget: number = LIMITS.historyPageMaxBytes,
): { kept: T[]; cut: boolean } {
  const kept: T[] = [];
  let used = 0;
  for (const item of items) {
    used += utf8Length(JSON.stringify(item)) + 1;
    if (used > budget && kept.length > 0) break;
    kept.push(item);
  }
  return { kept, cut: kept.length < items.length };
}
