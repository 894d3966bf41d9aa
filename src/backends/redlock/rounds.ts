/**
 * One round of a quorum protocol: the same call sent to every node at once, each bounded by the
 * per-node timeout, settled as soon as the outcome is decided (a quorum won, or out of reach) so
 * that a stalled node costs nothing once the others have answered, and at most the timeout when
 * its vote is needed.
 */
import { BackendUnavailableError } from '../../core/errors.js';
import type { RedisConnection } from '../redis/connection.js';
import type { NodeLink } from './node-link.js';

/** A connected node that did not answer within the per-node timeout (slow, stalled). */
export class NodeTimeoutError extends BackendUnavailableError {
  constructor(timeoutMs: number) {
    super(`redlock node did not answer within ${timeoutMs} ms`);
  }
}

/** True when every failed vote is a per-node timeout (none could not be reached at all). */
export function onlyTimeouts<T>(votes: Votes<T>): boolean {
  return votes.every(
    (vote) => vote === undefined || vote.ok || vote.error instanceof NodeTimeoutError,
  );
}

/** One node's answer in a round: its reply, or the (typed) error of its call. */
export type Vote<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

/** The answers so far, by node index (`undefined`: not answered yet). */
export type Votes<T> = readonly (Vote<T> | undefined)[];

/**
 * Send `call` to every node; resolve with the votes once `decided(votes)` is true or every node
 * has answered or timed out. Never rejects: a node's failure is its vote. A node's timeout starts
 * once it is connected (see `node-link.ts`).
 */
export function round<T>(
  nodes: readonly NodeLink[],
  timeoutMs: number,
  call: (node: RedisConnection, signal: AbortSignal, index: number) => Promise<T>,
  decided: (votes: Votes<T>) => boolean = () => false,
): Promise<Votes<T>> {
  const votes: (Vote<T> | undefined)[] = new Array<Vote<T> | undefined>(nodes.length);
  // One clock for the connected nodes (the usual case: one timer and one signal per round), and
  // one per node still connecting, started once it is connected.
  const timers: ReturnType<typeof setTimeout>[] = [];
  const clock = (controller: AbortController) => {
    timers.push(
      setTimeout(() => {
        controller.abort(new NodeTimeoutError(timeoutMs));
      }, timeoutMs),
    );
  };
  let shared: AbortController | undefined;
  let pending = nodes.length;
  return new Promise((resolve) => {
    let settled = false;
    const record = (index: number, vote: Vote<T>) => {
      votes[index] = vote;
      pending -= 1;
      if (pending === 0) for (const timer of timers) clearTimeout(timer);
      if (!settled && (pending === 0 || decided(votes))) {
        settled = true;
        resolve(votes);
      }
    };
    nodes.forEach((node, index) => {
      const connecting = node.connecting();
      let controller: AbortController;
      if (connecting) {
        controller = new AbortController();
        void connecting.then(() => {
          if (votes[index] === undefined) clock(controller);
        });
      } else if (shared) {
        controller = shared;
      } else {
        controller = shared = new AbortController();
        clock(shared);
      }
      let sent: Promise<T>;
      try {
        sent = call(node.connection, controller.signal, index);
      } catch (error) {
        sent = Promise.reject(error as Error);
      }
      sent.then(
        (value) => record(index, { ok: true, value }),
        (error: unknown) => record(index, { ok: false, error }),
      );
    });
  });
}

/** How many votes satisfy `test`. */
export function count<T>(votes: Votes<T>, test: (value: T) => boolean): number {
  let n = 0;
  for (const vote of votes) if (vote?.ok && test(vote.value)) n += 1;
  return n;
}

/** How many nodes failed (error or timeout). */
export function failures<T>(votes: Votes<T>): number {
  let n = 0;
  for (const vote of votes) if (vote && !vote.ok) n += 1;
  return n;
}

/** The first error among the votes, to be the cause of a round that failed for lack of nodes. */
export function firstError<T>(votes: Votes<T>): unknown {
  for (const vote of votes) if (vote && !vote.ok) return vote.error;
  return undefined;
}

/** The error of a round that could not reach a quorum because too many nodes failed. */
export function unavailable<T>(
  what: string,
  votes: Votes<T>,
  quorum: number,
): BackendUnavailableError {
  return new BackendUnavailableError(
    `redlock ${what}: fewer than ${quorum} of ${votes.length} nodes answered`,
    { cause: firstError(votes) },
  );
}
