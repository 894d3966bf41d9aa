import { randomBytes } from 'node:crypto';

/** Makes the token that proves ownership of a lease. Must be unique per acquisition. */
export type TokenGenerator = (key: string) => string;

/** 128 random bits, URL-safe: unguessable, so only the holder can release or extend. */
export const randomToken: TokenGenerator = () => randomBytes(16).toString('base64url');
