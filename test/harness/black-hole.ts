/**
 * A black-holed address on loopback: a TCP port whose connects never complete, as with a host
 * that is down behind a firewall that drops packets (rather than refusing them).
 *
 * A child process listens with a backlog of 1 and then blocks its event loop, so it accepts
 * nothing; filler connections take the few places in the kernel's accept queue, and every later
 * SYN to the port is dropped (the client's connect hangs, retransmitting, until its own timeout).
 * Nothing leaves the machine.
 */
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { killAndWait } from './process.js';

const LISTENER = `
const net = require('node:net');
const server = net.createServer();
server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  process.stdout.write(server.address().port + '\\n', () => {
    // Block the event loop for good: from now on nothing is accepted.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  });
});
`;

/** A black hole: connects to `127.0.0.1:port` hang until `close()`. */
export interface BlackHole {
  readonly port: number;
  close(): Promise<void>;
}

export async function startBlackHole(): Promise<BlackHole> {
  const child = spawn(process.execPath, ['-e', LISTENER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once('exit', (code) => reject(new Error(`the black hole exited (${code})`)));
  });
  // The child blocks right after writing its port; give it a moment to get there.
  await new Promise((resolve) => setTimeout(resolve, 100));
  // Fill the accept queue until a connect no longer completes (node reads a backlog of 0 as
  // "the default", so the queue holds a couple).
  const fillers: Socket[] = [];
  for (;;) {
    const socket = connect(port, '127.0.0.1');
    fillers.push(socket);
    const connected = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 300);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (!connected) break;
    if (fillers.length > 16) throw new Error('the black hole keeps accepting connections');
  }
  return {
    port,
    async close() {
      for (const socket of fillers) socket.destroy();
      await killAndWait(child);
    },
  };
}
