/** Fault schedules: every kind that applies, `repeat` times, in a seeded random order. */
import { seededRandom } from '../../examples/double-payment/scenario.js';
import type { FaultKind } from './faults.js';

/** Each of `kinds` `repeat` times, shuffled by `seed` (the same seed gives the same order). */
export function schedule(kinds: readonly FaultKind[], repeat: number, seed: number): FaultKind[] {
  const list = Array.from({ length: repeat }, () => [...kinds]).flat();
  const random = seededRandom(seed);
  for (let i = list.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}
