import { createLocks } from './src/index.js';
import { postgresBackend } from './src/backends/postgres/index.js';
import { startPostgres } from './test/harness/postgres.js';
const server = await startPostgres();
const clients = Array.from({ length: 8 }, () => createLocks({ backend: postgresBackend({ url: server.url }) }));
const key = 'b2';
let ops = 0; const waits: number[] = [];
const until = Date.now() + 4000;
await Promise.all(clients.map(async (c) => {
  while (Date.now() < until) {
    const t = performance.now();
    const l = await c.acquire(key, { waitMs: 30000 });
    waits.push(performance.now() - t);
    ops++;
    await new Promise((r) => setTimeout(r, 1));
    await l.release();
  }
}));
waits.sort((a, b) => a - b);
console.log('ops/s', ops / 4, 'p50', waits[waits.length >> 1].toFixed(1), 'p99', waits[Math.floor(waits.length * 0.99)].toFixed(1));
console.log((globalThis as any).__dbg);

await Promise.all(clients.map((c) => c.close()));
await server.stop();
