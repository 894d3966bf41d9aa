/**
 * The lease table and the PL/pgSQL function that runs every lock operation, as SQL generated for a
 * configurable (quoted) schema and table name.
 *
 * One row per key holds the whole state of the key: its holders (token, fence, expiry, and for
 * session-mode holders the advisory lock that ties them to a connection) and its FIFO queue of
 * waiters (token, mode, requested TTL, heartbeat deadline), as arrays of composite types. Every
 * operation is one call of `<table>_call(...)`, one statement and one round trip, which locks the
 * key's row (`SELECT … FOR UPDATE`, inserting it first if absent), drops dead holders and waiters,
 * applies the operation, hands the key to the longest grantable prefix of the queue, and writes the
 * row back. Row locks serialise every operation on a key; PL/pgSQL runs each statement on a fresh
 * snapshot (READ COMMITTED), so the function always sees the latest committed row.
 *
 * Times: every expiry is `clock_timestamp()` plus a TTL, the database's clock, never the client's;
 * replies carry the database's time so that the client can place the database's instants on its own
 * clock by differences only (see queued-acquire.ts).
 *
 * Fences: `nextval` of one sequence, called only while the key's row is locked. Grants of a key
 * are serialised by that lock (a row deleted once free is re-inserted only after the delete
 * commits, the unique index sees to that), so each grant's fence is greater than every fence issued
 * before it for the key, across releases, expiries, and server restarts (a sequence never goes
 * back, even after a crash). The state stays bounded: one sequence, and rows only for keys held or
 * awaited (free rows are swept after a while).
 *
 * The rules of who may hold beside whom are `core/kinds.ts`'s, in SQL: an exclusive holder alone;
 * shared holders up to the key's limit (0 stands for "no limit": readers); nobody passes a live
 * waiter; one limit per key.
 *
 * Handoff: a grant to a waiter `pg_notify`s the table's channel with `<fence> <grant ms> <token>`;
 * each backend's one `LISTEN` connection routes it to the waiting request by its token.
 */

/** Where the lock state lives, already validated (see options.ts). */
export interface TableNames {
  readonly schema: string;
  readonly table: string;
}

/**
 * The advisory-lock namespace of session-mode beacons (the first key of the two-`int4` form):
 * `pg_advisory_lock(SESSION_LOCK_SPACE, <beacon>)`. The ASCII of "dlks".
 */
export const SESSION_LOCK_SPACE = 0x646c6b73;

/** A quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A quoted SQL string literal. */
function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** Qualified, quoted names of every object of the lease table. */
export interface SchemaObjects {
  readonly schema: string;
  readonly table: string;
  readonly sequence: string;
  readonly holderType: string;
  readonly waiterType: string;
  readonly alive: string;
  readonly call: string;
  /** The channel that grants are notified on (the table's name, unquoted). */
  readonly channel: string;
  /** The table's name as `to_regclass` reads it. */
  readonly tableText: string;
  /** The call function's signature as `to_regprocedure` reads it. */
  readonly callSignature: string;
  /** A short hash of the names, telling prepared statements of different tables apart. */
  readonly id: string;
}

export function schemaObjects(names: TableNames): SchemaObjects {
  const schema = quoteIdent(names.schema);
  const qualified = (suffix: string) => `${schema}.${quoteIdent(`${names.table}${suffix}`)}`;
  const call = qualified('_call');
  return {
    schema,
    table: qualified(''),
    sequence: qualified('_fence'),
    holderType: qualified('_holder'),
    waiterType: qualified('_waiter'),
    alive: qualified('_alive'),
    call,
    channel: names.table,
    tableText: qualified(''),
    callSignature: `${call}(text,text,text,integer,"char",integer,integer,integer)`,
    id: hashOf(call),
  };
}

/** A short stable hash of a text (FNV-1a). */
function hashOf(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}

/**
 * The DDL that creates everything, idempotent, in one transaction: the schema, the composite
 * types, the sequence, the table and the functions. A transaction-scoped advisory lock keeps two
 * clients migrating at once from tripping over each other's `CREATE`.
 */
