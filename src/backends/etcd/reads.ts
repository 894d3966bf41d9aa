/**
 * Reading a lock's queue: its holder, its whole queue, and the entries just ahead of a waiter's.
 *
 * Every read keeps only the lock's own entries (see `keys.ts`: under etcd's recipe layout a
 * directory also holds the entries of nested keys, `a/` those of `a/b`). The common reads are
 * limited (the holder alone, the three newest entries); when a limited read finds entries of a
 * nested key among too few of its own, it reads the whole directory instead, which only a
 * directory with nested locks in use ever costs.
 */
import type { IKeyValue, IRangeResponse } from 'etcd3';
import type { CallOptions, EtcdCalls, RunOptions } from './calls.js';
import type { DirKeysCache } from './dir-keys.js';
import { readEntry } from './entry.js';
import type { KeyLayout } from './keys.js';
import { holdersOf } from './shared-turn.js';
import { AHEAD_READ } from './turn.js';

/** A waiter's view of its queue: its own entry and the own entries just ahead, newest first. */
export interface AheadView {
  /** Our entry, if it (still) exists. */
  readonly own: IKeyValue | undefined;
  /** At most {@link AHEAD_READ} entries ahead of ours, nearest first. */
  readonly ahead: readonly IKeyValue[];
  /** The store revision the view was read at. */
  readonly revision: bigint;
}

/**
 * A shared waiter's view of its queue: its own entry and every own entry ahead of it, oldest
 * first, with values (a shared entry's turn depends on the kinds of all of them).
 */
export interface QueueView {
  /** Our entry, if it (still) exists. */
  readonly own: IKeyValue | undefined;
  /** Every own entry created before ours, oldest first. */
  readonly ahead: readonly IKeyValue[];
  /** The store revision the view was read at. */
  readonly revision: bigint;
}

/** Reads of lock queues for one backend. */
export class QueueReads {
  readonly #calls: EtcdCalls;
  readonly #dirs: DirKeysCache;
  readonly #layout: KeyLayout;

  constructor(calls: EtcdCalls, dirs: DirKeysCache, layout: KeyLayout) {
    this.#calls = calls;
    this.#dirs = dirs;
    this.#layout = layout;
  }

  /** True when `kv` is an entry of `dir`'s own lock. */
  isOwn(dir: string, kv: IKeyValue): boolean {
    return this.#layout.isOwnEntry(dir, this.#dirs.name(kv.key));
  }

  /**
   * The entries that hold the lock now (see `holdersOf`), with values; none when it is free.
   * One limited read when the oldest entry is an exclusive one of the lock (a mutex, a writer);
   * the whole queue otherwise.
   */
  async holders(dir: string, what: string, signal?: AbortSignal): Promise<IKeyValue[]> {
    const keys = this.#dirs.get(dir);
    const response = await this.#read(what, (o) => this.#calls.client.kv.range(keys.oldest, o), {
      signal,
    });
    const first = response.kvs[0];
    if (!first) return [];
    if (this.isOwn(dir, first) && readEntry(first).mode === 'exclusive') return [first];
    return holdersOf(await this.queue(dir, what, signal));
  }

  /** Every own entry of `dir`, holder first, with values. */
  async queue(dir: string, what: string, signal?: AbortSignal): Promise<IKeyValue[]> {
    const keys = this.#dirs.get(dir);
    const response = await this.#read(what, (o) => this.#calls.client.kv.range(keys.all, o), {
      signal,
    });
    return response.kvs.filter((kv) => this.isOwn(dir, kv));
  }

  /**
   * The view of a waiter from a range of the newest entries (keys only, newest first) read at
   * `max_create_revision` = `revision`, or `undefined` when that range was cut short by entries
   * of nested keys (read with {@link QueueReads.ahead} then). `complete`: the range had no limit.
   */
  viewFrom(
    dir: string,
    revision: string,
    range: IRangeResponse,
    complete = false,
  ): AheadView | undefined {
    const own = range.kvs[0]?.create_revision === revision ? range.kvs[0] : undefined;
    const ahead: IKeyValue[] = [];
    let nested = false;
    for (const kv of own ? range.kvs.slice(1) : range.kvs) {
      if (BigInt(kv.create_revision) >= BigInt(revision)) continue;
      if (this.isOwn(dir, kv)) ahead.push(kv);
      else nested = true;
    }
    // A limited read that hit its limit may have left own entries out in favour of nested ones.
    if (nested && !complete && ahead.length < AHEAD_READ && range.kvs.length >= 3) return undefined;
    return { own, ahead: ahead.slice(0, AHEAD_READ), revision: BigInt(range.header.revision) };
  }

  /**
   * Our entry (created at `revision`) and the own entries just before it.
   *
   * A serializable read (served by whichever member we reach, without a quorum round) is safe
   * here: any state that holds our entry also holds every older entry that still exists now,
   * because entries older than ours can only be deleted, never created. So "no predecessor" in a
   * possibly stale state that holds our entry means no predecessor now.
   */
  async ahead(
    dir: string,
    revision: string,
    options: RunOptions<IRangeResponse> & { serializable?: boolean },
  ): Promise<AheadView> {
    const keys = this.#dirs.get(dir);
    const serializable = options.serializable ?? true;
    const limited = await this.#read(
      'acquire (waiting)',
      (o) =>
        this.#calls.client.kv.range(
          { ...keys.newestThree, max_create_revision: revision, serializable },
          o,
        ),
      options,
    );
    const view = this.viewFrom(dir, revision, limited);
    if (view) return view;
    const whole = await this.#read(
      'acquire (waiting)',
      (o) =>
        this.#calls.client.kv.range(
          { ...keys.newestThree, limit: 0, max_create_revision: revision, serializable },
          o,
        ),
      options,
    );
    return this.viewFrom(dir, revision, whole, true)!;
  }

  /**
   * A shared waiter's view from a range of the whole directory (`DirKeys.all`), our entry being
   * the one created at `revision`.
   */
  queueViewFrom(dir: string, revision: string, range: IRangeResponse): QueueView {
    const mine = BigInt(revision);
    let own: IKeyValue | undefined;
    const ahead: IKeyValue[] = [];
    for (const kv of range.kvs) {
      const created = BigInt(kv.create_revision);
      if (created === mine) own = kv;
      else if (created < mine && this.isOwn(dir, kv)) ahead.push(kv);
    }
    return { own, ahead, revision: BigInt(range.header.revision) };
  }

  /**
   * Our entry (created at `revision`) and every own entry before it. Serializable by default,
   * for the reason given at {@link QueueReads.ahead}: a stale state that holds our entry can only
   * show more entries ahead than there are now, which makes a waiter wait, never hold too early.
   */
  async queueView(
    dir: string,
    revision: string,
    options: RunOptions<IRangeResponse> & { serializable?: boolean },
  ): Promise<QueueView> {
    const keys = this.#dirs.get(dir);
    const serializable = options.serializable ?? true;
    const response = await this.#read(
      'acquire (waiting)',
      (o) =>
        this.#calls.client.kv.range(
          { ...keys.all, max_create_revision: revision, serializable },
          o,
        ),
      options,
    );
    return this.queueViewFrom(dir, revision, response);
  }

  #read(
    what: string,
    call: (callOptions: CallOptions) => Promise<IRangeResponse>,
    options: RunOptions<IRangeResponse>,
  ): Promise<IRangeResponse> {
    return this.#calls.run(what, call, options);
  }
}
