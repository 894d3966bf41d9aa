/**
 * Worker thread of `PostgresLedger.freezeUntilFenceAbove`: polls an account's fence in PostgreSQL
 * and sets the shared cell (waking the frozen thread) once a higher fence has used it. Plain
 * JavaScript: a worker thread does not inherit the tsx loader of the demo's processes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { workerData } from 'node:worker_threads';
import pg from 'pg';

/** @type {{ url: string, table: string, accountId: string, fence: string, cell: Int32Array }} */
const { url, table, accountId, fence, cell } = workerData;

const client = new pg.Client({ connectionString: url });
client.on('error', () => undefined);
try {
  await client.connect();
  for (;;) {
    const { rows } = await client.query(
      `SELECT fence > $2::bigint AS above FROM ${pg.escapeIdentifier(table)} WHERE id = $1`,
      [accountId, fence],
    );
    if (rows[0]?.above) break;
    await sleep(20);
  }
} finally {
  Atomics.store(cell, 0, 1);
  Atomics.notify(cell, 0);
  await client.end().catch(() => undefined);
}
