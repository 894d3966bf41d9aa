/**
 * Runs once before any test file (vitest `globalSetup`): installs the servers the tests spawn
 * (`test/harness/servers.ts`) when they are missing. Installing here, in one process, instead of
 * from each test file keeps parallel workers from running apt at the same time.
 */
import { installMissingServers } from './harness/install-servers.js';

export default async function setup(): Promise<void> {
  await installMissingServers();
}
