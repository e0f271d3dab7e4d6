// Playwright configuration for pairpad's end-to-end suite: the real release
// binary (started below with a fresh data directory) driven by Debian's Chromium.
// Run from the repository root: npm run test:e2e

import { defineConfig } from '@playwright/test';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ORIGIN, PORT, SERVER_LOG } from './support/env.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');

export default defineConfig({
  testDir: path.join(here, 'tests'),
  testMatch: '**/*.spec.mjs',
  // Separate runs at the same time need separate output (and ports).
  outputDir: process.env.PAIRPAD_E2E_OUTPUT_DIR || path.join(here, 'test-results'),
  // Fails the run if the server panicked at any point.
  globalTeardown: path.join(here, 'support', 'global-teardown.mjs'),
  // Two cores: one browser at a time, and a failure is a failure.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: 'list',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  use: {
    baseURL: ORIGIN,
    browserName: 'chromium',
    headless: true,
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
    trace: 'retain-on-failure',
  },
  webServer: {
    command: 'bash end2end/serve.sh',
    cwd: repoRoot,
    url: `${ORIGIN}/api/health`,
    env: {
      PAIRPAD_E2E_PORT: String(PORT),
      PAIRPAD_E2E_SERVER_LOG_FILE: SERVER_LOG,
      PAIRPAD_E2E_SERVER_LOG: process.env.PAIRPAD_E2E_SERVER_LOG || '',
    },
    reuseExistingServer: false,
    timeout: 60_000,
    // Server logs only when asked: PAIRPAD_E2E_SERVER_LOG=1 (always in the log file).
    stdout: process.env.PAIRPAD_E2E_SERVER_LOG ? 'pipe' : 'ignore',
    stderr: 'pipe',
    gracefulShutdown: { signal: 'SIGTERM', timeout: 10_000 },
  },
});
