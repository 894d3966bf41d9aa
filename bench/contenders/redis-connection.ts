import { Redis } from 'ioredis';

/** A fresh ioredis connection at its defaults, resolved once it answers. */
export async function connectRedis(port: number): Promise<Redis> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
  // Failures surface through the failing command; without a listener ioredis also logs them.
  client.on('error', () => undefined);
  await client.connect();
  await client.ping();
  return client;
}

/** Close a connection, tolerating one that is already gone. */
export async function closeRedis(client: Redis): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
