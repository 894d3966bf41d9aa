/**
 * A key's state, and how it is written down. The state lives in the *name* of the key's head file
 * whenever it fits (a free key, or one exclusive holder: the mutex's every state), so that a
 * change is one `rename()` and a read one `readdir()`. Anything larger (shared holders, a writer's
 * intent, a very long token) goes to a data file written before the rename, named by the head.
 *
 * ```
 * <version>-<incarnation>.n                                  new key directory: free, no fence yet
 * <version>-<incarnation>.f.<lastFence>[.m]                  free (.m: mixed, see below)
 * <version>-<incarnation>.x.<fence>.<expiresAt>.<token>       one exclusive holder (token base64url)
 * <version>-<incarnation>.s.<lastFence>.<nonce>              state in d.<version>-<incarnation>.<nonce>
 * ```
 *
 * `version` grows by one with every change of the key; `incarnation` is random per key directory,
 * so a name is never reused even after the directory is removed and created again (see
 * `head-store.ts`). `lastFence` is the last fence issued in this directory: it is always in the
 * name, never only in a data file, so fences survive a data file lost in a crash.
 *
 * A key is *mixed* once a shared request (a reader, a semaphore permit) has held it or waited for
 * it; only then do waiting writers leave an intent in the state (`rules.ts`). A key only ever used
 * as a mutex never pays for intents.
 *
 * Heads written by distlock before fences came from the root (the legacy layout, read only):
 * `<version>.f` and `<version>.h.<fence>.<expiresAt>.<token | ~sha256>`. Their fences were the
 * version, so the version is their last fence; the first change writes the current layout.
 */
import { randomBytes } from 'node:crypto';
import type { LockMode } from '../../core/backend.js';

/** One holding of a key. */
export interface Holding {
  readonly token: string;
  readonly fence: bigint;
  /** Wall-clock epoch ms after which the holding counts as gone. */
  readonly expiresAt: number;
  readonly mode: LockMode;
}

/**
 * A writer's announcement that it waits for a mixed key: while live, shared requests wait behind
 * it. It expires unless its writer refreshes it, so a writer that died blocks nobody for long.
 */
export interface Intent {
  readonly token: string;
  readonly expiresAt: number;
}

/** Everything known about a key. Entries may have expired: the rules compare with the clock. */
export interface KeyState {
  readonly holders: readonly Holding[];
  readonly intents: readonly Intent[];
  /** The shared holders' limit (`Infinity` for readers); meaningless without shared holders. */
  readonly limit: number;
  /** The last fence issued in this key directory; `undefined` for a new one (see fence-floor.ts). */
  readonly lastFence: bigint | undefined;
  /** A shared request has used the key since its directory was created. */
  readonly mixed: boolean;
}

/** The state of a key directory just created (or of a key without one). */
export const NEW_KEY: KeyState = Object.freeze({
  holders: Object.freeze([]),
  intents: Object.freeze([]),
  limit: Infinity,
  lastFence: undefined,
  mixed: false,
});

/** Tokens up to this many UTF-8 bytes are kept in the head's name (names hold 255 bytes). */
export const MAX_INLINE_TOKEN_BYTES = 120;

/** A head file as decoded from its name. */
export interface HeadName {
  readonly name: string;
  readonly version: bigint;
  /** `undefined` for a legacy head. */
  readonly incarnation: string | undefined;
  /** The state when the name holds all of it; otherwise it is in the data file. */
  readonly state: KeyState | undefined;
  /** The data file's name when the state is in one. */
  readonly dataFile: string | undefined;
  /** The last fence issued (also when the state is in a data file). */
  readonly lastFence: bigint | undefined;
}

const CURRENT =
  /^(0|[1-9][0-9]*)-([0-9a-f]{16})\.(?:(n)|f\.([0-9]+)(\.m)?|x\.([0-9]+)\.([0-9]+)\.([A-Za-z0-9_-]+)|s\.([0-9]+)\.([0-9a-f]{12}))$/;
const LEGACY = /^(0|[1-9][0-9]*)\.(?:f|h\.([0-9]+)\.([0-9]+)\.(~?)([A-Za-z0-9_-]*))$/;

/** Parse a key directory entry; `undefined` if it is not a head. */
export function decodeHead(name: string): HeadName | undefined {
  const match = CURRENT.exec(name);
  if (match) return decodeCurrent(name, match);
  const legacy = LEGACY.exec(name);
  return legacy ? decodeLegacy(name, legacy) : undefined;
}

function decodeCurrent(name: string, match: RegExpExecArray): HeadName {
  const [
    ,
    version = '0',
    incarnation,
    isNew,
    freeLast,
    mixed,
    fence,
    expiresAt,
    token,
    last,
    nonce,
  ] = match;
  const head = { name, version: BigInt(version), incarnation };
  if (isNew) return { ...head, state: NEW_KEY, dataFile: undefined, lastFence: undefined };
  if (freeLast !== undefined) {
    const lastFence = BigInt(freeLast);
    const state = { ...NEW_KEY, lastFence, mixed: mixed !== undefined };
    return { ...head, state, dataFile: undefined, lastFence };
  }
  if (fence !== undefined) {
    const holder: Holding = {
      token: Buffer.from(token ?? '', 'base64url').toString('utf8'),
      fence: BigInt(fence),
      expiresAt: Number(expiresAt),
      mode: 'exclusive',
    };
    const state = { ...NEW_KEY, holders: [holder], lastFence: holder.fence };
    return { ...head, state, dataFile: undefined, lastFence: holder.fence };
  }
  return {
    ...head,
    state: undefined,
    dataFile: `d.${version}-${incarnation}.${nonce}`,
    lastFence: BigInt(last ?? '0'),
  };
}

