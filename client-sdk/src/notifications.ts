/**
 * The notification inbox: live notifications, the unread count, and after every reconnect the ones missed
 * while offline, read from the inbox (each id delivered once).
 */
import {
  type AckFrame,
  type InboxPageFrame,
  type JsonObject,
  LIMITS,
  type NotificationFrame,
} from '@viba-realtime/protocol';
import type { ClientContext } from './internal/context.js';
import { Emitter } from './internal/emitter.js';
import { RecentSet } from './internal/recent.js';
import type { Notification, NotificationEvents, Notifications } from './types.js';

/** Inbox pages read to find what was missed while offline; past that, the app's `list()` has the rest. */
const MAX_CATCH_UP_PAGES = 5;

export class NotificationInbox<Body extends JsonObject = JsonObject> implements Notifications<Body> {
  readonly #ctx: ClientContext;
  readonly #events: Emitter<NotificationEvents<Body>>;
  readonly #seen = new RecentSet(1_000);
  #unread: number | undefined;
  /** Newest notification id seen ('' for an empty inbox; undefined before the first connect): ids sort by
   * time, so anything newer after a reconnect was missed. */
  #newestId: string | undefined;

  constructor(ctx: ClientContext) {
    this.#ctx = ctx;
    this.#events = new Emitter((event, error) => ctx.listenerFailed(`notifications:${event}`, error));
  }

  get unreadCount(): number | undefined {
    return this.#unread;
  }

  on<E extends keyof NotificationEvents<Body>>(event: E, listener: NotificationEvents<Body>[E]): () => void {
    return this.#events.on(event, listener);
  }

  off<E extends keyof NotificationEvents<Body>>(event: E, listener: NotificationEvents<Body>[E]): void {
    this.#events.off(event, listener);
  }

  async list(options: { before?: string; limit?: number; unreadOnly?: boolean } = {}): Promise<{
    notifications: Notification<Body>[];
    unread: number;
    next?: { before: string };
  }> {
    const page = (await this.#ctx.request({ action: 'inbox', body: options })) as InboxPageFrame;
    this.#setUnread(page.unread);
    const notifications = this.#typed(page.notifications);
    return page.next === undefined
      ? { notifications, unread: page.unread }
      : { notifications, unread: page.unread, next: page.next };
  }

  async markRead(ids: string[]): Promise<number> {
    const ack = (await this.#ctx.request({ action: 'markRead', body: { ids } })) as AckFrame;
    this.#setUnread(ack.unread ?? 0);
    return ack.unread ?? 0;
  }

  async markAllRead(): Promise<number> {
    const ack = (await this.#ctx.request({ action: 'markAllRead' })) as AckFrame;
    this.#setUnread(ack.unread ?? 0);
    return ack.unread ?? 0;
  }

  // --- called by the client ---

  /** A live notification. */
  notification(frame: NotificationFrame): void {
    if (this.#seen.has(frame.id)) return;
    this.#deliver(frame);
    if (!frame.read && this.#unread !== undefined) this.#setUnread(this.#unread + 1);
  }

  /** A connection opened: learn the unread count and deliver what arrived while offline. */
  async connected(): Promise<void> {
    try {
      const since = this.#newestId;
      let before: string | undefined;
      const missed: NotificationFrame[] = [];
      let unread: number | undefined;
      for (let page = 0; page < MAX_CATCH_UP_PAGES; page++) {
        const body = before === undefined ? { limit: LIMITS.inboxPageMax } : { limit: LIMITS.inboxPageMax, before };
        const answer = (await this.#ctx.request({ action: 'inbox', body }, { resend: false })) as InboxPageFrame;
        unread ??= answer.unread;
        if (since === undefined) {
          // First connect: the inbox so far is the app's to list; only what comes next is "new".
          // '' when the inbox is empty: every id sorts after it, so the next catch-up knows it has a baseline.
          this.#newestId = answer.notifications[0]?.id ?? this.#newestId ?? '';
          break;
        }
        const newer = answer.notifications.filter((n) => n.id > since);
        missed.push(...newer);
        if (newer.length < answer.notifications.length || answer.next === undefined) break;
        before = answer.next.before;
      }
      // Oldest first, as they happened.
      for (const frame of missed.reverse()) if (!this.#seen.has(frame.id)) this.#deliver(frame);
      if (unread !== undefined) this.#setUnread(unread);
    } catch (error) {
      this.#ctx.logger.warn?.('inbox catch-up failed; it runs again on the next connect', { error: String(error) });
    }
  }

  #deliver(frame: NotificationFrame): void {
    this.#seen.add(frame.id);
    if (this.#newestId === undefined || frame.id > this.#newestId) this.#newestId = frame.id;
    const body = this.#ctx.checkIncoming('notification', frame.body, frame);
    if (body === undefined) return;
    this.#events.emit('notification', { id: frame.id, ts: frame.ts, body: body as Body, read: frame.read });
  }

  #typed(frames: NotificationFrame[]): Notification<Body>[] {
    const out: Notification<Body>[] = [];
    for (const frame of frames) {
      const body = this.#ctx.checkIncoming('notification', frame.body, frame);
      if (body !== undefined) out.push({ id: frame.id, ts: frame.ts, body: body as Body, read: frame.read });
    }
    return out;
  }

  #setUnread(count: number): void {
    if (this.#unread === count) return;
    this.#unread = count;
    this.#events.emit('unread', count);
  }
}
