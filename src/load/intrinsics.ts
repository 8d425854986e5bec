/**
 * The built-in prototypes and globals the host relies on, snapshotted before the first plugin runs, and checked and
 * repaired around plugin code. Inline plugins share the host's realm (DESIGN.md §8), so without this
 * `Object.prototype.polluted = 1` made every later swap fail (`Getter must be a function`, from the bundle's
 * `__export` iterating the polluted key), a replaced `JSON.parse` survived into every later version and into the
 * admin protocol, and `Object.prototype.then` made every `return obj` of an async function hang: reloads and shutdown
 * (issue 11). A realm per version was measured as the alternative; see docs/guide.md, "What a version leaves behind".
 *
 * The rule, per guarded object:
 * - changing or deleting an existing property, changing the prototype, or freezing/sealing it is pollution;
 * - adding any property to `Object.prototype`, or a `then` anywhere, is pollution;
 * - adding an enumerable property to any other guarded object is pollution (it shows in every `for…in`);
 * - adding a non-enumerable property elsewhere (how a polyfill installs a missing method) is tolerated and kept.
 * Replacing one of the pinned globals (`JSON`, `Object`, `Promise`, …) is pollution; new globals are the plugin's.
 */
import { EventEmitter } from 'node:events';

/** One difference from the snapshot. */
export interface Pollution {
  /** e.g. `Object.prototype.polluted`, `globalThis.JSON`, `Array.prototype [[Prototype]]`. */
  where: string;
  kind: 'added' | 'changed' | 'deleted' | 'prototype' | 'extensibility';
  /** False when the repair failed (a frozen object, a non-configurable property). */
  repaired: boolean;
}

interface Snapshot {
  name: string;
  target: object;
  proto: object | null;
  extensible: boolean;
  descs: Map<string | symbol, PropertyDescriptor>;
  /** Only the pinned keys are compared (globalThis), instead of every own key. */
  pinned: boolean;
}

const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
const IteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())) as object;
const AsyncFunctionPrototype = Object.getPrototypeOf(async () => {}) as object;

/** The objects whose own properties are guarded. */
function guardedObjects(): Array<[string, object]> {
  return [
    ['Object.prototype', Object.prototype],
    ['Function.prototype', Function.prototype],
    ['AsyncFunction.prototype', AsyncFunctionPrototype],
    ['Array.prototype', Array.prototype],
    ['String.prototype', String.prototype],
    ['Number.prototype', Number.prototype],
    ['Boolean.prototype', Boolean.prototype],
    ['Symbol.prototype', Symbol.prototype],
    ['BigInt.prototype', BigInt.prototype],
    ['Promise.prototype', Promise.prototype],
    ['Error.prototype', Error.prototype],
    ['RegExp.prototype', RegExp.prototype],
    ['Date.prototype', Date.prototype],
    ['Map.prototype', Map.prototype],
    ['Set.prototype', Set.prototype],
    ['WeakMap.prototype', WeakMap.prototype],
    ['WeakSet.prototype', WeakSet.prototype],
    ['Iterator.prototype', IteratorPrototype],
    ['ArrayBuffer.prototype', ArrayBuffer.prototype],
    ['TypedArray.prototype', TypedArrayPrototype],
    ['Uint8Array.prototype', Uint8Array.prototype],
    ['Buffer.prototype', Buffer.prototype],
    ['EventEmitter.prototype', EventEmitter.prototype],
    ['Object', Object],
    ['Array', Array],
    ['Promise', Promise],
    ['JSON', JSON],
    ['Math', Math],
    ['Reflect', Reflect],
  ];
}

/** Globals whose replacement is pollution. */
const PINNED_GLOBALS = [
  'Object', 'Function', 'Array', 'String', 'Number', 'Boolean', 'Symbol', 'BigInt', 'Promise', 'Error', 'TypeError',
  'RangeError', 'SyntaxError', 'RegExp', 'Date', 'Map', 'Set', 'WeakMap', 'WeakSet', 'WeakRef', 'Proxy', 'Reflect',
  'JSON', 'Math', 'ArrayBuffer', 'Uint8Array', 'DataView', 'Buffer', 'TextEncoder', 'TextDecoder', 'URL',
  'AbortController', 'AbortSignal', 'structuredClone', 'queueMicrotask', 'setTimeout', 'setInterval', 'setImmediate',
  'clearTimeout', 'clearInterval', 'clearImmediate', 'process', 'parseInt', 'parseFloat', 'isNaN', 'isFinite',
  'encodeURIComponent', 'decodeURIComponent', 'globalThis',
];

