/**
 * A first-in, first-out queue with O(1) push and shift. `Array.prototype.shift` moves every element; this keeps a
 * head index instead and compacts in bulk: when the queue empties, or once more than half the array (and at least
 * COMPACT_AT slots) is behind the head. Taken slots are cleared at once, so a queue never pins what it handed out.
 */
const COMPACT_AT = 1024;

export class Fifo<T> {
  #items: T[] = [];
  #head = 0;

  /** Entries waiting. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** The oldest entry, without taking it; undefined when empty. */
  peek(): T | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  /** Take the oldest entry; undefined when empty. */
  shift(): T | undefined {
    const items = this.#items;
    if (this.#head >= items.length) return undefined;
    const item = items[this.#head]!;
    items[this.#head++] = undefined as T;
    if (this.#head === items.length) {
      items.length = 0;
      this.#head = 0;
    } else if (this.#head >= COMPACT_AT && this.#head * 2 >= items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** The entries waiting, oldest first, as a new array; the queue is unchanged. */
  toArray(): T[] {
    return this.#items.slice(this.#head);
  }

  /** Keep only the entries `keep` accepts, in order; returns the others, in order. */
  filter(keep: (item: T) => boolean): T[] {
    const kept: T[] = [];
    const removed: T[] = [];
    for (let i = this.#head; i < this.#items.length; i++) {
      const item = this.#items[i]!;
      (keep(item) ? kept : removed).push(item);
    }
    this.#items = kept;
    this.#head = 0;
    return removed;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i]!;
  }
}