export function migrationSql(names: TableNames): string {
  const o = schemaObjects(names);
  const typeName = (suffix: string) => quoteLiteral(`${names.table}${suffix}`);
  const createType = (suffix: string, body: string, qualified: string) => `
DO $do$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                 WHERE n.nspname = ${quoteLiteral(names.schema)} AND t.typname = ${typeName(suffix)}) THEN
    CREATE TYPE ${qualified} AS (${body});
  END IF;
END $do$;`;
  return `BEGIN;
SELECT pg_advisory_xact_lock(${SESSION_LOCK_SPACE}, hashtext(${quoteLiteral(o.table)}));
CREATE SCHEMA IF NOT EXISTS ${o.schema};
${createType('_holder', 'token text, fence bigint, expires_at timestamptz, beacon integer', o.holderType)}
${createType('_waiter', 'token text, mode "char", ttl_ms integer, until timestamptz', o.waiterType)}
CREATE SEQUENCE IF NOT EXISTS ${o.sequence};
CREATE TABLE IF NOT EXISTS ${o.table} (
  key text PRIMARY KEY,
  mode "char",
  shared_limit integer,
  holders ${o.holderType}[] NOT NULL DEFAULT '{}',
  waiters ${o.waiterType}[] NOT NULL DEFAULT '{}',
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
) WITH (fillfactor = 50);
COMMENT ON TABLE ${o.table} IS 'distlock leases: one row per key held or awaited (holders and FIFO waiters); see the distlock/postgres docs';
${aliveFunctionSql(o)}
${callFunctionSql(o)}
COMMIT;`;
}

/**
 * Whether a holder still holds: its TTL has not run out and, for a session-mode holder, the
 * advisory lock of its connection (its beacon) is still held, i.e. the connection is alive.
 */
function aliveFunctionSql(o: SchemaObjects): string {
  return `CREATE OR REPLACE FUNCTION ${o.alive}(h ${o.holderType}, n timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
  SELECT h.expires_at > n AND (h.beacon IS NULL OR EXISTS (
    SELECT 1 FROM pg_catalog.pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
      AND l.classid = ${SESSION_LOCK_SPACE}::oid AND l.objid = h.beacon::oid
      AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())))
$fn$;`;
}

/**
 * The one function every operation calls. Arguments: the operation, the key, the token, the TTL
 * (ms), the mode (`x`/`s`), the shared limit (0: no limit), the queue-entry TTL (ms; 0: do not
 * queue), and `p_session` (1: tie a direct grant to this connection with an advisory lock; for
 * `release`/`leave`, give that lock back).
 *
 * Returns one row `(code, fence, value, now_ms)`, `now_ms` being the database's clock:
 * - acquire: 1 granted (`fence`, `value` = expiry ms), 0 busy (`value` = ms until the soonest
 *   holder in the way expires), 2 queued (same `value`), -2 limit mismatch (`value` = the key's limit);
 * - poll (a queued waiter's heartbeat): 1 granted, 2 still queued, -1 not queued (entry expired);
 * - claim (session mode, after a handoff): 1 tied to this connection, -1 not held;
 * - extend / release: 1 done, 0 nobody holds the key (expired), -1 another token holds it;
 * - leave (a waiter gives up; a grant that raced it is released): 1 left, 0 nothing of it was there;
 * - force: 1 holders removed, 0 none.
 */
