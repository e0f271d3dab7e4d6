// Playwright configuration for pairpad's end-to-end suite: the real release
// binary (started below with a fresh data directory) driven by Debian's Chromium.
// Run from the repository root: npm run test:e2e

import { defineConfig } from '@playwright/test';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ORIGIN, PORT } from './support/env.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');

export default defineConfig({
  testDir: path.join(here, 'tests'),
  testMatch: '**/*.spec.mjs',
  outputDir: path.join(here, 'test-results'),
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
    env: { PAIRPAD_E2E_PORT: String(PORT) },
    reuseExistingServer: false,
    timeout: 60_000,
    // Server logs (stdout) only when asked: PAIRPAD_E2E_SERVER_LOG=1.
    stdout: process.env.PAIRPAD_E2E_SERVER_LOG ? 'pipe' : 'ignore',
    stderr: 'pipe',
    gracefulShutdown: { signal: 'SIGTERM', timeout: 10_000 },
  },
});
