/**
 * The double-payment demo: its checks catch a lost update, the unlocked run breaks invariants,
 * the locked runs (including the one with a worker frozen past its lease) break none, and the
 * command exits non-zero when a locked run breaks one.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { allocatePayment } from '../examples/double-payment/allocate.js';
import { checkInvariants, type InvariantId } from '../examples/double-payment/invariants.js';
import { runDemo, parseDemoArgs, type DemoResult } from '../examples/double-payment/main.js';
import type { Account, Payment, Receipt } from '../examples/double-payment/model.js';
import { countUnderLock } from '../examples/swap-backends.js';
import { filesBackend } from '../src/backends/files/index.js';
import { memoryBackend } from '../src/backends/memory/index.js';
import { createLocks, InvalidArgumentError, type LockBackend } from '../src/index.js';
import { tempDir } from './harness/process.js';

const MAIN = fileURLToPath(new URL('../examples/double-payment/main.ts', import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

function brokenIds(result: { invariants: readonly { id: InvariantId; broken: number }[] }) {
  return result.invariants.filter((invariant) => invariant.broken > 0).map(({ id }) => id);
}

describe('double-payment invariants', () => {
  const account: Account = {
    id: 'acct-1',
    orders: [
      { id: 'o1', priceCents: 1_000, paidCents: 0 },
      { id: 'o2', priceCents: 1_000, paidCents: 0 },
    ],
    creditCents: 0,
    payments: [],
  };
  const payments: Payment[] = [
    { id: 'p1', accountId: 'acct-1', amountCents: 1_000 },
    { id: 'p2', accountId: 'acct-1', amountCents: 1_500 },
  ];
  const receiptOf = (payment: Payment, base: Account): Receipt => {
    const { allocations, creditCents } = allocatePayment(base, payment);
    return { paymentId: payment.id, accountId: 'acct-1', workerId: 0, allocations, creditCents };
  };

  it('allocates to the oldest unpaid orders first, the rest to credit', () => {
    const first = allocatePayment(account, payments[0]!);
    const second = allocatePayment(first.account, payments[1]!);
    expect(second.allocations).toEqual([{ orderId: 'o2', amountCents: 1_000 }]);
    expect(second.account.creditCents).toBe(500);
    expect(second.account.orders.map((order) => order.paidCents)).toEqual([1_000, 1_000]);
  });

  it('hold when the payments were applied one after the other', () => {
    const afterFirst = allocatePayment(account, payments[0]!).account;
    const final = allocatePayment(afterFirst, payments[1]!).account;
    const receipts = [receiptOf(payments[0]!, account), receiptOf(payments[1]!, afterFirst)];
    const results = checkInvariants({
      initialAccounts: [account],
      payments,
      finalAccounts: [final],
      receipts,
    });
    expect(brokenIds({ invariants: results })).toEqual([]);
  });

  it('catch a lost update: both workers read the same account, the second write wins', () => {
    // Both allocate against the untouched account; p2's write overwrites p1's.
    const final = allocatePayment(account, payments[1]!).account;
    const receipts = [receiptOf(payments[0]!, account), receiptOf(payments[1]!, account)];
    const results = checkInvariants({
      initialAccounts: [account],
      payments,
      finalAccounts: [final],
      receipts,
    });
    expect(brokenIds({ invariants: results })).toEqual([
      'payments-recorded',
      'money-conserved',
      'order-paid-once',
      'receipts-match-store',
    ]);
    expect(results.find(({ id }) => id === 'money-conserved')?.detail).toContain('10.00 lost');
  });
});

describe('double-payment demo', () => {
  it('breaks invariants without the lock and none with it, even with a frozen worker', async () => {
    const result = await runDemo({ workers: 3, payments: 60, accounts: 2, output: 'silent' });
    const [unlocked, locked, frozen] = result.runs;
    expect(result.runs.map((run) => run.id)).toEqual([
      'without-lock',
      'with-lock',
      'with-lock-frozen-worker',
    ]);
    expect(unlocked?.brokenInvariants).toBeGreaterThan(0);
    expect(brokenIds(unlocked!)).toContain('payments-recorded');
    expect(brokenIds(locked!)).toEqual([]);
    expect(locked?.fenceRejections).toBe(0);
    expect(brokenIds(frozen!)).toEqual([]);
    // The frozen worker's write was refused by the store's fence check, then retried.
    expect(frozen?.fenceRejections).toBeGreaterThanOrEqual(1);
    expect(result.ok).toBe(true);
    expect(result.exitCode).toBe(0);
  }, 120_000);

  it('exits non-zero when a run that should be locked breaks an invariant', async () => {
    const args = ['--json', '--workers', '2', '--payments', '30', '--no-frozen-worker'];
    const { code, stdout, stderr } = await new Promise<{
      code: number | null;
      stdout: string;
      stderr: string;
    }>((resolve) => {
      const child = execFile(
        process.execPath,
        ['--import', TSX, MAIN, ...args, '--skip-lock-in-locked-runs'],
        { timeout: 90_000 },
        (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
      );
    });
    expect(stdout, stderr).toMatch(/^\{/);
    const result = JSON.parse(stdout) as DemoResult;
    expect(result.runs[1]?.id).toBe('with-lock');
    expect(result.runs[1]?.brokenInvariants).toBeGreaterThan(0);
    expect(result.ok).toBe(false);
    expect(code).toBe(1);
  }, 120_000);

  it('refuses a backend that is not shared between processes, and bad numbers', async () => {
    await expect(runDemo({ backendUrl: 'memory:', output: 'silent' })).rejects.toMatchObject({
      name: 'InvalidArgumentError',
      option: 'backendUrl',
    });
    await expect(runDemo({ workers: 0, output: 'silent' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(() => parseDemoArgs(['--payments', 'many'])).toThrow(InvalidArgumentError);
    expect(parseDemoArgs(['--workers', '8', '--backend', 'file:///tmp/x', '--json'])).toMatchObject(
      {
        workers: 8,
        backendUrl: 'file:///tmp/x',
        output: 'json',
      },
    );
  });
});

describe('the same caller code on two backends (examples/swap-backends.ts)', () => {
  const backends: [string, () => { backend: LockBackend; cleanup: () => void }][] = [
    ['memory', () => ({ backend: memoryBackend(), cleanup: () => undefined })],
    [
      'files',
      () => {
        const dir = tempDir();
        return { backend: filesBackend({ dir: dir.path }), cleanup: dir.remove };
      },
    ],
  ];
  for (const [name, open] of backends) {
    it(`keeps every increment and hands out increasing fences on ${name}`, async () => {
      const { backend, cleanup } = open();
      const locks = createLocks({ backend, ttlMs: 5_000 });
      try {
        const { count, fences } = await countUnderLock(locks, 20);
        expect(count).toBe(20);
        for (let i = 1; i < fences.length; i++) expect(fences[i]! > fences[i - 1]!).toBe(true);
      } finally {
        await locks.close();
        cleanup();
      }
    });
  }
});
