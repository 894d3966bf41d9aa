/**
 * The Azure blob backend's own behaviour on a real Azurite: blob names for awkward keys, the lease
 * id and TTL mapping, the fence write that a holder who lost its lease does not get, break-based
 * force release, leases past Azure's 60 s kept by renewal, a wrong account key or SAS (typed, no
 * secret printed), a holder frozen (SIGSTOP) past its lease, and Azurite restarted under a
 * holder. The tests that wait for leases run concurrently: the file takes about 70 s, not minutes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  ContainerClient,
  ContainerSASPermissions,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AzureAuthError,
  azureBlobBackend,
  leaseIdOf,
  leaseSecondsFor,
} from '../../src/backends/azure-blob/index.js';
import { openBackend } from '../../src/backend-url.js';
import { raiseFence } from '../../src/backends/azure-blob/fence.js';
import {
  blobNameOf,
  blobNames,
  escapeKey,
  unescapeKey,
} from '../../src/backends/azure-blob/names.js';
import {
  BackendUnavailableError,
  InvalidArgumentError,
  LockError,
  LockLostError,
} from '../../src/core/errors.js';
import type { Lease } from '../../src/core/lease.js';
import { createLocks, type LockManager } from '../../src/core/locks.js';
import { everythingIn } from '../../src/testing/conformance-robustness.js';
import {
  AZURITE_ACCOUNT,
  AZURITE_KEY,
  startAzurite,
  type AzuriteServer,
} from '../harness/azurite.js';
import { killAndWait, waitUntil } from '../harness/process.js';

const childScript = fileURLToPath(new URL('../fixtures/azure-blob-child.ts', import.meta.url));
const containerName = 'leases';
let azurite: AzuriteServer;
const managers: LockManager[] = [];
const children: ChildProcess[] = [];
let keyCounter = 0;
const freshKey = (label: string) => `azure-leases/${label}-${(keyCounter += 1)}`;

beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await Promise.allSettled(children.map((child) => killAndWait(child)));
  await Promise.allSettled(managers.map((m) => m.close()));
  await azurite?.stop();
});

function client(server = azurite): LockManager {
  const locks = createLocks({
    backend: azureBlobBackend({ connectionString: server.connectionString(), containerName }),
    ttlMs: 15_000,
    waitMs: 40_000,
  });
  managers.push(locks);
  return locks;
}

function containerClient(server = azurite): ContainerClient {
  return new ContainerClient(
    `${server.blobEndpoint}/${containerName}`,
    new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
  );
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('names, lease ids and TTLs', () => {
  it('escapes any key into a valid, reversible, prefix-preserving blob name', () => {
    for (const key of ['a', 'a/b', 'a~2Fb', '../x', 'x.', ' ünï ☃ 😀', 'a\\b', '%41', '']) {
      const escaped = escapeKey(key);
      expect(escaped).toMatch(/^[A-Za-z0-9_~-]*$/);
      expect(unescapeKey(escaped)).toBe(key);
    }
    expect(escapeKey('a/b')).not.toBe(escapeKey('a~2Fb'));
    expect(escapeKey('order:7').startsWith(escapeKey('order:'))).toBe(true);
    const names = blobNames('distlock/');
    const long = 'k'.repeat(10_000);
    const hashed = blobNameOf(names, long);
    expect(hashed.hashed).toBe(true);
    expect(hashed.name.length).toBeLessThanOrEqual(1_024);
    expect(blobNameOf(names, `${long}x`).name).not.toBe(hashed.name);
    expect(blobNameOf(names, '☃'.repeat(300)).hashed).toBe(true); // 2,700 escaped characters
  });

  it('derives a GUID lease id from any token, the same one every time; a GUID token is its own', () => {
    const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    expect(leaseIdOf('token-a')).toMatch(guid);
    expect(leaseIdOf('token-a')).toBe(leaseIdOf('token-a'));
    expect(leaseIdOf('token-a')).not.toBe(leaseIdOf('token-b'));
    expect(leaseIdOf('0F8FAD5B-D9CB-469F-A165-70867728950E')).toBe(
      '0f8fad5b-d9cb-469f-a165-70867728950e',
    );
  });

  it('maps a TTL to a whole-second blob lease of 15 to 60 s, rounded up', () => {
    expect(leaseSecondsFor(15_000)).toBe(15);
    expect(leaseSecondsFor(15_001)).toBe(16);
    expect(leaseSecondsFor(60_000)).toBe(60);
    expect(leaseSecondsFor(3_600_000)).toBe(60);
  });

  it('refuses a TTL under 15 s with InvalidArgumentError naming ttlMs, before any call', async () => {
    const locks = client();
    const error = await locks
      .acquire(freshKey('short'), { ttlMs: 14_999 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).option).toBe('ttlMs');
    expect((error as Error).message).toMatch(/at least 15000 ms/);
    expect(() => createLocks({ backend: locks.backend, ttlMs: 10_000 })).toThrow(
      InvalidArgumentError,
    );
  });

  it('refuses bad options naming them, with no secret in the message', () => {
    const secret = Buffer.alloc(64, 9).toString('base64');
    const bad: Array<[() => unknown, string]> = [
      [
        () =>
          azureBlobBackend({
            connectionString: azurite.connectionString(secret),
            containerName: 'Bad_Name',
          }),
        'containerName',
      ],
      [
        () =>
          azureBlobBackend({ connectionString: `AccountKey=${secret};nonsense`, containerName }),
        'connectionString',
      ],
      [() => azureBlobBackend({ url: `ftp://acct/locks?sig=${secret}` }), 'url'],
      [() => azureBlobBackend({ container: {} as ContainerClient }), 'container'],
      [() => azureBlobBackend({} as never), 'options'],
    ];
    for (const [make, option] of bad) {
      let error: unknown;
      try {
        make();
      } catch (e) {
        error = e;
      }
      expect(error, option).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).option).toBe(option);
      expect(everythingIn(error)).not.toContain(secret);
    }
  });
});

describe.concurrent('on Azurite', () => {
  it('locks unicode, slashed, escaped-looking and long keys apart; inspect and list find them', async () => {
    const locks = client();
    const base = freshKey('keys');
    // The longest key the core takes (1,024 characters): 1,000 snowmen escape to 9,000 characters
    // and ~3 kB of UTF-8, so its blob is named by digest (10 kB keys: see the names test above).
    const long = `${base}/${'☃'.repeat(1_000)}`;
    const keys = [`${base}/a/b`, `${base}/a~2Fb`, `${base}/ünï ☃`, long, `${base}/.`];
    expect(blobNameOf(blobNames('distlock/'), long).hashed).toBe(true);
    const leases = await Promise.all(keys.map((key) => locks.acquire(key, { waitMs: 0 })));
    for (const [i, key] of keys.entries()) {
      expect((await locks.inspect(key))?.token).toBe(leases[i]!.token);
    }
    const listed = await locks.list(`${base}/`);
    expect(listed.map((info) => info.key).sort()).toEqual([...keys].sort());
    expect((await locks.list(`${base}/${'☃'.repeat(500)}`)).map((info) => info.key)).toEqual([
      long,
    ]);
    await Promise.all(leases.map((lease) => lease.release()));
    expect(await locks.list(`${base}/`)).toEqual([]);
  });

  it('creates a missing container on first use, and works on a user ContainerClient and a SAS URL', async () => {
    const container = containerClient();
    const fresh = new ContainerClient(
      `${azurite.blobEndpoint}/fresh-${Date.now()}`,
      new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
    );
    const own = createLocks({ backend: azureBlobBackend({ container: fresh }), ttlMs: 15_000 });
    managers.push(own);
    const lease = await own.acquire('first');
    expect(lease.fence).toBe(1n);
    expect(await fresh.exists()).toBe(true);
    await lease.release();

    await container.createIfNotExists();
    const sas = await container.generateSasUrl({
      permissions: ContainerSASPermissions.parse('rwcl'),
      expiresOn: new Date(Date.now() + 3_600_000),
    });
    const viaSas = createLocks({ backend: azureBlobBackend({ url: sas }), ttlMs: 15_000 });
    managers.push(viaSas);
    const key = freshKey('sas');
    const held = await viaSas.acquire(key);
    expect((await client().inspect(key))?.token).toBe(held.token);
    expect(await held.release()).toBe('released');
  });

  it('opens through openBackend: azblob://CONTAINER with the connection string', async () => {
    const viaUrl = createLocks({
      backend: await openBackend(`azblob://${containerName}`, {
        azureConnectionString: azurite.connectionString(),
      }),
      ttlMs: 15_000,
    });
    managers.push(viaUrl);
    const key = freshKey('url');
    const lease = await viaUrl.acquire(key);
    expect((await client().inspect(key))?.token).toBe(lease.token);
    await lease.release();
  });

  it('a holder that lost its lease between the acquire and the fence write gets no fence', async () => {
    const locks = client();
    const key = freshKey('fence-race');
    const first = await locks.acquire(key);
    await first.release();
    // A holder acquires the blob lease (as tryAcquire does), then loses it before its fence write:
    const blob = containerClient().getBlobClient(blobNameOf(blobNames('distlock/'), key).name);
    const staleLeaseId = leaseIdOf('stale-holder');
    await blob.getBlobLeaseClient(staleLeaseId).acquireLease(15);
    await blob.getBlobLeaseClient().breakLease(0);
    const next = await client().acquire(key, { waitMs: 5_000 });
    expect(await raiseFence(blob, staleLeaseId, 'stale-holder', 15, undefined)).toBeNull();
    expect(next.fence).toBe(first.fence + 1n);
    expect((await locks.inspect(key))?.fence).toBe(next.fence);
    await next.release();
  });

  it('forceRelease breaks the lease at once; the next holder gets in with a greater fence, the old one is not-owner', async () => {
    const [a, b] = [client(), client()];
    const key = freshKey('break');
    const victim = await a.acquire(key);
    expect(await b.forceRelease(key)).toBe(true);
    const thief = await b.acquire(key, { waitMs: 0 });
    expect(thief.fence).toBeGreaterThan(victim.fence);
    const error = await victim.extend().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockLostError);
    expect((error as LockLostError).reason).toBe('not-owner');
    expect(await a.release(key, victim.token)).toBe('not-owner');
    expect(await b.forceRelease(freshKey('never-held'))).toBe(false);
    await thief.release();
    expect(await b.forceRelease(key)).toBe(false);
  });

  it('keeps a TTL longer than 60 s with a 60 s lease renewed by the backend', async () => {
    const [a, b] = [client(), client()];
    const key = freshKey('long');
    const lease = await a.acquire(key, { ttlMs: 90_000 });
    await delay(66_000); // past the first 60 s blob lease
    expect(lease.lost).toBe(false);
    expect(await b.tryAcquire(key)).toBeNull();
    expect(await lease.release()).toBe('released');
  }, 100_000);

  it("a long lease's renewal that finds another holder aborts the holder's signal (not-owner)", async () => {
    const [a, b] = [client(), client()];
    const key = freshKey('long-lost');
    const lease = await a.acquire(key, { ttlMs: 120_000 });
    expect(await b.forceRelease(key)).toBe(true);
    const thief = await b.acquire(key, { waitMs: 0 });
    const heldAt = Date.now();
    const lostAt = await new Promise<number>((resolve) =>
      lease.signal.addEventListener('abort', () => resolve(Date.now()), { once: true }),
    );
    // Told at the first renewal of its 60 s blob lease (at 30 s), long before its 120 s TTL.
    expect(lostAt - heldAt).toBeLessThan(45_000);
    expect((lease.signal.reason as LockLostError).reason).toBe('not-owner');
    await thief.release();
  }, 100_000);

  it('a long lease whose renewals cannot reach the account is signalled lost before its 60 s blob lease could end', async () => {
    const own = await startAzurite();
    try {
      const locks = client(own);
      const sentAt = Date.now();
      const lease = await locks.acquire(freshKey('long-unreachable'), { ttlMs: 120_000 });
      own.pause(); // the account stops answering: the renewal at 30 s hangs, then fails
      const lostAt = await new Promise<number>((resolve) =>
        lease.signal.addEventListener('abort', () => resolve(Date.now()), { once: true }),
      );
      // The blob lease ends 60 s after Azure took the acquire, which was after `sentAt`.
      expect(lostAt).toBeLessThan(sentAt + 60_000);
      expect(lostAt).toBeGreaterThan(sentAt + 30_000);
      expect((lease.signal.reason as LockLostError).reason).toBe('unreachable');
    } finally {
      own.resume();
      await own.stop();
    }
  }, 100_000);

  it('a wrong account key or SAS is a typed, non-retryable error at once, with no secret anywhere', async () => {
    const key = Buffer.alloc(64, 3).toString('base64');
    const wrongKey = createLocks({
      backend: azureBlobBackend({ connectionString: azurite.connectionString(key), containerName }),
      ttlMs: 15_000,
    });
    const sig = 'dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZQ%3D%3D';
    const wrongSas = createLocks({
      backend: azureBlobBackend({
        url: `${azurite.blobEndpoint}/${containerName}?sv=2023-11-03&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00:00:00Z&sig=${sig}`,
      }),
      ttlMs: 15_000,
    });
    managers.push(wrongKey, wrongSas);
    for (const [locks, secret] of [
      [wrongKey, key],
      [wrongSas, decodeURIComponent(sig)],
    ] as const) {
      const started = Date.now();
      const error = await locks
        .acquire(freshKey('auth'), { waitMs: 10_000 })
        .catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(error).toBeInstanceOf(AzureAuthError);
      expect((error as LockError).retryable).toBe(false);
      expect((error as Error).message).toMatch(/403/);
      const text = everythingIn(error);
      expect(text).not.toContain(secret);
      expect(text).not.toContain(encodeURIComponent(secret));
      expect(text).not.toContain(sig);
    }
  });

  it('a holder frozen (SIGSTOP) past its lease: its deadline passes before the next holder gets in, whose fence is greater', async () => {
    const key = freshKey('sigstop');
    const child = spawn(process.execPath, ['--import', 'tsx', childScript], {
      env: {
        ...process.env,
        DISTLOCK_AZURE_CONNECTION_STRING: azurite.connectionString(),
        DISTLOCK_AZURE_CONTAINER: containerName,
        DISTLOCK_CHILD_KEY: key,
        DISTLOCK_CHILD_TTL_MS: '15000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const lines: Array<{
      event: string;
      fence?: string;
      expiresAt?: number;
      reason?: string;
      at: number;
    }> = [];
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let at = buffer.indexOf('\n'); at >= 0; at = buffer.indexOf('\n')) {
        lines.push(JSON.parse(buffer.slice(0, at)) as (typeof lines)[number]);
        buffer = buffer.slice(at + 1);
      }
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await waitUntil(
      'the child to hold the lock',
      () => lines.some((l) => l.event === 'acquired'),
      30_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${stderr}`);
    });
    const childFence = BigInt(lines.find((l) => l.event === 'acquired')!.fence!);
    // One renewal (every 5 s) so that the deadline has moved since the grant.
    await waitUntil('a renewal', () => lines.some((l) => l.event === 'extended'), 15_000);
    child.kill('SIGSTOP');
    await delay(200); // drain what the child wrote before it stopped
    const childDeadline = Math.max(...lines.map((l) => l.expiresAt ?? 0));
    const next = await client().acquire(key, { waitMs: 40_000 });
    const acquiredAt = Date.now();
    child.kill('SIGCONT');
    expect(acquiredAt).toBeGreaterThanOrEqual(childDeadline);
    expect(next.fence).toBeGreaterThan(childFence);
    // Resumed, the child finds its deadline passed: its signal fires (it never learns otherwise).
    await waitUntil(
      'the child to report its loss',
      () => lines.some((l) => l.event === 'lost'),
      10_000,
    );
    expect(['expired', 'not-owner']).toContain(lines.find((l) => l.event === 'lost')!.reason);
    await next.release();
    await killAndWait(child);
  }, 90_000);

  it('Azurite restarted (in memory) under a holder: the holder is told at its next renewal; the key is free, its fence starts over', async () => {
    const own = await startAzurite();
    try {
      const holder = client(own);
      const key = freshKey('restart');
      let held!: () => void;
      const holding = new Promise<void>((resolve) => (held = resolve));
      const lost = new Promise<LockLostError>((resolve, reject) => {
        void holder
          .withLock(
            key,
            async (lease) => {
              held();
              await new Promise((r) => lease.signal.addEventListener('abort', r, { once: true }));
              resolve(lease.signal.reason as LockLostError);
            },
            { renewEveryMs: 1_000 },
          )
          .catch(reject);
      });
      // Held once withLock's fn runs (inspect would see the blob lease before the fence write).
      await Promise.race([holding, lost]);
      expect((await client(own).inspect(key))?.fence).toBe(1n);
      await own.restart();
      const reason = await lost;
      expect(reason).toBeInstanceOf(LockLostError);
      // Its blob (and container) are gone: the renewal finds no lease, which is an expiry.
      expect(reason.reason).toBe('expired');
      // The first call after the restart may meet a connection the old server reset.
      let next: Lease | null = null;
      await waitUntil('the key to be taken again', async () => {
        next = await client(own).tryAcquire(key);
        return next !== null;
      });
      expect(next!.fence).toBe(1n); // the fence counter was in the forgotten blob
      await next!.release();
      // And while the account is down, a call fails fast and retryably.
      await own.kill();
      const error = await client(own)
        .acquire(key)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(everythingIn(error)).toMatch(/ECONNREFUSED/);
    } finally {
      await own.stop();
    }
  }, 60_000);
});
