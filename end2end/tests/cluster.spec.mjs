// Cluster mode (issue 14) in Chromium: two pairpad instances on one Redis, Ada's
// page on one and Bob's on the other. They see each other (people count,
// typing both ways), the language follows, and each sees the other's runs:
// JavaScript by Ada, Python by Bob.

import { test, expect } from '../support/fixtures.mjs';
import { OwnServer } from '../measure/server.mjs';
import { ARRIVAL, expectText, caretTo, openAs } from '../support/editor.mjs';
import { RUN_END, run, outputLines } from '../support/run-panel.mjs';
import { startRedis, redisMissing } from '../../tests/interop/support/redis.mjs';

const PYTHON_LOAD = { timeout: 90_000 };
const missing = redisMissing();

test.describe('two instances on one Redis', () => {
  test.skip(!!missing, missing ?? '');
  let redis;
  const servers = [];

  test.beforeAll(async () => {
    test.setTimeout(90_000);
    redis = await startRedis();
    for (let i = 0; i < 2; i++) {
      const server = new OwnServer({ extraArgs: ['--redis-url', redis.url] });
      servers.push(server);
      await server.start();
    }
  });
  test.afterAll(async () => {
    for (const server of servers) await server.dispose();
    await redis?.dispose();
  });
  test.afterEach(async ({}, testInfo) => {
    if (testInfo.status !== testInfo.expectedStatus) {
      for (const [i, server] of servers.entries()) {
        await testInfo.attach(`instance-${i + 1}-log`, { body: server.logText(), contentType: 'text/plain' });
      }
    }
  });

  test('pages on different instances type, switch language and run code together', async ({ browser, browserLog }) => {
    test.setTimeout(180_000);
    const [one, two] = servers;
    const id = await one.createSession('javascript');
    const contexts = [];
    try {
      const ada = await openAs(browser, browserLog, contexts, 'Ada', `${one.origin}/s/${id}`);
      const bob = await openAs(browser, browserLog, contexts, 'Bob', `${two.origin}/s/${id}`);
      for (const [who, page] of [['Ada', ada], ['Bob', bob]]) {
        await expect(page.getByTestId('users-count'), `${who} does not count the person on the other instance`).toHaveText(
          '2',
          ARRIVAL,
        );
      }

      await caretTo(ada, 'end');
      await ada.keyboard.type('// from Ada');
      await expectText(bob, '// from Ada', "Ada's typing never reached Bob on the other instance");
      await caretTo(bob, 'end');
      await bob.keyboard.press('Enter');
      await bob.keyboard.type('// from Bob');
      await expectText(ada, '// from Ada\n// from Bob', "Bob's typing never reached Ada on the other instance");

      // Ada runs JavaScript; Bob sees her run.
      const mine = await run(ada, 'console.log("sum", [1, 2, 3].reduce((a, b) => a + b));');
      expect(mine.status).toBe('ok');
      await expect(bob.getByTestId('run-status'), "Bob's panel never showed Ada's run").toHaveText(
        /^Ada ran JavaScript · finished in \d+ ms$/,
        RUN_END,
      );
      expect(await outputLines(bob)).toEqual([{ stream: 'stdout', text: 'sum 6' }]);

      // Bob switches to Python; Ada's picker follows; Bob runs; Ada sees it.
      await bob.getByTestId('language-select').selectOption('python');
      await expect(ada.getByTestId('language-select'), "Ada's picker did not follow Bob").toHaveValue('python', ARRIVAL);
      await expect(bob.getByTestId('python-status'), 'Python never finished loading').toHaveAttribute(
        'data-state',
        'ready',
        PYTHON_LOAD,
      );
      const his = await run(bob, 'print("py", sum(range(10)))', PYTHON_LOAD);
      expect(his.status, JSON.stringify(his.lines)).toBe('ok');
      await expect(ada.getByTestId('run-status'), "Ada's panel never showed Bob's run").toHaveText(
        /^Bob ran Python · finished in \d+ ms$/,
        RUN_END,
      );
      expect(await outputLines(ada)).toEqual([{ stream: 'stdout', text: 'py 45' }]);
      for (const server of servers) expect(server.panics(), 'an instance panicked').toEqual([]);
    } finally {
      for (const context of contexts) await context.close();
    }
  });
});