function callFunctionSql(o: SchemaObjects): string {
  return `CREATE OR REPLACE FUNCTION ${o.call}(
  p_op text, p_key text, p_token text, p_ttl_ms integer, p_mode "char", p_limit integer,
  p_queue_ms integer, p_session integer)
RETURNS TABLE (code integer, fence bigint, value bigint, now_ms bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  r ${o.table}%ROWTYPE;
  n timestamptz := clock_timestamp();
  hs ${o.holderType}[] := '{}';
  ws ${o.waiterType}[] := '{}';
  h ${o.holderType};
  w ${o.waiterType};
  held "char";
  lim integer;
  soonest timestamptz;
  changed boolean := false;
  found_at integer;
  c integer := 0;
  f bigint;
  g bigint;
  v bigint;
  beacon integer;
BEGIN
  LOOP
    SELECT * INTO r FROM ${o.table} t WHERE t.key = p_key FOR UPDATE;
    EXIT WHEN FOUND;
    IF p_op <> 'acquire' THEN
      RETURN QUERY SELECT CASE WHEN p_op IN ('poll', 'claim') THEN -1 ELSE 0 END, NULL::bigint,
        NULL::bigint, (extract(epoch FROM n) * 1000)::bigint;
      RETURN;
    END IF;
    INSERT INTO ${o.table} AS t (key, updated_at) VALUES (p_key, n) ON CONFLICT (key) DO NOTHING;
  END LOOP;

  -- The live part of the state: holders whose TTL (and connection) last, waiters that heartbeat.
  FOREACH h IN ARRAY r.holders LOOP
    IF ${o.alive}(h, n) THEN hs := hs || h; ELSE changed := true; END IF;
  END LOOP;
  FOREACH w IN ARRAY r.waiters LOOP
    IF w.until > n THEN ws := ws || w; ELSE changed := true; END IF;
  END LOOP;
  held := CASE WHEN cardinality(hs) > 0 THEN r.mode END;
  lim := r.shared_limit;

  IF p_op = 'acquire' THEN
    found_at := (SELECT i FROM generate_subscripts(hs, 1) i WHERE (hs[i]).token = p_token);
    IF found_at IS NOT NULL THEN
      -- Already granted (a retried request): the same answer again.
      c := 1; f := (hs[found_at]).fence;
      v := (extract(epoch FROM (hs[found_at]).expires_at) * 1000)::bigint;
    ELSE
      found_at := (SELECT i FROM generate_subscripts(ws, 1) i WHERE (ws[i]).token = p_token);
      IF found_at IS NOT NULL THEN
        w := ws[found_at]; w.until := n + p_queue_ms * interval '1 millisecond'; ws[found_at] := w;
        changed := true; c := 2;
      ELSIF p_mode = 's' AND lim IS NOT NULL AND lim <> p_limit
            AND (held = 's' OR EXISTS (SELECT 1 FROM unnest(ws) x WHERE x.mode = 's')) THEN
        c := -2; v := lim;
      ELSIF cardinality(ws) = 0 AND (
              (p_mode = 'x' AND cardinality(hs) = 0)
           OR (p_mode = 's' AND (held IS NULL OR held = 's')
               AND (p_limit = 0 OR cardinality(hs) < p_limit))) THEN
        f := nextval(${quoteLiteral(o.sequence)});
        beacon := CASE WHEN p_session = 1 THEN (f & 2147483647)::integer END;
        IF beacon IS NOT NULL THEN PERFORM pg_advisory_lock(${SESSION_LOCK_SPACE}, beacon); END IF;
        hs := hs || ROW(p_token, f, n + p_ttl_ms * interval '1 millisecond', beacon)::${o.holderType};
        held := p_mode;
        IF p_mode = 's' THEN lim := p_limit; END IF;
        changed := true; c := 1;
        v := (extract(epoch FROM n + p_ttl_ms * interval '1 millisecond') * 1000)::bigint;
      ELSIF p_queue_ms > 0 THEN
        ws := ws || ROW(p_token, p_mode, p_ttl_ms, n + p_queue_ms * interval '1 millisecond')::${o.waiterType};
        IF p_mode = 's' THEN lim := p_limit; END IF;
        changed := true; c := 2;
      ELSE
        c := 0;
      END IF;
    END IF;
  ELSIF p_op = 'poll' THEN
    found_at := (SELECT i FROM generate_subscripts(ws, 1) i WHERE (ws[i]).token = p_token);
    IF found_at IS NOT NULL THEN
      w := ws[found_at]; w.until := n + p_queue_ms * interval '1 millisecond'; ws[found_at] := w;
      changed := true; c := 2;
    ELSIF NOT EXISTS (SELECT 1 FROM unnest(hs) x WHERE x.token = p_token) THEN
      c := -1;
    END IF;
  ELSIF p_op = 'claim' THEN
    found_at := (SELECT i FROM generate_subscripts(hs, 1) i WHERE (hs[i]).token = p_token);
    IF found_at IS NULL THEN
      c := -1;
    ELSE
      beacon := ((hs[found_at]).fence & 2147483647)::integer;
      PERFORM pg_advisory_lock(${SESSION_LOCK_SPACE}, beacon);
      h := hs[found_at]; h.beacon := beacon; hs[found_at] := h;
      changed := true; c := 1; f := (hs[found_at]).fence;
      v := (extract(epoch FROM (hs[found_at]).expires_at) * 1000)::bigint;
    END IF;
  ELSIF p_op = 'extend' THEN
    found_at := (SELECT i FROM generate_subscripts(hs, 1) i WHERE (hs[i]).token = p_token);
    IF found_at IS NOT NULL THEN
      h := hs[found_at]; h.expires_at := n + p_ttl_ms * interval '1 millisecond'; hs[found_at] := h;
      changed := true; c := 1;
    ELSE
      c := CASE WHEN cardinality(hs) = 0 THEN 0 ELSE -1 END;
    END IF;
  ELSIF p_op IN ('release', 'leave') THEN
    found_at := (SELECT i FROM generate_subscripts(hs, 1) i WHERE (hs[i]).token = p_token);
    IF found_at IS NOT NULL THEN
      IF p_session = 1 AND (hs[found_at]).beacon IS NOT NULL THEN
        PERFORM pg_advisory_unlock(${SESSION_LOCK_SPACE}, (hs[found_at]).beacon);
      END IF;
      hs := hs[:found_at - 1] || hs[found_at + 1:];
      changed := true; c := 1;
    ELSIF p_op = 'leave' THEN
      found_at := (SELECT i FROM generate_subscripts(ws, 1) i WHERE (ws[i]).token = p_token);
      IF found_at IS NOT NULL THEN
        ws := ws[:found_at - 1] || ws[found_at + 1:];
        changed := true; c := 1;
      END IF;
    ELSE
      c := CASE WHEN cardinality(hs) = 0 THEN 0 ELSE -1 END;
    END IF;
  ELSIF p_op = 'force' THEN
    IF cardinality(hs) > 0 THEN hs := '{}'; changed := true; c := 1; END IF;
  END IF;

  -- Hand the key to the longest prefix of the queue that can hold now, in order.
  IF cardinality(hs) = 0 THEN held := NULL; END IF;
  WHILE cardinality(ws) > 0 LOOP
    w := ws[1];
    EXIT WHEN NOT (
         (w.mode = 'x' AND cardinality(hs) = 0)
      OR (w.mode = 's' AND (held IS NULL OR held = 's') AND (coalesce(lim, 0) = 0 OR cardinality(hs) < lim)));
    g := nextval(${quoteLiteral(o.sequence)});
    hs := hs || ROW(w.token, g, n + w.ttl_ms * interval '1 millisecond', NULL)::${o.holderType};
    held := w.mode;
    ws := ws[2:];
    changed := true;
    PERFORM pg_notify(${quoteLiteral(o.channel)},
      g || ' ' || (extract(epoch FROM n) * 1000)::bigint || ' ' || w.token);
    IF w.token = p_token AND p_op = 'poll' THEN
      c := 1; f := g; v := (extract(epoch FROM n + w.ttl_ms * interval '1 millisecond') * 1000)::bigint;
    END IF;
  END LOOP;
  IF p_op = 'poll' AND c = 0 THEN
    -- Granted earlier (the notification may have been missed): the same answer again.
    found_at := (SELECT i FROM generate_subscripts(hs, 1) i WHERE (hs[i]).token = p_token);
    c := 1; f := (hs[found_at]).fence;
    v := (extract(epoch FROM (hs[found_at]).expires_at) * 1000)::bigint;
  END IF;
  IF c IN (0, 2) THEN
    soonest := (SELECT min(x.expires_at) FROM unnest(hs) x);
    v := CASE WHEN soonest IS NULL THEN NULL
              ELSE greatest(0, (extract(epoch FROM soonest - n) * 1000)::bigint) END;
  END IF;

  IF changed THEN
    IF NOT (held = 's' OR EXISTS (SELECT 1 FROM unnest(ws) x WHERE x.mode = 's')) THEN
      lim := NULL;
    END IF;
    UPDATE ${o.table} t SET holders = hs, waiters = ws, mode = held, shared_limit = lim, updated_at = n
    WHERE t.key = p_key;
  END IF;
  RETURN QUERY SELECT c, f, v, (extract(epoch FROM n) * 1000)::bigint;
END
$fn$;`;
}

