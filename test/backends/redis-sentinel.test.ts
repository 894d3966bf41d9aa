/**
 * The Redis backend through Redis Sentinel (one master, one replica, three Sentinels with quorum 2,
 * all spawned by the harness), reached by a `redis+sentinel://` URL, and `waitForReplicas`:
 * - a replica that does not acknowledge fails an acquire (which gives back what it took) and an
 *   extend, retryably;
 * - the master killed while a lease is held, taken while the replica's link to it was down for a
 *   second (so the grant reaches the replica only if the acquire waits for it): with `waitForReplicas: 1` no second client acquires
 *   the lock before the first one's lease ends (asserted); without it, whether the lock survived
 *   the failover is recorded, not asserted (the README's guarantees state what it showed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  redisBackend,
  type RedisBackend,
  type RedisBackendOptions,
} from '../../src/backends/redis/index.js';
import { BackendUnavailableError, InvalidArgumentError, LockError } from '../../src/core/errors.js';
import { killAndWait } from '../harness/process.js';
import { redisCli } from '../harness/redis.js';
import { startRedisSentinel, type RedisSentinelDeployment } from '../harness/redis-sentinel.js';

let keyCounter = 0;
const freshKey = (label: string) => `sentinel-test/${label}-${(keyCounter += 1)}`;
const backends: RedisBackend[] = [];

function backend(url: string, options: Partial<RedisBackendOptions> = {}): RedisBackend {
  const made = redisBackend({ url, commandTimeoutMs: 1_000, ...options });
  backends.push(made);
  return made;
}

afterAll(async () => {
  await Promise.allSettled(backends.map((b) => b.close()));
});

describe('redis through Sentinel: waitForReplicas', () => {
  let deployment: RedisSentinelDeployment;
  beforeAll(async () => {
    deployment = await startRedisSentinel();
  }, 60_000);
  afterAll(async () => {
    for (const child of deployment?.servers.values() ?? []) child.kill('SIGCONT');
    await deployment?.stop();
  });

  it('reaches the master by redis+sentinel:// and waits for the replica on acquire and extend', async () => {
    const locks = backend(deployment.url, { waitForReplicas: { replicas: 1 } });
    const key = freshKey('acked');
    const acquired = await locks.tryAcquire({ key, token: 'a', ttlMs: 5_000 });
    expect(acquired.acquired).toBe(true);
    expect(await locks.extend({ key, token: 'a' }, 5_000)).toEqual({ extended: true });
    const queued = await locks.acquire(
      { key: freshKey('queued'), token: 'q', ttlMs: 5_000 },
      { signal: new AbortController().signal },
    );
    expect(queued.acquired).toBe(true);
    // The grant is on the replica too.
    const master = await deployment.masterPort();
    const replica = [...deployment.servers.keys()].find((port) => port !== master)!;
    const keys = await redisCli(replica, ['keys', 'distlock:{sentinel-test/*']);
    expect(keys).toContain(key);
    expect(await locks.release({ key, token: 'a' })).toBe('released');
  });

  it('a replica that does not acknowledge fails acquire (giving the lock back) and extend, retryably', async () => {
    const locks = backend(deployment.url, {
      waitForReplicas: { replicas: 1, timeoutMs: 200 },
    });
    const plain = backend(deployment.url);
    const key = freshKey('unacked');
    const held = freshKey('held');
    expect((await locks.tryAcquire({ key: held, token: 'h', ttlMs: 10_000 })).acquired).toBe(true);
    const master = await deployment.masterPort();
    const replica = [...deployment.servers.entries()].find(([port]) => port !== master)![1];
    replica.kill('SIGSTOP');
    try {
      const error = await locks
        .tryAcquire({ key, token: 't', ttlMs: 10_000 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect((error as LockError).retryable).toBe(true);
      expect((error as Error).message).toMatch(/0 of 1 replicas/);
      expect(await plain.inspect(key)).toBeNull();
      const queued = await locks
        .acquire({ key, token: 'q', ttlMs: 10_000 }, { signal: AbortSignal.timeout(5_000) })
        .catch((e: unknown) => e);
      expect(queued).toBeInstanceOf(BackendUnavailableError);
      expect(await plain.inspect(key)).toBeNull();
      const extend = await locks.extend({ key: held, token: 'h' }, 10_000).catch((e: unknown) => e);
      expect(extend).toBeInstanceOf(BackendUnavailableError);
    } finally {
      replica.kill('SIGCONT');
    }
    expect(await plain.release({ key: held, token: 'h' })).toBe('released');
  });

  it('refuses bad waitForReplicas options naming them', () => {
    for (const waitForReplicas of [{ replicas: 0 }, { replicas: 1, timeoutMs: -1 }, 3]) {
      expect(() =>
        redisBackend({ url: 'redis://127.0.0.1:1', waitForReplicas: waitForReplicas as never }),
      ).toThrow(InvalidArgumentError);
    }
  });
});

/**
 * Take a lock on the master while the replica's link to it is cut (the replica is paused for a
 * second, then reconnects), kill the master as soon as the acquire returns, and let a second client try to take the lock
 * until well after the first one's lease ended. Returns when the second client got it, relative to
 * the end of the first one's lease (negative: while the first still held it).
 */
