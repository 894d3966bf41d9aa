/**
 * The memory backend as a lock server, so that the fault suite's worker processes can share one
 * `MemoryStore` (the memory backend is in-process by design) and the suite can pause it and put
 * its fault proxy in front of it. It serves the backend contract's one-shot calls as JSON lines
 * over TCP (`remote-backend.ts` is the client) and prints `listening <port>` once ready.
 *
 * Argument: the port (0 or absent: any free port).
 */
import { createServer } from 'node:net';
import { memoryBackend } from '../../src/backends/memory/index.js';
import { LockError } from '../../src/core/errors.js';
import { decodeRequest, encodeResult, type Reply } from './remote-protocol.js';

const backend = memoryBackend();

const server = createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  let buffer = '';
  socket.on('data', (chunk) => {
    buffer += chunk.toString();
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      void answer(line).then((reply) => {
        if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
      });
    }
  });
});

async function answer(line: string): Promise<Reply> {
  const request = decodeRequest(line);
  try {
    switch (request.op) {
      case 'tryAcquire':
        return { id: request.id, ok: encodeResult(await backend.tryAcquire(request.request)) };
      case 'extend':
        return { id: request.id, ok: await backend.extend(request.lease, request.ttlMs) };
      case 'release':
        return { id: request.id, ok: await backend.release(request.lease) };
      case 'inspect':
        return { id: request.id, ok: encodeResult(await backend.inspect(request.key)) };
    }
  } catch (error) {
    const code = error instanceof LockError ? error.code : 'BACKEND';
    return { id: request.id, error: { code, message: String((error as Error)?.message) } };
  }
}

server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
});
