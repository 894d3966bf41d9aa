/**
 * `npm run faults`: the fault suite on every backend of the table in `setups.ts`, both modes on
 * the same schedule, with a report (markdown) on stdout. Exits non-zero when a backend misses the
 * issue's "done when" (see `report.ts`).
 *
 * How it works (one run = one backend × one mode, `run.ts`): the backend's servers start
 * (`setups.ts`; the memory backend is served to the workers by `memory-server.ts`), and N worker
 * processes (`worker.ts`) loop on one lock: acquire → read the record → work 5–25 ms → append a
 * unique element and write the record → release. The record lives in a separate store the suite
 * never faults (`record.ts`: a redis-server or a directory, through the `distlock/fence` guards;
 * unfenced workers pass fence 0, which checks nothing). Every worker reaches every server through
 * its own TCP fault proxy (`fault-proxy.ts`, `links.ts`). The injector (`injector.ts`) runs the
 * schedule — each fault kind that applies to the backend (`faults.ts`), `--repeat` times, in a
 * seeded order — with a quiet TTL between faults. Workers report every step with monotonic
 * timestamps (`history.ts`); the checker (`checker.ts`) reads that history and the final record.
 *
 * Options: `--backends memory,files,redis,etcd` (default: all), `--modes unfenced,fenced`,
 * `--repeat 2` (each kind that applies, this many times per mode), `--seed 1`, `--workers 4`,
 * `--record redis|file` (where the record lives; default redis), `--json FILE` (every result and
 * the histories), `--markdown FILE` (the report).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { report, shortfalls, type BackendOutcome } from './report.js';
import { runFaults, type RunResult } from './run.js';
import { schedule } from './schedule.js';
import { SETUPS } from './setups.js';

const { values } = parseArgs({
  options: {
    backends: { type: 'string', default: Object.keys(SETUPS).join(',') },
    modes: { type: 'string', default: 'unfenced,fenced' },
    repeat: { type: 'string', default: '2' },
    seed: { type: 'string', default: '1' },
    workers: { type: 'string', default: '4' },
    record: { type: 'string', default: 'redis' },
    json: { type: 'string' },
    markdown: { type: 'string' },
  },
});

const backends = values.backends.split(',').filter(Boolean);
for (const name of backends) {
  if (!(name in SETUPS))
    throw new Error(`unknown backend ${name}; known: ${Object.keys(SETUPS).join(', ')}`);
}
const modes = values.modes.split(',').filter((m) => m === 'unfenced' || m === 'fenced');
const repeat = Number(values.repeat);
const seed = Number(values.seed);

let recordServer: RedisServer | undefined;
if (values.record === 'redis') recordServer = await startRedis();
const outcomes: BackendOutcome[] = [];
const results: Record<string, RunResult> = {};
try {
  for (const name of backends) {
    const setup = SETUPS[name]!;
    const faults = schedule(setup.faults, repeat, seed);
    const outcome: { -readonly [K in keyof BackendOutcome]: BackendOutcome[K] } = {
      backend: name,
      kinds: setup.faults,
    };
    for (const mode of modes) {
      console.error(`${name}, ${mode}: ${faults.length} faults`);
      const result = await runFaults({
        setup,
        fenced: mode === 'fenced',
        schedule: faults,
        workers: Number(values.workers),
        record: recordServer ? { kind: 'redis', url: recordServer.url } : { kind: 'file' },
        log: (line) => console.error(line),
      });
      results[`${name}/${mode}`] = result;
      outcome[mode as 'fenced' | 'unfenced'] = { ...result.check, durationMs: result.durationMs };
      console.error(
        `  ${(result.durationMs / 1000).toFixed(1)} s, ${result.check.violations} violations`,
      );
    }
    outcomes.push(outcome);
  }
} finally {
  await recordServer?.stop();
}

const command = `npm run faults -- ${process.argv.slice(2).join(' ')}`.trim();
const text = report(outcomes, command);
console.log(text);
if (values.markdown) writeFileSync(values.markdown, text);
if (values.json) {
  const replacer = (_key: string, value: unknown) =>
    typeof value === 'bigint' ? String(value) : value;
  writeFileSync(values.json, JSON.stringify({ command, outcomes, results }, replacer));
}
process.exitCode = outcomes.some((o) => shortfalls(o).length > 0) ? 1 : 0;