/** The call function's parameters, typed: a statement that also uses them elsewhere must agree. */
const TYPED_PARAMETERS =
  '$1::text, $2::text, $3::text, $4::integer, $5::"char", $6::integer, $7::integer, $8::integer';

/**
 * The fast paths of lease mode's two most frequent calls, each still one statement: an exclusive
 * acquire of a key whose row exists and is empty (no holder, no waiter: it was released cleanly),
 * and the release of a key's only, exclusive, live holder with nobody waiting. Each is a plain
 * `UPDATE` of the key's row (no PL/pgSQL), and falls through to the call function in the same
 * statement when it matches no row (the key is new, held, awaited, shared or has dead entries to
 * clean up). The `UPDATE` locks the row and re-checks its condition on the latest version, so it
 * serialises with the call function as the function's own `FOR UPDATE` does; its fence is taken
 * under that lock (`nextval` in `SET`). Parameters are the call function's.
 */
export function fastAcquireSql(o: SchemaObjects): string {
  return `WITH fast AS (
  UPDATE ${o.table} t SET
    holders = ARRAY[ROW($3, nextval(${quoteLiteral(o.sequence)}), clock_timestamp() + $4::integer * interval '1 millisecond', NULL)::${o.holderType}],
    mode = 'x', shared_limit = NULL, updated_at = clock_timestamp()
  WHERE t.key = $2::text AND t.holders = '{}' AND t.waiters = '{}' AND $5::"char" = 'x'
  RETURNING (t.holders[1]).fence AS fence, (t.holders[1]).expires_at AS expires_at)
SELECT 1 AS code, fast.fence, (extract(epoch FROM fast.expires_at) * 1000)::bigint AS value,
  (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms
FROM fast
UNION ALL
SELECT * FROM ${o.call}(${TYPED_PARAMETERS}) WHERE NOT EXISTS (SELECT 1 FROM fast)`;
}