function decodeLegacy(name: string, match: RegExpExecArray): HeadName {
  const [, version = '0', fence, expiresAt = '0', tilde, token = ''] = match;
  const lastFence = BigInt(version);
  const holders: Holding[] =
    fence === undefined
      ? []
      : [
          {
            // A token too long for the old names was kept as its digest: shown as `~<digest>`, it
            // can no longer be released by token (only expire or be force-released).
            token: tilde ? `~${token}` : Buffer.from(token, 'base64url').toString('utf8'),
            fence: BigInt(fence),
            expiresAt: Number(expiresAt),
            mode: 'exclusive',
          },
        ];
  const state = { ...NEW_KEY, holders, lastFence };
  return {
    name,
    version: lastFence,
    incarnation: undefined,
    state,
    dataFile: undefined,
    lastFence,
  };
}

/** A new random incarnation (per key directory). */
export function newIncarnation(): string {
  return randomBytes(8).toString('hex');
}

/** Drop the holders and intents that have expired at `now`. */
export function liveState(state: KeyState, now: number): KeyState {
  const holders = state.holders.filter((h) => h.expiresAt > now);
  const intents = state.intents.filter((i) => i.expiresAt > now);
  if (holders.length === state.holders.length && intents.length === state.intents.length) {
    return state;
  }
  return { ...state, holders, intents };
}

/** True if nothing live is left in `state` at `now`: no holder and no intent. */
export function isIdle(state: KeyState, now: number): boolean {
  return (
    state.holders.every((h) => h.expiresAt <= now) && state.intents.every((i) => i.expiresAt <= now)
  );
}

/**
 * The head recording `state` at `version`, and the data file's content when the name cannot hold
 * it. `state` should hold live entries only (see {@link liveState}); its `lastFence` must be known,
 * except in the state of a new key directory. The one-holder name is used only when that holder
 * took the last fence (a legacy holder may not have).
 */
export function encodeHead(
  version: bigint,
  incarnation: string,
  state: KeyState,
): { readonly head: HeadName; readonly data?: string } {
  const prefix = `${version}-${incarnation}`;
  const lastFence = state.lastFence;
  const head = (name: string, inName: KeyState | undefined, dataFile?: string): HeadName => ({
    name,
    version,
    incarnation,
    state: inName,
    dataFile,
    lastFence,
  });
  if (lastFence === undefined) {
    if (state.holders.length === 0 && state.intents.length === 0 && !state.mixed) {
      return { head: head(`${prefix}.n`, state) };
    }
    throw new Error('files backend: a key state with holders must have a fence');
  }
  if (state.intents.length === 0) {
    if (state.holders.length === 0) {
      return { head: head(`${prefix}.f.${lastFence}${state.mixed ? '.m' : ''}`, state) };
    }
    const [holder] = state.holders;
    if (
      state.holders.length === 1 &&
      holder !== undefined &&
      holder.mode === 'exclusive' &&
      holder.fence === lastFence &&
      !state.mixed &&
      Buffer.byteLength(holder.token, 'utf8') <= MAX_INLINE_TOKEN_BYTES
    ) {
      // Never empty: tokens are validated non-empty before they get here.
      const token = Buffer.from(holder.token, 'utf8').toString('base64url');
      return { head: head(`${prefix}.x.${holder.fence}.${holder.expiresAt}.${token}`, state) };
    }
  }
  const nonce = randomBytes(6).toString('hex');
  return {
    head: head(`${prefix}.s.${lastFence}.${nonce}`, undefined, `d.${prefix}.${nonce}`),
    data: encodeData(state),
  };
}

/** A data file's content: the state but its last fence (which is in the head's name). */
interface StoredData {
  readonly holders: ReadonlyArray<{ t: string; f: string; e: number; m: 'x' | 's' }>;
  readonly intents: ReadonlyArray<{ t: string; e: number }>;
  /** `null` for no limit (JSON has no Infinity). */
  readonly limit: number | null;
  readonly mixed: boolean;
}

function encodeData(state: KeyState): string {
  const data: StoredData = {
    holders: state.holders.map((h) => ({
      t: h.token,
      f: String(h.fence),
      e: h.expiresAt,
      m: h.mode === 'exclusive' ? 'x' : 's',
    })),
    intents: state.intents.map((i) => ({ t: i.token, e: i.expiresAt })),
    limit: Number.isFinite(state.limit) ? state.limit : null,
    mixed: state.mixed,
  };
  return JSON.stringify(data);
}

/**
 * The state a data file records, with the head's last fence; `undefined` if the content is not a
 * state (a file left empty by a power loss before it reached the disk).
 */
export function decodeData(content: string, lastFence: bigint): KeyState | undefined {
  try {
    const data = JSON.parse(content) as StoredData;
    return {
      holders: data.holders.map((h) => ({
        token: h.t,
        fence: BigInt(h.f),
        expiresAt: h.e,
        mode: h.m === 'x' ? 'exclusive' : 'shared',
      })),
      intents: data.intents.map((i) => ({ token: i.t, expiresAt: i.e })),
      limit: data.limit ?? Infinity,
      lastFence,
      mixed: data.mixed,
    };
  } catch {
    return undefined;
  }
}
