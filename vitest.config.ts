import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Installs missing servers once, before any test file runs (see test/harness/servers.ts).
    globalSetup: ['test/global-setup.ts'],
    // Backend suites start real servers; give them room but keep every test bounded.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: run files in parallel but not so many that server-backed suites starve each other.
    maxWorkers: 2,
    retry: 0,
  },
});
