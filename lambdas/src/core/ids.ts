/**
 * Server ids: time-ordered (base36 epoch ms, fixed width) then random, so ids sort roughly by creation and
 * never collide across Lambda instances.
 */
import { timeId } from '@viba-realtime/protocol';

/** 16 random characters of `[0-9a-f]`. */
export function randomSuffix(): string {
  return globalThis.crypto.randomUUID().replaceAll('-', '').slice(0, 16);
}

export function newMessageId(now: number): string {
  return timeId('m_', now, randomSuffix());
}
