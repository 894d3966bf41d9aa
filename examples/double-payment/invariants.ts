/**
 * What must be true after every payment has been processed, checked from three independent
 * records: the payments the bank sent, the accounts in the store, and the receipts customers got.
 * Each check counts how many things break it (0 means it holds).
 */
import { formatMoney, type Account, type Payment, type Receipt } from './model.js';

/** The invariants, in the order they are reported: a short title and the precise rule. */
export const INVARIANTS = Object.freeze({
  'payments-processed': {
    title: 'each payment processed once',
    definition:
      'every payment sent has exactly one receipt, and no receipt names a payment nobody sent',
  },
  'payments-recorded': {
    title: "each payment in its account's ledger once",
    definition: "every payment sent appears exactly once in its account's ledger in the store",
  },
  'money-conserved': {
    title: 'no money lost or created',
    definition:
      "per account: sum of payments sent to it = sum of its orders' paid amounts + its credit",
  },
  'order-paid-once': {
    title: 'no order paid twice',
    definition: 'per order: the amounts receipts allocated to it add up to at most its price',
  },
  'order-within-price': {
    title: 'no order overpaid in the store',
    definition: 'per order in the store: 0 ≤ paid amount ≤ price',
  },
  'receipts-match-store': {
    title: 'receipts agree with the store',
    definition:
      "per order: paid amount in the store = sum its receipts allocated; per account: credit = sum of its receipts' credit",
  },
} as const);

/** Identifies one invariant. */
export type InvariantId = keyof typeof INVARIANTS;

/** The verdict on one invariant. */
export interface InvariantResult {
  readonly id: InvariantId;
  readonly title: string;
  readonly definition: string;
  /** How many payments, accounts or orders break it; 0 when it holds. */
  readonly broken: number;
  /** What exactly is broken, for people (empty when it holds). */
  readonly detail: string;
}

/** Everything the checks look at after a run. */
export interface RunEvidence {
  readonly initialAccounts: readonly Account[];
  readonly payments: readonly Payment[];
  readonly finalAccounts: readonly Account[];
  readonly receipts: readonly Receipt[];
}

function countBy<T>(items: Iterable<T>, keyOf: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(keyOf(item), (counts.get(keyOf(item)) ?? 0) + 1);
  return counts;
}

function sumBy<T>(items: Iterable<T>, keyOf: (item: T) => string, amountOf: (item: T) => number) {
  const sums = new Map<string, number>();
  for (const item of items) sums.set(keyOf(item), (sums.get(keyOf(item)) ?? 0) + amountOf(item));
  return sums;
}

/** Check every invariant against the evidence of one run. */
export function checkInvariants(evidence: RunEvidence): InvariantResult[] {
  const { payments, receipts } = evidence;
  const finalById = new Map(evidence.finalAccounts.map((account) => [account.id, account]));
  const initialOrders = evidence.initialAccounts.flatMap((account) => account.orders);
  const storedOrders = new Map(
    evidence.finalAccounts.flatMap((account) => account.orders).map((order) => [order.id, order]),
  );
  const receiptLines = receipts.flatMap((receipt) => receipt.allocations);
  const receiptedPerOrder = sumBy(
    receiptLines,
    (line) => line.orderId,
    (line) => line.amountCents,
  );

  const results: InvariantResult[] = [];
  const report = (id: InvariantId, broken: number, detail: string) =>
    results.push({ id, ...INVARIANTS[id], broken, detail: broken ? detail : '' });

  // Processed: exactly one receipt per payment sent, and none for payments nobody sent.
  const receiptsPerPayment = countBy(receipts, (receipt) => receipt.paymentId);
  const sentIds = new Set(payments.map((payment) => payment.id));
  const unprocessed = payments.filter((payment) => receiptsPerPayment.get(payment.id) !== 1);
  const unknown = [...receiptsPerPayment.keys()].filter((id) => !sentIds.has(id));
  report(
    'payments-processed',
    unprocessed.length + unknown.length,
    `${unprocessed.length} payments without exactly one receipt, ${unknown.length} unknown`,
  );

  // Recorded: each payment appears once in the ledger of the account it was sent to.
  const unrecorded = payments.filter((payment) => {
    const ledger = finalById.get(payment.accountId)?.payments ?? [];
    return ledger.filter((line) => line.id === payment.id).length !== 1;
  });
  report(
    'payments-recorded',
    unrecorded.length,
    `${unrecorded.length} payments missing from the ledger (lost updates)`,
  );

  // Conserved: per account, what came in equals what sits in orders and credit.
  const receivedPerAccount = sumBy(
    payments,
    (p) => p.accountId,
    (p) => p.amountCents,
  );
  let moneyDifferenceCents = 0;
  const unbalanced = evidence.initialAccounts.filter((initial) => {
    const account = finalById.get(initial.id);
    const heldCents =
      (account?.orders.reduce((sum, order) => sum + order.paidCents, 0) ?? 0) +
      (account?.creditCents ?? 0);
    const differenceCents = heldCents - (receivedPerAccount.get(initial.id) ?? 0);
    moneyDifferenceCents += differenceCents;
    return differenceCents !== 0;
  });
  report(
    'money-conserved',
    unbalanced.length,
    `${unbalanced.length} accounts off; ${formatMoney(Math.abs(moneyDifferenceCents))} ` +
      (moneyDifferenceCents < 0 ? 'lost' : 'created'),
  );

  // Paid once: customers were never told that more than the price went to one order.
  let overCollectedCents = 0;
  const paidTwice = initialOrders.filter((order) => {
    const excessCents = (receiptedPerOrder.get(order.id) ?? 0) - order.priceCents;
    if (excessCents > 0) overCollectedCents += excessCents;
    return excessCents > 0;
  });
  report(
    'order-paid-once',
    paidTwice.length,
    `${paidTwice.length} orders collected twice (${formatMoney(overCollectedCents)} too much)`,
  );

  // Within price: the store itself never shows an order paid beyond its price.
  const overpaid = initialOrders.filter((order) => {
    const paidCents = storedOrders.get(order.id)?.paidCents ?? 0;
    return paidCents < 0 || paidCents > order.priceCents;
  });
  report('order-within-price', overpaid.length, `${overpaid.length} orders overpaid in the store`);

  // Receipts match the store: per order paid, and per account credit.
  const creditPerAccount = sumBy(
    receipts,
    (r) => r.accountId,
    (r) => r.creditCents,
  );
  const mismatchedOrders = initialOrders.filter(
    (order) =>
      (storedOrders.get(order.id)?.paidCents ?? 0) !== (receiptedPerOrder.get(order.id) ?? 0),
  );
  const mismatchedCredit = evidence.initialAccounts.filter(
    (account) =>
      (finalById.get(account.id)?.creditCents ?? 0) !== (creditPerAccount.get(account.id) ?? 0),
  );
  report(
    'receipts-match-store',
    mismatchedOrders.length + mismatchedCredit.length,
    `${mismatchedOrders.length} orders and ${mismatchedCredit.length} credit balances differ`,
  );

  return results;
}