async function failoverWhileHeld(
  deployment: RedisSentinelDeployment,
  options: Partial<RedisBackendOptions>,
): Promise<{ acquired: boolean; secondGotItMsAfterLeaseEnd: number | undefined }> {
  const ttlMs = 8_000;
  const first = backend(deployment.url, options);
  const second = backend(deployment.url, { commandTimeoutMs: 500 });
  const key = freshKey('failover');
  // Both connected to the master before anything breaks.
  await second.inspect(key);
  await first.inspect(key);
  const master = await deployment.masterPort();
  const replica = [...deployment.servers.entries()].find(([port]) => port !== master)![1];
  // Pause the replica and cut its link, so that it cannot reconnect for a second: the grant
  // reaches it only if the acquire waits for it (WAIT), not if the master dies first.
  replica.kill('SIGSTOP');
  await redisCli(master, ['client', 'kill', 'type', 'replica']);
  const resumed = new Promise((resolve) => setTimeout(resolve, 1_000)).then(() =>
    replica.kill('SIGCONT'),
  );
  const startedAt = Date.now();
  const result = await first.tryAcquire({ key, token: 'first', ttlMs });
  if (result.acquired) await killAndWait(deployment.servers.get(master)!);
  await resumed;
  if (!result.acquired) return { acquired: false, secondGotItMsAfterLeaseEnd: undefined };
  const leaseEnd = startedAt + ttlMs;
  let gotAt: number | undefined;
  while (gotAt === undefined && Date.now() < leaseEnd + 25_000) {
    try {
      if ((await second.tryAcquire({ key, token: 'second', ttlMs })).acquired) gotAt = Date.now();
    } catch {
      // The master is down or being replaced: keep trying.
    }
    if (gotAt === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    acquired: true,
    secondGotItMsAfterLeaseEnd: gotAt === undefined ? undefined : gotAt - leaseEnd,
  };
}

describe('redis through Sentinel: the master killed while a lease is held', () => {
  it('with waitForReplicas: 1, no second client acquires before the first lease ends', async () => {
    const deployment = await startRedisSentinel();
    try {
      // Long enough for the replica to resume, reconnect and acknowledge.
      const outcome = await failoverWhileHeld(deployment, {
        waitForReplicas: { replicas: 1, timeoutMs: 5_000 },
      });
      expect(outcome.acquired, 'the first client got the lock (else the test says nothing)').toBe(
        true,
      );
      expect(outcome.secondGotItMsAfterLeaseEnd, 'the promoted replica never freed it').not.toBe(
        undefined,
      );
      expect(outcome.secondGotItMsAfterLeaseEnd!).toBeGreaterThanOrEqual(0);
    } finally {
      await deployment.stop();
    }
  }, 90_000);

  it('without waitForReplicas: records whether the lock survived the failover', async (context) => {
    const deployment = await startRedisSentinel();
    try {
      const outcome = await failoverWhileHeld(deployment, {});
      const verdict =
        outcome.secondGotItMsAfterLeaseEnd === undefined
          ? 'the second client never got the lock'
          : outcome.secondGotItMsAfterLeaseEnd < 0
            ? `LOST: a second client acquired it ${-outcome.secondGotItMsAfterLeaseEnd} ms before the first lease ended`
            : `kept: the second client got it ${outcome.secondGotItMsAfterLeaseEnd} ms after the first lease ended`;
      // Recorded, not asserted: the outcome depends on whether the grant reached the replica.
      console.info(`[sentinel failover without waitForReplicas] ${verdict}`);
      await context.annotate(verdict, 'notice');
      expect(outcome.acquired).toBe(true);
    } finally {
      await deployment.stop();
    }
  }, 90_000);
});
