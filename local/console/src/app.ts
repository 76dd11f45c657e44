/**
 * The page's shared state: the latest `GET /_admin/api/state`, the emulator's time as of now (its clock may run
 * ahead of the browser's), refreshes coalesced so a burst of events costs one request, and the header's status.
 */
import type { StateView } from '../../src/admin/types.js';
import { api } from './api.js';
import { byId } from './dom.js';

/** What the header's status pill says. */
export type LinkState = 'connecting' | 'live' | 'paused' | 'down';

const LINK_TEXT: Record<LinkState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  paused: 'Paused',
  down: 'Emulator unreachable',
};

export class App {
  state: StateView | undefined;
  #fetchedAt = 0;
  #listeners = new Set<(state: StateView) => void>();
  #running: Promise<void> | undefined;
  #again = false;
  #soon: number | undefined;
  #link: LinkState = 'connecting';
  #paused = false;

  /** The emulator's time now: its clock when last read, plus the time passed since. */
  now(): number {
    return this.state ? this.state.clock.now + (performance.now() - this.#fetchedAt) : Date.now();
  }

  /** Calls `listener` with every new state. */
  onState(listener: (state: StateView) => void): void {
    this.#listeners.add(listener);
  }

  /** Reads the state now; concurrent calls share one request (and one more after it, if any came meanwhile). */
  refresh(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#load().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        void this.refresh();
      }
    });
    return this.#running;
  }

  /** Reads the state shortly: events come in bursts, one read follows them all. */
  refreshSoon(delayMs = 300): void {
    if (this.#soon !== undefined) return;
    this.#soon = window.setTimeout(() => {
      this.#soon = undefined;
      void this.refresh();
    }, delayMs);
  }

  /** The event stream's state; shown unless the log is paused. */
  setLink(state: LinkState): void {
    this.#link = state;
    this.#showLink();
  }

  setPaused(paused: boolean): void {
    this.#paused = paused;
    this.#showLink();
  }

  #showLink(): void {
    const pill = byId('stream-status', HTMLElement);
    const state = this.#paused && this.#link === 'live' ? 'paused' : this.#link;
    if (pill.dataset.state === state) return;
    pill.dataset.state = state;
    pill.textContent = LINK_TEXT[state];
  }

  async #load(): Promise<void> {
    try {
      const state = await api.get<StateView>('/state');
      this.state = state;
      this.#fetchedAt = performance.now();
      for (const listener of this.#listeners) listener(state);
    } catch {
      this.setLink('down');
    }
  }
}
