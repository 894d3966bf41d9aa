/**
 * On PostgreSQL: the floor (two `SELECT 1` round trips, the least any lock that acquires and
 * releases in one statement each must pay), the npm `advisory-lock` package (a new connection
 * per lock, `pg_advisory_lock` on it; waiting is PostgreSQL's own lock queue), and the counter B2's
 * critical sections update (a row read and written back on a connection of its own).
 */
import advisoryLockModule from 'advisory-lock';
import pg from 'pg';
import type { CounterFactory } from '../scenarios/counter.js';
import type { Contender, LockClient } from './contender.js';

// A CommonJS module with `exports.default`: under Node's ESM the function is its `default`.
const createMutex = advisoryLockModule.default;

/** A client with its own connection to `url`. */
export async function connectPostgres(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Two `SELECT 1`s per "acquire + release" (prepared once): the round-trip floor. */
export function selectOnePairs(url: string): Contender {
  const statement = { name: 'bench_select_1', text: 'SELECT 1', rowMode: 'array' as const };
  return {
    name: 'SELECT 1 pairs',
    role: 'floor',
    excludes: false,
    tuned: false,
    settings: 'SELECT 1 + SELECT 1 (2 round trips, no lock, prepared)',
    async createClient(): Promise<LockClient<true>> {
      const client = await connectPostgres(url);
      return {
        async acquire() {
          await client.query(statement);
          return true;
        },
        async release() {
          await client.query(statement);
        },
        close: () => client.end(),
      };
    },
  };
}

/**
 * Two one-row `UPDATE`s per "acquire + release" (prepared once), on a table of their own: what
 * any lock whose state lives in a table must at least pay (two write transactions), to tell the
 * cost of writing apart from the cost of the lock's own logic.
 */
export function updatePairs(url: string): Contender {
  const statement = {
    name: 'bench_update_pair',
    text: 'UPDATE bench_update_floor SET value = value + 1 WHERE key = $1',
    rowMode: 'array' as const,
  };
  return {
    name: 'UPDATE pairs',
    role: 'floor',
    excludes: false,
    tuned: false,
    settings: 'UPDATE one row + UPDATE one row (2 write transactions, no lock, prepared)',
    async createClient(): Promise<LockClient<string>> {
      const client = await connectPostgres(url);
      await client.query(
        'CREATE TABLE IF NOT EXISTS bench_update_floor (key text PRIMARY KEY, value bigint NOT NULL) WITH (fillfactor = 50)',
      );
      const known = new Set<string>();
      return {
        async acquire(key) {
          if (!known.has(key)) {
            known.add(key);
            await client.query(
              'INSERT INTO bench_update_floor (key, value) VALUES ($1, 0) ON CONFLICT (key) DO NOTHING',
              [key],
            );
          }
          await client.query({ ...statement, values: [key] });
          return key;
        },
        async release(key) {
          await client.query({ ...statement, values: [key] });
        },
        close: () => client.end(),
      };
    },
  };
}

/**
 * `advisory-lock`'s mutex: `lock()` opens a connection, blocks in `pg_advisory_lock`, and the
 * unlock function unlocks and closes that connection. It never gives up, and has no settings.
 */
export function advisoryLock(url: string): Contender {
  return {
    name: 'advisory-lock',
    role: 'peer',
    excludes: true,
    tuned: false,
    settings: 'lock(): a new connection + pg_advisory_lock; unlock + end (no settings)',
    async createClient(): Promise<LockClient<() => Promise<void>>> {
      const mutexes = createMutex(url);
      const byKey = new Map<string, ReturnType<typeof mutexes>>();
      return {
        async acquire(key) {
          let mutex = byKey.get(key);
          if (!mutex) byKey.set(key, (mutex = mutexes(key)));
          return mutex.lock();
        },
        async release(unlock) {
          await unlock();
        },
        async close() {
          // Nothing of its own stays open: every lock closed its connection.
        },
      };
    },
  };
}

/** A counter in PostgreSQL: a row read and written back (two statements) on its own connection. */
export function postgresCounter(url: string): CounterFactory {
  return async (key) => {
    const client = await connectPostgres(url);
    await client.query(
      'CREATE TABLE IF NOT EXISTS bench_counter (key text PRIMARY KEY, value bigint NOT NULL)',
    );
    await client.query(
      'INSERT INTO bench_counter (key, value) VALUES ($1, 0) ON CONFLICT (key) DO NOTHING',
      [key],
    );
    return {
      get: async () =>
        Number(
          (
            await client.query<{ value: string }>({
              name: 'bench_counter_get',
              text: 'SELECT value FROM bench_counter WHERE key = $1',
              values: [key],
            })
          ).rows[0]?.value ?? 0,
        ),
      set: async (value) => {
        await client.query({
          name: 'bench_counter_set',
          text: 'UPDATE bench_counter SET value = $2 WHERE key = $1',
          values: [key, value],
        });
      },
      close: () => client.end(),
    };
  };
}
