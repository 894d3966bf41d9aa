/**
 * The `distlock` command's exit codes. `run` exits with its child's code when the child ran to
 * completion under the lock; every other outcome has its own code, chosen from sysexits.h where one
 * fits so that supervisors (systemd, cron wrappers) already know what they mean.
 */
export const ExitCode = Object.freeze({
  /** Success (`run`: the child exited 0; `status`: the key is held; `release`: a lock was broken). */
  OK: 0,
  /** `status`: the key is free. `release --force`: nothing was broken (not held, or declined). */
  NOT_HELD: 1,
  /** Bad usage or configuration: unknown option, bad URL, bad duration (EX_USAGE). */
  USAGE: 64,
  /** The backend could not be reached (EX_UNAVAILABLE). Retrying later may help. */
  UNAVAILABLE: 69,
  /** An unexpected internal error (EX_SOFTWARE); please report it. */
  INTERNAL: 70,
  /**
   * Configuration error (EX_CONFIG): the backend's optional client library (`ioredis` for
   * `redis://`, `etcd3` for `etcd://`) is not installed. The message says what to `npm i`.
   */
  CONFIG: 78,
  /** `run`: the lock was not acquired in time, or is held and `--no-wait` was given (EX_TEMPFAIL). */
  NOT_ACQUIRED: 75,
  /**
   * `run`: the lock was lost while the child ran (stolen, expired or the backend became
   * unreachable); the child was terminated. distlock's own code, not from sysexits.h.
   */
  LOCK_LOST: 76,
  /** `run`: the command exists but could not be executed (as a shell reports it). */
  CANNOT_EXECUTE: 126,
  /** `run`: the command was not found (as a shell reports it). */
  COMMAND_NOT_FOUND: 127,
  /** Added to a signal's number when the child (or distlock while waiting) died of that signal. */
  SIGNAL_BASE: 128,
} as const);

/** One of the fixed exit codes above. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** The help text's table of exit codes, kept next to the codes it describes. */
export const EXIT_CODES_HELP = `Exit codes:
  0..255       run: the command's own exit code (128+N if it was killed by signal N)
  0            status: the key is held; release: the lock was broken;
               run KEY without a command: released after SIGINT/SIGTERM/SIGHUP
  1            status: the key is free; release: nothing was broken
  64           bad usage (unknown option, bad URL or duration)
  69           the backend is unreachable or failing
  70           internal error (DISTLOCK_DEBUG=1 prints a stack trace)
  75           run: the lock was not acquired in time, or is held with --no-wait
               (--conflict-exit-code N makes it N)
  76           run: the lock was lost while it was held; the command was terminated
  78           the backend's client library is not installed (npm i ioredis, npm i etcd3)
  126/127      run: the command could not be executed / was not found
  129/130/143  run: SIGHUP/SIGINT/SIGTERM while waiting for the lock (nothing is left held)`;
