/**
 * `npm run bench`: distlock against its peers and the floors on Redis (issue 4), etcd (issue 5),
 * PostgreSQL (issue 16) and Azure Blob Storage on Azurite (issue 17), on servers this process spawns on free loopback ports and always
 * kills again.
 *
 * It runs as JavaScript compiled by `tsc` (`tsconfig.bench.json` → `.bench-build/`), as users run
 * the library and as the peers ship: under `tsx`, every closure distlock creates also went through
 * esbuild's `__name` helper (an `Object.defineProperty` per closure), which only the TypeScript
 * rows paid for.
 *
 * @example
 * ```sh
 * npm run bench                         # everything, about 2.5 minutes
 * npm run bench -- --quick              # smoke test
 * npm run bench -- --only redis --duration 3s --json bench.json
 * ```
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { benchAzureBlob } from './azure-blob-suite.js';
import { benchEtcd } from './etcd-suite.js';
import { parseOptions, USAGE, type BenchOptions } from './options.js';
import { benchPostgres } from './postgres-suite.js';
import { benchRedis, KINDS_LIMIT } from './redis-suite.js';
import { benchRedlock } from './redlock-suite.js';
import { checkKindsTargets, mixedTable, readersTable, semaphoreTable } from './report-kinds.js';
import {
  checkTargets,
  contendedTable,
  manyKeysTable,
  targetsTable,
  uncontendedTable,
  type StoreResults,
} from './report.js';
import {
  startAzurite,
  startEtcd,
  startPostgres,
  startRedis,
  startRedlockNodes,
  stopAllServers,
  type RunningServer,
} from './servers.js';
import { renderMarkdown, renderText, type Table } from './table.js';

const log = (line: string) => process.stderr.write(`· ${line}\n`);
const show = (table: Table) => process.stdout.write(`\n${renderText(table)}\n`);

function machine(servers: readonly RunningServer[]) {
  return {
    cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}`,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    loadAverage: os.loadavg().map((value) => value.toFixed(2)),
    servers: Object.fromEntries(servers.map((server) => [server.name, server.version])),
  };
}

function allTables(results: readonly StoreResults[]): Table[] {
  return results.flatMap((result) => {
    const tables: Table[] = [];
    if (result.b1.length > 0) tables.push(uncontendedTable(result));
    if (result.b2.length > 0) tables.push(contendedTable(result));
    const b3 = manyKeysTable(result);
    if (b3) tables.push(b3);
    const { b4, b5, b6 } = result.kinds ?? {};
    if (b4) tables.push(readersTable(b4));
    if (b5) tables.push(mixedTable(b5));
    if (b6) tables.push(semaphoreTable(b6, KINDS_LIMIT));
    return tables;
  });
}

async function run(options: BenchOptions): Promise<number> {
  const startedAt = new Date();
  const starters = {
    redis: startRedis,
    etcd: startEtcd,
    postgres: startPostgres,
    'azure-blob': startAzurite,
    redlock: startRedlockNodes,
  };
  const servers = await Promise.all(options.stores.map((store) => starters[store]()));
  for (const server of servers)
    log(`${server.name} on 127.0.0.1:${server.port} (${server.version})`);
  const loadBefore = os.loadavg();
  const results: StoreResults[] = [];
  for (const server of servers) {
    if (server.name === 'redis') results.push(await benchRedis(server.port, options, show, log));
    else if (server.name === 'etcd') results.push(await benchEtcd(server.port, options, show, log));
    else if (server.name === 'azure-blob')
      results.push(await benchAzureBlob(server.url!, options, show, log));
    else if (server.name === 'redlock')
      results.push(await benchRedlock(server.ports ?? [server.port], options, show, log));
    else results.push(await benchPostgres(server.url!, options, show, log));
  }
  const targets = results.flatMap((result) => [
    ...(result.b1.length > 0 || result.b2.length > 0 ? checkTargets(result) : []),
    ...(result.kinds ? checkKindsTargets(result.kinds) : []),
  ]);
  show(targetsTable(targets));
  const about = {
    ...machine(servers),
    loadAverageBefore: loadBefore.map((value) => value.toFixed(2)),
  };
  process.stdout.write(
    `\nmachine: ${about.cpus}, ${about.memoryGiB} GiB, Node ${about.node}, ` +
      `${Object.values(about.servers).join(', ')}; load average ${about.loadAverage.join(' ')}\n`,
  );

  const broken = results.flatMap((result) => [
    ...result.b2.filter((row) => !row.correct),
    ...[...(result.kinds?.b4 ?? []), ...(result.kinds?.b5 ?? []), ...(result.kinds?.b6 ?? [])]
      .filter((row) => !row.correct)
      .map((row) => ({
        name: `${row.name} ${row.label}`,
        counter: row.counter,
        sections: row.writes,
        overlaps: row.violations,
      })),
  ]);
  if (options.jsonPath) {
    const json = JSON.stringify({ startedAt, options, machine: about, results, targets }, null, 2);
    writeFileSync(options.jsonPath, `${json}\n`);
    log(`wrote ${options.jsonPath}`);
  }
  if (options.markdownPath) {
    const tables = [...allTables(results), targetsTable(targets)].map(renderMarkdown).join('\n\n');
    const header =
      `Run of ${startedAt.toISOString()} (\`npm run bench -- ${process.argv.slice(2).join(' ')}\`): ` +
      `${about.cpus}, ${about.memoryGiB} GiB, Node ${about.node}, ` +
      `${Object.values(about.servers).join('; ')}; load average before ${about.loadAverageBefore.join(' ')}, ` +
      `after ${about.loadAverage.join(' ')}.`;
    writeFileSync(options.markdownPath, `${header}\n\n${tables}\n`);
    log(`wrote ${options.markdownPath}`);
  }
  for (const row of broken) {
    process.stderr.write(
      `\n*** FAIL: ${row.name} broke mutual exclusion (or a kind's rule): counter ${row.counter}, ` +
        `${row.sections} critical sections, ${row.overlaps} overlaps ***\n`,
    );
  }
  return broken.length > 0 ? 1 : 0;
}

async function main(): Promise<void> {
  let options: BenchOptions | 'help';
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping the servers`);
    void stopAllServers().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    process.exitCode = await run(options);
  } catch (error) {
    process.stderr.write(`\nbenchmark failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  } finally {
    await stopAllServers();
  }
  // Client libraries may keep sockets or timers alive after close (etcd3's gRPC channels).
  process.exit();
}

await main();
