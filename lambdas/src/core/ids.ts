/**
 * Server message ids: time-ordered (base36 epoch ms, fixed width) then random, so ids sort roughly by
 * creation and never collide across Lambda instances.
 */
export function newMessageId(now: number): string {
  const time = now.toString(36).padStart(9, '0');
  const random = globalThis.crypto.randomUUID().replaceAll('-', '').slice(0, 16);
  return `m_${time}${random}`;
}