/** See {@link fastAcquireSql}: the release of the only, exclusive, live holder. */
export function fastReleaseSql(o: SchemaObjects): string {
  return `WITH fast AS (
  UPDATE ${o.table} t SET holders = '{}', mode = NULL, shared_limit = NULL, updated_at = clock_timestamp()
  WHERE t.key = $2::text AND t.waiters = '{}' AND cardinality(t.holders) = 1
    AND (t.holders[1]).token = $3::text AND (t.holders[1]).beacon IS NULL
    AND (t.holders[1]).expires_at > clock_timestamp()
  RETURNING 1)
SELECT 1 AS code, NULL::bigint AS fence, NULL::bigint AS value,
  (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms
FROM fast
UNION ALL
SELECT * FROM ${o.call}(${TYPED_PARAMETERS}) WHERE NOT EXISTS (SELECT 1 FROM fast)`;
}

/**
 * Deletes the rows of keys that nobody has held or awaited for `$1` milliseconds (released, or
 * whose holders and waiters all expired that long ago), so that the table holds only keys in use.
 * The `DELETE` locks each row and re-checks the condition on its latest version: a key taken
 * meanwhile is kept; a call waiting for a deleted row inserts it anew (see the fence argument).
 */
export function sweepSql(o: SchemaObjects): string {
  return `DELETE FROM ${o.table} t
WHERE t.updated_at < clock_timestamp() - $1 * interval '1 millisecond'
  AND NOT EXISTS (SELECT 1 FROM unnest(t.holders) h
                  WHERE h.expires_at > clock_timestamp() - $1 * interval '1 millisecond')
  AND NOT EXISTS (SELECT 1 FROM unnest(t.waiters) w
                  WHERE w.until > clock_timestamp() - $1 * interval '1 millisecond')`;
}
