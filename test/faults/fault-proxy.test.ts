/** The fault proxy's faults, against an echo server on loopback. */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from './fault-proxy.js';

let echo: Server;
let echoPort: number;
beforeAll(async () => {
  echo = createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((resolve) => echo.close(() => resolve())));

/** A client of `proxy` that collects what comes back and tells when it closed. */
async function client(proxy: FaultProxy) {
  const socket: Socket = connect(proxy.port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  let received = '';
  let closed = false;
  socket.on('data', (chunk) => (received += chunk.toString()));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  return { socket, received: () => received, closed: () => closed };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function roundTrip(proxy: FaultProxy, text: string, timeoutMs = 10_000): Promise<number> {
  const c = await client(proxy);
  const started = Date.now();
  c.socket.write(text);
  while (c.received() !== text && Date.now() - started < timeoutMs) await sleep(5);
  c.socket.destroy();
  expect(c.received()).toBe(text);
  return Date.now() - started;
}

describe('FaultProxy', () => {
  it('forwards, adds latency each way, and heals', async () => {
    const proxy = await FaultProxy.start(echoPort);
    try {
      await roundTrip(proxy, 'hello');
      proxy.latencyMs = 100;
      expect(await roundTrip(proxy, 'slow')).toBeGreaterThanOrEqual(190);
      proxy.heal();
      expect(proxy.latencyMs).toBe(0);
      await roundTrip(proxy, 'fast'); // (no upper bound on time: this machine is shared)
    } finally {
      await proxy.close();
    }
  });

  it('a one-way stall holds bytes and delivers them when it heals, the connection intact', async () => {
    const proxy = await FaultProxy.start(echoPort);
    try {
      const c = await client(proxy);
      proxy.stall('down');
      c.socket.write('held');
      await sleep(150);
      expect(c.received()).toBe('');
      proxy.heal();
      await sleep(100);
      expect(c.received()).toBe('held');
      expect(c.closed()).toBe(false);
      c.socket.destroy();
    } finally {
      await proxy.close();
    }
  });

  it('a black hole lets nothing through, new connections included, and resets them when it heals', async () => {
    const proxy = await FaultProxy.start(echoPort);
    try {
      const before = await client(proxy);
      proxy.blackhole();
      const during = await client(proxy);
      before.socket.write('a');
      during.socket.write('b');
      await sleep(150);
      expect(before.received() + during.received()).toBe('');
      proxy.heal();
      await sleep(100);
      expect(before.closed() && during.closed()).toBe(true);
      await roundTrip(proxy, 'after');
    } finally {
      await proxy.close();
    }
  });

  it('drop resets open connections; new ones work', async () => {
    const proxy = await FaultProxy.start(echoPort);
    try {
      const c = await client(proxy);
      proxy.drop();
      await sleep(50);
      expect(c.closed()).toBe(true);
      await roundTrip(proxy, 'again');
    } finally {
      await proxy.close();
    }
  });
});
