/**
 * The command `distlock run` starts: spawned with inherited stdio, signalled as a whole process
 * group (unless `foreground`), terminated with SIGTERM then SIGKILL by a deadline when the lock is
 * lost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { CliError } from './cli-error.js';
import { ExitCode } from './exit-codes.js';

/** How the child ended: an exit code, or the signal that killed it. */
export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Options of {@link SupervisedChild.start}. */
export interface SupervisedChildOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /**
   * Keep the child in distlock's process group, with the terminal as its controlling terminal.
   * Otherwise the child leads a new process group (and session) and every signal — forwarded ones
   * and the lock-loss SIGTERM/SIGKILL — reaches its descendants too.
   */
  readonly foreground: boolean;
}

/** The exit code a shell would report for `exit`: the code, or 128 + the signal's number. */
export function exitCodeOf(exit: ChildExit): number {
  if (exit.code !== null) return exit.code;
  const number = exit.signal === null ? undefined : constants.signals[exit.signal];
  return ExitCode.SIGNAL_BASE + (number ?? 0);
}

/** A running child process under supervision. */
export class SupervisedChild {
  /** Resolves once when the child exits. */
  readonly exited: Promise<ChildExit>;

  readonly #child: ChildProcess;
  readonly #pid: number;
  readonly #foreground: boolean;
  #exit: ChildExit | undefined;
  #killTimer: ReturnType<typeof setTimeout> | undefined;
  #killAt = Infinity;
  #terminating = false;

  private constructor(child: ChildProcess, pid: number, foreground: boolean) {
    this.#child = child;
    this.#pid = pid;
    this.#foreground = foreground;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        if (this.#terminating) {
          // The lock is gone: descendants that outlive the leader must not keep working either.
          this.#clearKillTimer();
          this.signal('SIGKILL');
        }
        resolve(this.#exit);
      });
    });
  }

  /**
   * Spawn the child; resolves once it is running.
   * @throws {CliError} 127 when the command is not found, 126 when it cannot be executed.
   */
  static start(options: SupervisedChildOptions): Promise<SupervisedChild> {
    return new Promise((resolve, reject) => {
      const child = spawn(options.command, options.args, {
        stdio: 'inherit',
        env: options.env,
        detached: !options.foreground,
      });
      child.once('error', (error: NodeJS.ErrnoException) => {
        if (child.pid !== undefined) return; // errors after spawn (a failed kill) are not fatal
        const notFound = error.code === 'ENOENT';
        reject(
          new CliError(
            notFound ? ExitCode.COMMAND_NOT_FOUND : ExitCode.CANNOT_EXECUTE,
            `${notFound ? 'command not found' : 'cannot execute'}: ${options.command}` +
              (notFound ? '' : ` (${error.code ?? error.message})`),
          ),
        );
      });
      child.once('spawn', () => {
        if (child.pid === undefined) return;
        resolve(new SupervisedChild(child, child.pid, options.foreground));
      });
    });
  }

  /** The child's process id (and process group id, unless `foreground`). */
  get pid(): number {
    return this.#pid;
  }

  /** True once {@link terminate} was called. */
  get terminating(): boolean {
    return this.#terminating;
  }

  /** How the child ended, once it has. */
  get exit(): ChildExit | undefined {
    return this.#exit;
  }

  /** Send `signal` to the child (its whole process group unless `foreground`); never throws. */
  signal(signal: NodeJS.Signals): void {
    try {
      if (this.#foreground) {
        if (this.#exit === undefined) this.#child.kill(signal);
      } else {
        process.kill(-this.#pid, signal);
      }
    } catch {
      // ESRCH: everything in the group has exited already.
    }
  }

  /**
   * SIGTERM now (once), then SIGKILL at `killAt` (epoch ms) unless the child is gone by then.
   * Calling again can only bring the SIGKILL earlier.
   */
  terminate(killAt: number): void {
    if (!this.#terminating) {
      this.#terminating = true;
      if (this.#exit !== undefined) {
        this.signal('SIGKILL'); // sweep descendants of a leader that already exited
        return;
      }
      this.signal('SIGTERM');
    }
    if (this.#exit !== undefined || killAt >= this.#killAt) return;
    this.#clearKillTimer();
    this.#killAt = killAt;
    const delay = Math.max(0, killAt - Date.now());
    if (delay === 0) {
      this.signal('SIGKILL');
      return;
    }
    this.#killTimer = setTimeout(() => this.signal('SIGKILL'), delay);
    this.#killTimer.unref();
  }

  /** Stop the pending SIGKILL timer (the child has been dealt with). */
  dispose(): void {
    this.#clearKillTimer();
  }

  #clearKillTimer(): void {
    if (this.#killTimer !== undefined) clearTimeout(this.#killTimer);
    this.#killTimer = undefined;
  }
}
