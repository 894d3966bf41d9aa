/**
 * A shared holding's limit between the contract (`Infinity` for readers) and the scripts, which
 * keep it as an integer with 0 for "no limit".
 */
import type { AcquireRequest } from '../../core/backend.js';
import { LimitMismatchError } from '../../core/errors.js';

/** A shared request's limit as the scripts take it: 0 for none (a reader). */
export function scriptLimit(limit: number | undefined): number {
  return limit === undefined || limit === Infinity ? 0 : limit;
}

/** A limit the scripts reported, as the contract has it. */
export function contractLimit(limit: number | string): number {
  return Number(limit) === 0 ? Infinity : Number(limit);
}

/** The error for a script's `{-2, heldLimit}` answer: the key's holders use another limit. */
export function limitMismatch(request: AcquireRequest, heldLimit: number | string): Error {
  return new LimitMismatchError(request.key, request.limit ?? Infinity, contractLimit(heldLimit));
}
