/**
 * `distlock status`, `distlock list` and `distlock release --force`: what operators use to see
 * who holds what, and to break a lock whose holder is stuck.
 */
import { createInterface } from 'node:readline/promises';
import { UsageError } from './cli-error.js';
import { ExitCode } from './exit-codes.js';
import { openLocks } from './open-locks.js';
import {
  formatRemaining,
  formatTable,
  lockRows,
  lockToJson,
  printJson,
  TOKEN_PREFIX_LENGTH,
} from './output.js';

/** Options shared by the inspecting commands. */
export interface InspectOptions {
  readonly backendUrl: string | undefined;
  readonly json: boolean;
}

/** `status KEY`: exit 0 when held, 1 when free. */
export async function statusCommand(key: string, options: InspectOptions): Promise<number> {
  const locks = await openLocks(options.backendUrl);
  try {
    const lock = lockToJson(key, await locks.inspect(key));
    if (options.json) printJson(lock);
    else process.stdout.write(`${formatTable(lockRows([lock]))}\n`);
    return lock.held ? ExitCode.OK : ExitCode.NOT_HELD;
  } finally {
    await locks.close().catch(() => undefined);
  }
}

/** `list [PREFIX]`: every held lock whose key starts with PREFIX, sorted by key. */
export async function listCommand(prefix: string, options: InspectOptions): Promise<number> {
  const locks = await openLocks(options.backendUrl);
  try {
    const infos = await locks.list(prefix);
    const held = infos
      .map((info) => lockToJson(info.key, info))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    if (options.json) printJson(held);
    else if (held.length === 0)
      process.stdout.write(`no locks held${prefix ? ` under "${prefix}"` : ''}\n`);
    else process.stdout.write(`${formatTable(lockRows(held))}\n`);
    return ExitCode.OK;
  } finally {
    await locks.close().catch(() => undefined);
  }
}

/** Options of {@link releaseCommand}. */
export interface ReleaseOptions {
  readonly backendUrl: string | undefined;
  readonly force: boolean;
  readonly yes: boolean;
}

/**
 * `release KEY --force [--yes]`: break the lock whoever holds it, after a confirmation on a
 * terminal. Exit 0 when a lock was broken, 1 when nothing held the key.
 */
export async function releaseCommand(key: string, options: ReleaseOptions): Promise<number> {
  if (!options.force) {
    throw new UsageError(
      'release breaks the lock whoever holds it; add --force to confirm that is what you want ' +
        '(a holder releases its own lock when its command exits)',
    );
  }
  const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true;
  if (!options.yes && !interactive) {
    throw new UsageError('refusing to break a lock without a terminal to confirm on; add --yes');
  }
  const locks = await openLocks(options.backendUrl);
  try {
    const holder = await locks.inspect(key);
    if (holder === null) {
      process.stdout.write(`"${key}" is not held\n`);
      return ExitCode.NOT_HELD;
    }
    if (!options.yes) {
      const holders = holder.holders.length;
      const what =
        holders === 1
          ? `token ${holder.token.slice(0, TOKEN_PREFIX_LENGTH)}…, fence ${holder.fence}, ` +
            `${formatRemaining(holder.remainingMs)} left`
          : `${holders} ${holder.mode} holders`;
      const confirmed = await confirm(
        `Break the lock "${key}" (${what})? Its holder may still be working. [y/N] `,
      );
      if (!confirmed) {
        process.stderr.write('not released\n');
        return ExitCode.NOT_HELD;
      }
    }
    const removed = await locks.forceRelease(key);
    process.stdout.write(removed ? `released "${key}"\n` : `"${key}" is not held\n`);
    return removed ? ExitCode.OK : ExitCode.NOT_HELD;
  } finally {
    await locks.close().catch(() => undefined);
  }
}

async function confirm(question: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(question);
    return /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    prompt.close();
  }
}
