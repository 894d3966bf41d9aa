/**
 * Where locks live in etcd. Each lock key is a directory of queue entries, one per waiter or
 * holder: `<namespace><encoded key>/<lease id>-<slot>`, whose value is the request's token. The
 * entry with the lowest create revision holds the lock; the others wait in create-revision order
 * (etcd's own mutex recipe).
 *
 * Keys are percent-encoded (`encodeURIComponent`) so that they contain no `/`: the lock `a`
 * (`a/…`) never shares a directory with the lock `a/b` (`a%2Fb/…`), and since the encoding works
 * code point by code point, `encode(prefix)` is a prefix of `encode(key)` for `list`.
 */
import { InvalidArgumentError } from '../../core/errors.js';

function encode(value: string, option: string): string {
  try {
    return encodeURIComponent(value);
  } catch (error) {
    // Only a lone UTF-16 surrogate cannot be encoded.
    throw new InvalidArgumentError(option, 'must be well-formed Unicode (no lone surrogates)', {
      cause: error,
    });
  }
}

/** The etcd key layout under one namespace. */
export class KeyLayout {
  readonly #namespace: string;

  constructor(namespace: string) {
    this.#namespace = namespace;
  }

  /** The directory holding every queue entry of `key` (ends with `/`). */
  lockDir(key: string): string {
    return `${this.#namespace}${encode(key, 'key')}/`;
  }

  /**
   * The name of a queue entry: the session's lease ID (as in etcd's recipe) and a slot number,
   * so that concurrent requests of one session for one key get distinct entries. Names are
   * reused (slot 0 almost always): a fresh name per acquire would grow etcd's key index, which a
   * range over the directory walks, until the next compaction.
   */
  entry(dir: string, leaseId: string, slot: number): string {
    return `${dir}${leaseId}-${slot}`;
  }

  /** A key no lock uses (every lock's entries have more characters), for an idle watcher. */
  anchor(): string {
    return this.#namespace;
  }

  /** The etcd key prefix covering every lock whose key starts with `prefix`. */
  listPrefix(prefix: string): string {
    return `${this.#namespace}${encode(prefix, 'prefix')}`;
  }

  /** The lock key an entry belongs to, or `undefined` for a key of another layout. */
  lockKeyOf(etcdKey: string): string | undefined {
    if (!etcdKey.startsWith(this.#namespace)) return undefined;
    const rest = etcdKey.slice(this.#namespace.length);
    const slash = rest.indexOf('/');
    if (slash <= 0 || rest.indexOf('/', slash + 1) !== -1) return undefined;
    try {
      return decodeURIComponent(rest.slice(0, slash));
    } catch {
      return undefined;
    }
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
