/**
 * Where locks live in etcd. Each lock key is a directory of queue entries, one per holder or
 * waiter; the entry with the lowest create revision holds the lock and the others wait in
 * create-revision order (etcd's own mutex recipe). An entry's value is its request's token (see
 * `entry.ts`).
 *
 * Two layouts (`EtcdBackendOptions.layout`):
 *
 * - **`etcd-recipe`** (the default) is the layout of etcd's recipe (Go's `concurrency.Mutex`,
 *   which `etcdctl lock NAME` runs): lock `k` is the directory `<namespace>k/`, the key used as
 *   it is (UTF-8, no escaping), and an entry is named after the lease it lives under, in hex:
 *   `k/<lease hex>`. A second entry of one lease for one key (two holdings or waits of one name
 *   in one process, under the same session) gets a slot number: `k/<lease hex>-1`, `-2`, …;
 *   slots are reserved per session until their entry is gone, so no two requests share a name.
 *   Go's waiters wait for every key under `k/` with a lower create revision, so they see ours.
 *
 *   A `/` in a key: etcd's recipe has no escaping, so the directory of `a` (`a/`) also covers the
 *   entries of `a/b` (`a/b/…`), and Go's mutex on `a` waits for earlier holders of `a/b` too. This
 *   backend does not: an entry belongs to a lock only when nothing but its name follows the
 *   directory (`a/<id>`, no further `/`), and every read of a queue skips the entries of nested
 *   keys. So in distlock `a` and `a/b` are independent locks, as on every other backend, while on
 *   one name distlock and Go exclude each other both ways (Go may wait longer than it must, never
 *   too little).
 *
 * - **`distlock-v1`**, the layout of distlock 0.1: `<namespace><percent-encoded k>/<lease
 *   decimal>-<slot>`. Keys are percent-encoded (`encodeURIComponent`) so that they contain no `/`,
 *   and since the encoding works code point by code point, `encode(prefix)` is a prefix of
 *   `encode(key)` for `list`.
 *
 * Entry names are reused (slot 0 almost always): a fresh name per acquire would grow etcd's key
 * index, which a range over the directory walks, until the next compaction.
 */
import type { IKeyValue } from 'etcd3';
import { InvalidArgumentError } from '../../core/errors.js';
import type { EtcdKeyLayout } from './options.js';

/** A lone UTF-16 surrogate: not encodable, and UTF-8 would turn it into U+FFFD (a collision). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function wellFormed(value: string, option: string): string {
  if (LONE_SURROGATE.test(value)) {
    throw new InvalidArgumentError(option, 'must be well-formed Unicode (no lone surrogates)');
  }
  return value;
}

/** The etcd key layout under one namespace. */
export interface KeyLayout {
  /** The directory holding every queue entry of `key` (ends with `/`). */
  lockDir(key: string): string;
  /** The name of the entry of a session's lease `leaseId` (decimal) in `slot` of `dir`. */
  entry(dir: string, leaseId: string, slot: number): string;
  /** True when `name` (a key under `dir`) is an entry of `dir`'s own lock, not of a nested key. */
  isOwnEntry(dir: string, name: string): boolean;
  /** The lock key an entry belongs to, or `undefined` for a key that is no lock entry. */
  lockKeyOf(name: string, kv: IKeyValue): string | undefined;
  /** The etcd key prefix covering every lock whose key starts with `prefix`. */
  listPrefix(prefix: string): string;
  /** A key no lock uses, for an idle watcher. */
  anchor(): string;
}

/** The layout `layout` under `namespace`. */
export function keyLayout(layout: EtcdKeyLayout, namespace: string): KeyLayout {
  return layout === 'distlock-v1' ? new LegacyLayout(namespace) : new RecipeLayout(namespace);
}

/** An entry name's last part: a lease in hex, then `-<slot>` from slot 1 on. */
const RECIPE_ENTRY_ID = /^([0-9a-f]+)(?:-[1-9][0-9]*)?$/;

/** etcd's recipe: `<namespace><key>/<lease hex>[-<slot>]`. */
class RecipeLayout implements KeyLayout {
  readonly #namespace: string;
  /** The hex form of the last lease seen (one session, almost always). */
  #hex: { readonly decimal: string; readonly hex: string } | undefined;

  constructor(namespace: string) {
    this.#namespace = namespace;
  }

  lockDir(key: string): string {
    return `${this.#namespace}${wellFormed(key, 'key')}/`;
  }

  entry(dir: string, leaseId: string, slot: number): string {
    let known = this.#hex;
    if (known?.decimal !== leaseId) {
      this.#hex = known = { decimal: leaseId, hex: BigInt(leaseId).toString(16) };
    }
    return slot === 0 ? `${dir}${known.hex}` : `${dir}${known.hex}-${slot}`;
  }

  isOwnEntry(dir: string, name: string): boolean {
    return name.startsWith(dir) && name.indexOf('/', dir.length) === -1;
  }

  lockKeyOf(name: string, kv: IKeyValue): string | undefined {
    if (!name.startsWith(this.#namespace)) return undefined;
    const slash = name.lastIndexOf('/');
    if (slash <= this.#namespace.length) return undefined;
    // Only entries named after the lease they live under: other keys under a prefix are not locks.
    const hex = RECIPE_ENTRY_ID.exec(name.slice(slash + 1))?.[1];
    if (hex === undefined || kv.lease === '0' || BigInt(kv.lease).toString(16) !== hex) {
      return undefined;
    }
    return name.slice(this.#namespace.length, slash);
  }

  listPrefix(prefix: string): string {
    return `${this.#namespace}${wellFormed(prefix, 'prefix')}`;
  }

  anchor(): string {
    // No lock's entry: entry names end in a lease's hex digits.
    return `${this.#namespace}\u0000distlock-watch-anchor`;
  }
}

function encode(value: string, option: string): string {
  return encodeURIComponent(wellFormed(value, option));
}

/** distlock 0.1: `<namespace><encoded key>/<lease decimal>-<slot>`. */
class LegacyLayout implements KeyLayout {
  readonly #namespace: string;

  constructor(namespace: string) {
    this.#namespace = namespace;
  }

  lockDir(key: string): string {
    return `${this.#namespace}${encode(key, 'key')}/`;
  }

  entry(dir: string, leaseId: string, slot: number): string {
    return `${dir}${leaseId}-${slot}`;
  }

  isOwnEntry(dir: string, name: string): boolean {
    // Encoded keys hold no `/`: nothing nests.
    return name.startsWith(dir);
  }

  lockKeyOf(name: string): string | undefined {
    if (!name.startsWith(this.#namespace)) return undefined;
    const rest = name.slice(this.#namespace.length);
    const slash = rest.indexOf('/');
    if (slash <= 0 || rest.indexOf('/', slash + 1) !== -1) return undefined;
    try {
      return decodeURIComponent(rest.slice(0, slash));
    } catch {
      return undefined;
    }
  }

  listPrefix(prefix: string): string {
    return `${this.#namespace}${encode(prefix, 'prefix')}`;
  }

  anchor(): string {
    // Every lock's entries have more characters.
    return this.#namespace;
  }
}

/** The end of etcd's range `[prefix, end)` that holds exactly the keys starting with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i -= 1) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  // All 0xff (or empty): the range runs to the end of the keyspace.
  return Buffer.from([0]);
}