/** Snapshots taken once, then compared. */
export class IntrinsicsGuard {
  #snapshots: Snapshot[] | undefined;

  /** Take the snapshot, if not taken yet: before the first plugin module is evaluated. */
  arm(): void {
    if (this.#snapshots) return;
    // Node defines some globals (URL, TextEncoder, structuredClone, …) as getters that turn into data properties on
    // first read: read them all first, so the host's first use of one is not taken for a plugin's change.
    for (const k of PINNED_GLOBALS) Reflect.get(globalThis, k);
    this.#snapshots = [
      ...guardedObjects().map(([name, target]) => snapshot(name, target, Reflect.ownKeys(target), false)),
      snapshot('globalThis', globalThis, PINNED_GLOBALS.filter((k) => Object.hasOwn(globalThis, k)), true),
    ];
  }

  get armed(): boolean {
    return this.#snapshots !== undefined;
  }

  /** Differences from the snapshot, without repairing them. */
  check(): Pollution[] {
    return this.#compare(false);
  }

  /** Find every difference and undo it. Returns what was found (empty: clean). Never throws. */
  repair(): Pollution[] {
    return this.#compare(true);
  }

  #compare(fix: boolean): Pollution[] {
    const found: Pollution[] = [];
    for (const s of this.#snapshots ?? []) compareOne(s, fix, found);
    return found;
  }
}

/** The host's one guard: intrinsics are process-wide. */
export const intrinsics = new IntrinsicsGuard();

/** A short description for an error message. */
export function describePollution(found: Pollution[]): string {
  const parts = found.slice(0, 5).map((p) => `${p.where} ${p.kind}${p.repaired ? '' : ' (could not repair)'}`);
  return parts.join(', ') + (found.length > 5 ? `, and ${found.length - 5} more` : '');
}

function snapshot(name: string, target: object, keys: Array<string | symbol>, pinned: boolean): Snapshot {
  const descs = new Map<string | symbol, PropertyDescriptor>();
  for (const k of keys) descs.set(k, Reflect.getOwnPropertyDescriptor(target, k)!);
  return { name, target, proto: Reflect.getPrototypeOf(target), extensible: Reflect.isExtensible(target), descs, pinned };
}

function compareOne(s: Snapshot, fix: boolean, found: Pollution[]): void {
  const { target, name } = s;
  const note = (where: string, kind: Pollution['kind'], repair: () => boolean) =>
    found.push({ where, kind, repaired: fix ? attempt(repair) : false });
  if (Reflect.getPrototypeOf(target) !== s.proto) {
    note(`${name} [[Prototype]]`, 'prototype', () => Reflect.setPrototypeOf(target, s.proto));
  }
  if (Reflect.isExtensible(target) !== s.extensible) note(`${name} [[Extensible]]`, 'extensibility', () => false);
  for (const [key, was] of s.descs) {
    const now = Reflect.getOwnPropertyDescriptor(target, key);
    if (now && sameDescriptor(was, now)) continue;
    note(`${name}.${String(key)}`, now ? 'changed' : 'deleted', () => Reflect.defineProperty(target, key, was));
  }
  if (s.pinned) return;
  for (const key of Reflect.ownKeys(target)) {
    if (s.descs.has(key)) continue;
    const d = Reflect.getOwnPropertyDescriptor(target, key)!;
    const polluting = target === Object.prototype || key === 'then' || d.enumerable === true;
    if (polluting) note(`${name}.${String(key)}`, 'added', () => Reflect.deleteProperty(target, key));
  }
}

function sameDescriptor(a: PropertyDescriptor, b: PropertyDescriptor): boolean {
  return (
    a.value === b.value &&
    a.get === b.get &&
    a.set === b.set &&
    a.writable === b.writable &&
    a.enumerable === b.enumerable &&
    a.configurable === b.configurable
  );
}

function attempt(fn: () => boolean): boolean {
  try {
    return fn();
  } catch {
    return false;
  }
}
