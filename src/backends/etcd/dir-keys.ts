/**
 * The etcd keys and request parts of each lock directory, built once while the lock is in use:
 * building Buffers and request objects per call is a measurable share of an acquire's CPU.
 * (`etcd3` passes request objects through to the encoder unchanged, so sharing them is safe.)
 */
import type { Etcd3, IRangeRequest } from 'etcd3';
import { prefixEnd } from './keys.js';

/** The cached requests of one lock directory. */
export interface DirKeys {
  readonly raw: Buffer;
  readonly end: Buffer;
  /**
   * Compare: the directory has no entries. A compare over a whole range holds when it holds for
   * every key in it, and an empty range compares as revision 0.
   */
  readonly isEmpty: {
    readonly key: Buffer;
    readonly range_end: Buffer;
    readonly target: 'Create';
    readonly result: 'Equal';
    readonly create_revision: number;
  };
  /** The oldest entry (lowest create revision) with its value, and the range's count. */
  readonly oldest: IRangeRequest;
  /** Every entry, oldest (lowest create revision) first, with values. */
  readonly all: IRangeRequest;
  /**
   * The three newest entries (highest create revisions), keys only: with a `max_create_revision`
   * of ours, our entry, our predecessor and the entry before it.
   */
  readonly newestThree: IRangeRequest;
  /** The last entry name built here (a session's slot 0, almost always) and its raw key. */
  lastEntry: { readonly name: string; readonly raw: Buffer } | undefined;
}

/** How many lock directories keep their {@link DirKeys}. */
const DIR_CACHE_SIZE = 256;

/** {@link DirKeys} by directory (bounded: the oldest directory makes room), and key conversions. */
export class DirKeysCache {
  readonly #client: Etcd3;
  readonly #dirs = new Map<string, DirKeys>();

  constructor(client: Etcd3) {
    this.#client = client;
  }

  get(dir: string): DirKeys {
    const known = this.#dirs.get(dir);
    if (known) return known;
    if (this.#dirs.size >= DIR_CACHE_SIZE) this.#dirs.delete(this.#dirs.keys().next().value!);
    const raw = this.raw(dir);
    const end = prefixEnd(raw);
    const keys: DirKeys = {
      raw,
      end,
      isEmpty: { key: raw, range_end: end, target: 'Create', result: 'Equal', create_revision: 0 },
      oldest: { key: raw, range_end: end, limit: 1, sort_target: 'Create', sort_order: 'Ascend' },
      all: { key: raw, range_end: end, sort_target: 'Create', sort_order: 'Ascend' },
      newestThree: {
        key: raw,
        range_end: end,
        limit: 3,
        sort_target: 'Create',
        sort_order: 'Descend',
        keys_only: true,
      },
      lastEntry: undefined,
    };
    this.#dirs.set(dir, keys);
    return keys;
  }

  /** The raw key of entry `name` of `dir` (the last one built is reused). */
  entryRaw(dir: string, name: string): Buffer {
    const keys = this.get(dir);
    let last = keys.lastEntry;
    if (last?.name !== name) keys.lastEntry = last = { name, raw: this.raw(name) };
    return last.raw;
  }

  /** Our key as etcd stores it (under the client's namespace, if it has one). */
  raw(key: string): Buffer {
    const prefix = this.#client.prefix;
    return prefix.length === 0 ? Buffer.from(key) : Buffer.concat([prefix, Buffer.from(key)]);
  }

  /** An etcd key back in our terms. */
  name(raw: Buffer): string {
    return raw.subarray(this.#client.prefix.length).toString();
  }
}
