import { randomFillSync } from 'node:crypto';

/** Makes the token that proves ownership of a lease. Must be unique per acquisition. */
export type TokenGenerator = (key: string) => string;

const TOKEN_BYTES = 16;
// One call into the CSPRNG per 256 tokens: a call per token costs more than the rest of an
// uncontended acquire's bookkeeping.
const pool = Buffer.alloc(TOKEN_BYTES * 256);
let offset = pool.length;

/** 128 random bits, URL-safe: unguessable, so only the holder can release or extend. */
export const randomToken: TokenGenerator = () => {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const token = pool.toString('base64url', offset, offset + TOKEN_BYTES);
  offset += TOKEN_BYTES;
  return token;
};
