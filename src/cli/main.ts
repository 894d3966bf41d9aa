#!/usr/bin/env node
/**
 * The `distlock` executable. See `distlock --help`, or docs/cli.md.
 *
 * @example
 * ```sh
 * distlock run nightly-report -- ./report.sh
 * ```
 */
import { runCli } from './program.js';

// The library unrefs its timers so that it never keeps a process alive by itself; a command that
// is waiting for a lock must stay alive, though, so hold the event loop open until it is done.
const keepAlive = setInterval(() => undefined, 60_000);
const exitCode = await runCli(process.argv).finally(() => clearInterval(keepAlive));
process.exitCode = exitCode;
// A client library's lingering socket or timer must not keep a finished command alive.
setTimeout(() => process.exit(exitCode), 1_000).unref();
