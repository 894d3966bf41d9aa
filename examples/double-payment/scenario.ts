/**
 * The starting data of a run, generated from a seed: accounts with unpaid orders, and the payments
 * the bank will deliver. The same seed gives the same data; the interleaving of the workers is up
 * to the operating system.
 */
import type { Account, Order, Payment } from './model.js';

/** How much data to generate. */
export interface ScenarioSize {
  readonly accounts: number;
  readonly payments: number;
  readonly seed: number;
}

/** The accounts as they are before any payment, and the payments to deliver. */
export interface Scenario {
  readonly accounts: readonly Account[];
  readonly payments: readonly Payment[];
}

/** A small, fast, seedable PRNG (mulberry32): returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A whole number of 5-cent steps in [minCents, maxCents]. */
function randomCents(random: () => number, minCents: number, maxCents: number): number {
  const steps = Math.floor((maxCents - minCents) / 5);
  return minCents + 5 * Math.floor(random() * (steps + 1));
}

/**
 * Generate the scenario. Each account gets enough orders to absorb about 90% of the money sent to
 * it, so payments pay orders (the interesting part) and a little overflows into credit.
 */
export function generateScenario(size: ScenarioSize): Scenario {
  const random = seededRandom(size.seed);
  const accountIds = Array.from({ length: size.accounts }, (_, i) => `acct-${i + 1}`);

  const payments: Payment[] = [];
  const receivedCents = new Map<string, number>(accountIds.map((id) => [id, 0]));
  for (let i = 0; i < size.payments; i++) {
    const accountId = accountIds[Math.floor(random() * accountIds.length)] ?? 'acct-1';
    const amountCents = randomCents(random, 500, 6_000);
    payments.push({ id: `pay-${String(i + 1).padStart(4, '0')}`, accountId, amountCents });
    receivedCents.set(accountId, (receivedCents.get(accountId) ?? 0) + amountCents);
  }

  const accounts = accountIds.map((id): Account => {
    const orders: Order[] = [];
    let totalCents = 0;
    const targetCents = Math.max(1_000, Math.floor((receivedCents.get(id) ?? 0) * 0.9));
    while (totalCents < targetCents) {
      const priceCents = randomCents(random, 1_000, 9_000);
      orders.push({ id: `${id}/order-${orders.length + 1}`, priceCents, paidCents: 0 });
      totalCents += priceCents;
    }
    return { id, orders, creditCents: 0, payments: [] };
  });

  return { accounts, payments };
}
