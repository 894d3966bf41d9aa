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

const exitCode = await runCli(process.argv);
process.exitCode = exitCode;
// A client library's lingering socket or timer must not keep a finished command alive.
setTimeout(() => process.exit(exitCode), 1_000).unref();
