/**
 * The business rule, as a pure function: a payment pays the account's oldest unpaid orders first;
 * whatever is left becomes credit. Pure, so the race is plainly not in here: it is in reading the
 * account, calling this, and writing the result back while another worker does the same.
 */
import type { Account, Allocation, Payment } from './model.js';

/** The account after a payment, and the receipt lines for it. */
export interface AllocationResult {
  readonly account: Account;
  readonly allocations: readonly Allocation[];
  /** The part of the payment that no order needed. */
  readonly creditCents: number;
}

/** Apply `payment` to `account`'s oldest unpaid orders; the rest goes to credit. */
export function allocatePayment(account: Account, payment: Payment): AllocationResult {
  let remainingCents = payment.amountCents;
  const allocations: Allocation[] = [];
  const orders = account.orders.map((order) => {
    const dueCents = order.priceCents - order.paidCents;
    if (remainingCents === 0 || dueCents === 0) return order;
    const amountCents = Math.min(dueCents, remainingCents);
    remainingCents -= amountCents;
    allocations.push({ orderId: order.id, amountCents });
    return { ...order, paidCents: order.paidCents + amountCents };
  });
  return {
    account: {
      ...account,
      orders,
      creditCents: account.creditCents + remainingCents,
      payments: [...account.payments, { id: payment.id, amountCents: payment.amountCents }],
    },
    allocations,
    creditCents: remainingCents,
  };
}
