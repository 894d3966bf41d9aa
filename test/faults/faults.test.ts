/**
 * The fault suite's bounded subset, inside `npm test`: on every backend of the table in
 * `setups.ts`, two worker processes, both modes side by side on the same short schedule — a
 * holder killed, a holder paused between its read and its write past its TTL, and one server or
 * network fault where the backend has a server. It proves both halves of the claim on every
 * backend: without fences the record loses updates under a pause (the suite can fail), with the
 * guards it loses none and counts the stale accesses it refused; and in both modes the lock never
 * granted a lease while another was valid, and a killed holder's lock came back within TTL + the
 * stated margin. `npm run faults` runs every fault kind, several times, with a report.
 *
 * The record lives in a directory for half the backends and in a separate redis-server for the
 * other half, so that both guards run here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../harness/redis.js';
import type { FaultKind } from './faults.js';
import { runFaults, type RunOptions } from './run.js';
import { SETUPS } from './setups.js';

/** The one server or network fault each backend gets here: the first of these that applies. */
const EXTRA: readonly FaultKind[] = ['leader-restart', 'server-restart', 'net-stall-down'];

let recordServer: RedisServer;
beforeAll(async () => {
  recordServer = await startRedis();
});
afterAll(async () => {
  await recordServer?.stop();
});

describe('fault suite (subset)', () => {
  Object.entries(SETUPS).forEach(([name, setup], index) => {
    const extra = EXTRA.find((kind) => setup.faults.includes(kind));
    const schedule: FaultKind[] = ['holder-kill', ...(extra ? [extra] : []), 'holder-pause'];

    it(`${name}: unfenced loses updates under a pause, fenced loses none (${schedule.join(', ')})`, async () => {
      const run = (fenced: boolean) =>
        runFaults({
          setup,
          fenced,
          schedule,
          workers: 2,
          quietMs: 500,
          record: index % 2 === 0 ? { kind: 'file' } : { kind: 'redis', url: recordServer.url },
        } satisfies RunOptions);
      const [unfenced, fenced] = await Promise.all([run(false), run(true)]);

      for (const { check, missed } of [unfenced, fenced]) {
        expect(missed, 'faults that found no target').toEqual([]);
        for (const kind of schedule) expect(check.faults[kind], kind).toBeGreaterThanOrEqual(1);
        expect(check.exclusionExamples, 'double grants').toEqual([]);
        expect(check.worstKillRecoveryMs, 'a killed holder kept the lock').toBeLessThanOrEqual(
          (setup.ttlMs ?? 1_000) + (setup.livenessMarginMs ?? 1_000),
        );
        expect(check.operations).toBeGreaterThan(10);
      }
      // Unfenced: the paused holder's write, based on an old read, overwrote newer ones.
      expect(unfenced.check.lostUpdates).toBeGreaterThanOrEqual(1);
      expect(unfenced.check.staleRefused).toEqual({ reads: 0, writes: 0 });
      // Fenced: nothing lost, the record kept fence order, and the stale holder was refused.
      expect(fenced.check.lostExamples).toEqual([]);
      expect(fenced.check.fenceOrderViolations, 'fences out of order in the record').toBe(0);
      expect(fenced.check.violations, 'violations').toBe(0);
      expect(fenced.check.staleRefused.reads + fenced.check.staleRefused.writes).toBeGreaterThan(0);
      // Every acknowledged write is there; a write cut short by the kill may be too.
      expect(fenced.final.length).toBeGreaterThanOrEqual(fenced.check.writesAcknowledged);
      expect(fenced.final.length).toBeLessThanOrEqual(
        fenced.check.writesAcknowledged + fenced.check.writesIndeterminate,
      );
    }, 120_000);
  });
});
