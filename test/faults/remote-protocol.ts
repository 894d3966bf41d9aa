/**
 * The wire format between `memory-server.ts` and `remote-backend.ts`: one JSON object per line.
 * Fences are bigints, sent as decimal strings; `Infinity` limits are sent as `null`.
 */
import type { AcquireRequest, LeaseRef } from '../../src/core/backend.js';

/** A call, with the id its reply carries. */
export type Request = { readonly id: number } & (
  | { readonly op: 'tryAcquire'; readonly request: AcquireRequest }
  | { readonly op: 'extend'; readonly lease: LeaseRef; readonly ttlMs: number }
  | { readonly op: 'release'; readonly lease: LeaseRef }
  | { readonly op: 'inspect'; readonly key: string }
);

/** A reply: the result (bigints as `{ $bigint: "…" }`) or a LockError's code and message. */
export type Reply =
  | { readonly id: number; readonly ok: unknown }
  | { readonly id: number; readonly error: { readonly code: string; readonly message: string } };

export function encodeRequest(request: Request): string {
  return JSON.stringify(request, (_key, value: unknown) =>
    value === Infinity ? null : (value as unknown),
  );
}

export function decodeRequest(line: string): Request {
  const request = JSON.parse(line) as Request;
  if (request.op === 'tryAcquire' && request.request.mode === 'shared') {
    const limit = request.request.limit ?? null;
    return { ...request, request: { ...request.request, limit: limit ?? Infinity } };
  }
  return request;
}

/** Encode a result whose fences are bigints. */
export function encodeResult(result: unknown): unknown {
  return JSON.parse(
    JSON.stringify(result, (_key, value: unknown) =>
      typeof value === 'bigint' ? { $bigint: String(value) } : value === Infinity ? null : value,
    ),
  );
}

/** Decode what {@link encodeResult} made. */
export function decodeResult<T>(value: unknown): T {
  return JSON.parse(JSON.stringify(value), (_key, field: unknown) =>
    field !== null && typeof field === 'object' && '$bigint' in field
      ? BigInt((field as { $bigint: string }).$bigint)
      : field,
  ) as T;
}
