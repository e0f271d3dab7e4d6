// A spec file's own server (end2end/measure/server.mjs) started with flags of
// its own, for tests that need limits the suite's server does not have: started
// before the file's tests (or each test), stopped after, and its log attached
// to a test that failed.

import { test, expect } from './fixtures.mjs';
import { OwnServer } from '../measure/server.mjs';
import { presetName } from './run-panel.mjs';

/**
 * Registers the hooks; returns a holder whose `server` is the running server.
 * `perTest`: a fresh server (and data directory) for every test.
 */
export function useOwnServer(extraArgs, { perTest = false } = {}) {
  const holder = { server: null };
  const start = async () => {
    holder.server = new OwnServer({ extraArgs });
    await holder.server.start();
  };
  const stop = async () => {
    await holder.server?.dispose();
  };
  if (perTest) {
    test.beforeEach(start);
  } else {
    test.beforeAll(async () => {
      test.setTimeout(90_000);
      await start();
    });
    test.afterAll(stop);
  }
  test.afterEach(async ({}, testInfo) => {
    if (testInfo.status !== testInfo.expectedStatus) {
      await testInfo.attach('own-server-log', { body: holder.server.logText(), contentType: 'text/plain' });
    }
    if (perTest) await stop();
  });
  return holder;
}

/** Creates a session on `server`, opens it as Ada and waits for the editor (and Python). */
export async function openOwnSession(page, context, server, language, pythonLoad) {
  await presetName(context, 'Ada');
  const id = await server.createSession(language);
  const response = await page.goto(`${server.origin}/s/${id}`);
  expect(response.status()).toBe(200);
  await expect(page.getByTestId('editor'), 'the editor never became ready').toHaveAttribute('data-ready', 'true', {
    timeout: 30_000,
  });
  await expect(page.getByTestId('connection-status')).toHaveAttribute('data-state', 'connected');
  if (language === 'python') {
    await expect(page.getByTestId('python-status'), 'Python never finished loading').toHaveAttribute(
      'data-state',
      'ready',
      pythonLoad,
    );
  }
}
