/**
 * A fix for a leak in dynalite 4 on abstract-level 3: dynalite reads every Query and Scan through a Readable
 * over a level iterator, and releases the iterator in the stream's `destroy` by calling `iterator.return()`, a
 * method of async generators that level iterators do not have (theirs is `close()`). So no iterator was ever
 * closed: each stayed attached to its database (which holds its open resources in a set), ~800 bytes of heap
 * per Query or Scan, plus LevelDB's native iterator with the on-disk store. The soak (bench/soak.ts) found it as
 * emulator heap growing with traffic: 11,000 live iterators after a few minutes of 500 clients.
 *
 * Giving level's iterators that `return()` makes dynalite's own cleanup work: a Readable is destroyed when it
 * ends (autoDestroy) or fails, so every iterator is closed.
 */
import { createRequire } from 'node:module';

interface Closable {
  close(): Promise<void>;
}

let installed = false;

/** Installs the fix once per process (idempotent; a later dynalite or level that has `return` is left alone). */
export function closeDynaliteIterators(): void {
  if (installed) return;
  installed = true;
  // dynalite's own copy of abstract-level: the one whose iterators it creates.
  const fromDynalite = createRequire(createRequire(import.meta.url).resolve('dynalite'));
  const level = fromDynalite('abstract-level') as Record<
    string,
    { prototype: Partial<Closable & { return(): unknown }> }
  >;
  for (const name of ['AbstractIterator', 'AbstractKeyIterator', 'AbstractValueIterator']) {
    const prototype = level[name]?.prototype;
    if (prototype && typeof prototype.return !== 'function') {
      Object.defineProperty(prototype, 'return', {
        value(this: Closable) {
          return this.close();
        },
        configurable: true,
        writable: true,
      });
    }
  }
}
