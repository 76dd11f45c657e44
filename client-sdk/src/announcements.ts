/**
 * Announcements: live ones, and after every reconnect the ones made while offline (each id once).
 */
import {
  type AckFrame,
  type AnnouncementFrame,
  type AnnouncementsPageFrame,
  type JsonObject,
  LIMITS,
} from '@viba-realtime/protocol';
import type { ClientContext } from './internal/context.js';
import { Emitter } from './internal/emitter.js';
import { randomId } from './internal/ids.js';
import { RecentSet } from './internal/recent.js';
import type { Announcement, AnnouncementEvents, Announcements } from './types.js';

/** Pages read per catch-up; announcements are rare, so this is a safety stop, not a real bound. */
const MAX_CATCH_UP_PAGES = 10;

/** Clocks of client and service differ; a catch-up by time starts this much earlier (duplicates are dropped). */
const CLOCK_SKEW_MS = 30_000;

export class AnnouncementFeed<Body extends JsonObject = JsonObject> implements Announcements<Body> {
  readonly #ctx: ClientContext;
  readonly #events: Emitter<AnnouncementEvents<Body>>;
  readonly #seen = new RecentSet(500);
  #newestId: string | undefined;
  /** When the last connection was lost (client clock), to catch up by time when no announcement was seen. */
  #offlineSince: number | undefined;
  readonly #lookbackMs: number;

  constructor(ctx: ClientContext, lookbackMs: number) {
    this.#ctx = ctx;
    this.#lookbackMs = lookbackMs;
    this.#events = new Emitter((event, error) => ctx.listenerFailed(`announcements:${event}`, error));
  }

  on<E extends keyof AnnouncementEvents<Body>>(event: E, listener: AnnouncementEvents<Body>[E]): () => void {
    return this.#events.on(event, listener);
  }

  off<E extends keyof AnnouncementEvents<Body>>(event: E, listener: AnnouncementEvents<Body>[E]): void {
    this.#events.off(event, listener);
  }

  async since(options: { since?: number; after?: string; limit?: number } = {}): Promise<{
    announcements: Announcement<Body>[];
    next?: { after: string };
  }> {
    const page = (await this.#ctx.request({ action: 'announcements', body: options })) as AnnouncementsPageFrame;
    const announcements: Announcement<Body>[] = [];
    for (const frame of page.announcements) {
      const typed = this.#typed(frame);
      if (typed !== undefined) announcements.push(typed);
    }
    return page.next === undefined ? { announcements } : { announcements, next: page.next };
  }

  async announce(
    body: Body,
    options: { group?: string; clientId?: string } = {},
  ): Promise<{ id: string; clientId: string }> {
    this.#ctx.checkOutgoing('announcement', body);
    const clientId = options.clientId ?? randomId(16);
    const frame =
      options.group === undefined
        ? ({ action: 'announce', id: clientId, body } as const)
        : ({ action: 'announce', id: clientId, group: options.group, body } as const);
    const ack = (await this.#ctx.request(frame)) as AckFrame;
    return { id: ack.id ?? '', clientId };
  }

  // --- called by the client ---

  announcement(frame: AnnouncementFrame): void {
    if (this.#seen.has(frame.id)) return;
    this.#deliver(frame);
  }

  disconnected(now: number): void {
    this.#offlineSince ??= now;
  }

  async connected(now: number): Promise<void> {
    const offlineSince = this.#offlineSince;
    const firstConnect = offlineSince === undefined && this.#newestId === undefined;
    if (firstConnect && this.#lookbackMs <= 0) return;
    let cursor: { after: string } | { since: number } =
      this.#newestId !== undefined
        ? { after: this.#newestId }
        : { since: (offlineSince ?? now - this.#lookbackMs) - CLOCK_SKEW_MS };
    try {
      for (let page = 0; page < MAX_CATCH_UP_PAGES; page++) {
        const answer = (await this.#ctx.request(
          { action: 'announcements', body: { ...cursor, limit: LIMITS.announcementsPageMax } },
          { resend: false },
        )) as AnnouncementsPageFrame;
        for (const frame of answer.announcements) if (!this.#seen.has(frame.id)) this.#deliver(frame);
        if (answer.next === undefined) break;
        cursor = answer.next;
      }
      this.#offlineSince = undefined;
    } catch (error) {
      this.#ctx.logger.warn?.('announcements catch-up failed; it runs again on the next connect', {
        error: String(error),
      });
    }
  }

  #deliver(frame: AnnouncementFrame): void {
    this.#seen.add(frame.id);
    if (this.#newestId === undefined || frame.id > this.#newestId) this.#newestId = frame.id;
    const typed = this.#typed(frame);
    if (typed !== undefined) this.#events.emit('announcement', typed);
  }

  #typed(frame: AnnouncementFrame): Announcement<Body> | undefined {
    const body = this.#ctx.checkIncoming('announcement', frame.body, frame);
    if (body === undefined) return undefined;
    const announcement: Announcement<Body> = { id: frame.id, ts: frame.ts, from: frame.from, body: body as Body };
    if (frame.group !== undefined) announcement.group = frame.group;
    return announcement;
  }
}
