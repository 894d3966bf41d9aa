/**
 * The data of the double-payment story. Money is always an integer number of cents, so sums are
 * exact and an invariant either holds or it does not.
 */

/** An order the customer owes money for. Orders are paid oldest first. */
export interface Order {
  readonly id: string;
  readonly priceCents: number;
  /** How much of the price has been paid so far (0 ≤ paidCents ≤ priceCents). */
  readonly paidCents: number;
}

/** A payment the account has recorded (its ledger line). */
export interface RecordedPayment {
  readonly id: string;
  readonly amountCents: number;
}

/** A customer account: what the service's database holds for one customer. */
export interface Account {
  readonly id: string;
  /** Oldest first. */
  readonly orders: readonly Order[];
  /** Money received that no unpaid order needed. */
  readonly creditCents: number;
  /** Every payment applied to this account, in the order it was applied. */
  readonly payments: readonly RecordedPayment[];
}

/** A payment arriving from the bank, to be allocated to one account's oldest unpaid orders. */
export interface Payment {
  readonly id: string;
  readonly accountId: string;
  readonly amountCents: number;
}

/** Part of a payment applied to one order. */
export interface Allocation {
  readonly orderId: string;
  readonly amountCents: number;
}

/**
 * What a worker tells the customer once it has saved a payment: which orders it paid and how much
 * went to credit. Receipts are kept apart from the account, so the checks can compare what
 * customers were told with what the account remembers.
 */
export interface Receipt {
  readonly paymentId: string;
  readonly accountId: string;
  readonly workerId: number;
  readonly allocations: readonly Allocation[];
  readonly creditCents: number;
}

/** Format cents as `123.45` for people. */
export function formatMoney(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}
