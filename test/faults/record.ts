/**
 * The record the workers update under the lock: a list of unique elements, each appended by one
 * read-modify-write, kept in a store separate from the lock's (a Redis server the suite never
 * faults, or a directory), through the fence guards of `distlock/fence`. Unfenced workers access
 * it with fence 0, which every access passes while nobody uses a real fence: no check, the way a
 * naive service writes, with each single read or write still atomic.
 *
 * An element is `<slot>.<gen>.<seq>:<fence>`: unique per write, with the fence it was written
 * under, so that the final list shows which writes survived and in what fence order.
 */
import { Redis } from 'ioredis';
import { fileFence, redisFence } from '../../src/fence/index.js';

/** Where the record lives. */
export type RecordConfig =
  | { readonly kind: 'redis'; readonly url: string; readonly key: string }
  | { readonly kind: 'file'; readonly path: string };

/** A worker's handle on the record. */
export interface RecordStore {
  /** The elements, checking and recording `fence`. */
  read(fence: bigint): Promise<string[]>;
  /** Replace the elements, checking and recording `fence`. */
  write(elements: readonly string[], fence: bigint): Promise<void>;
  /** The elements now, without a fence (for the final check). */
  peek(): Promise<string[]>;
  close(): Promise<void>;
}

/** The fence unfenced workers pass: every access passes it while no real fence was seen. */
export const NO_FENCE = 0n;

export function openRecord(config: RecordConfig): RecordStore {
  const parse = (text: string | null) => (text === null ? [] : (JSON.parse(text) as string[]));
  if (config.kind === 'file') {
    const guard = fileFence(config.path, { fsync: false });
    return {
      read: async (fence) => parse(await guard.read(fence)),
      write: (elements, fence) => guard.write(JSON.stringify(elements), fence),
      peek: async () => parse(await guard.peek()),
      close: async () => undefined,
    };
  }
  // The record's server is never faulted: fail fast rather than queue if it ever is unreachable.
  const client = new Redis(config.url, { maxRetriesPerRequest: 2 });
  const guard = redisFence(client, config.key);
  return {
    read: async (fence) => parse(await guard.read(fence)),
    write: (elements, fence) => guard.write(JSON.stringify(elements), fence),
    peek: async () => parse(await guard.peek()),
    close: async () => {
      client.disconnect();
    },
  };
}

/** The fence an element was written under. */
export function fenceOf(element: string): bigint {
  return BigInt(element.slice(element.lastIndexOf(':') + 1));
}
