// The server goes away under two people who keep typing: their pages say so,
// keep the edits made meanwhile, reconnect by themselves when the server is back
// (same port, same data directory) and converge; a fresh visitor then sees
// everything. Uses its own server (end2end/measure/server.mjs), not the suite's.

import { test, expect } from '../support/fixtures.mjs';
import { useOwnServer } from '../support/own-server.mjs';
import { ARRIVAL, RECONNECT, editorText, expectText, waitForEditor, caretTo, openAs } from '../support/editor.mjs';

const own = useOwnServer([], { perTest: true });

for (const signal of ['SIGKILL', 'SIGTERM']) {
  test(`after a server ${signal === 'SIGKILL' ? 'crash (SIGKILL)' : 'shutdown (SIGTERM)'} both pages reconnect, keep offline edits and converge`, async ({
    browser,
    browserLog,
  }) => {
    test.setTimeout(150_000);
    const id = await own.server.createSession('python');
    const url = `${own.server.origin}/s/${id}`;
    const contexts = [];
    const person = (name) => openAs(browser, browserLog, contexts, name, url);
    try {
      const a = await person('Ada');
      const b = await person('Bob');
      await caretTo(a, 'end');
      await a.keyboard.type('shared');
      await expectText(b, 'shared', 'Bob never got the text typed before the restart');
      await expect(a.getByTestId('users-count')).toHaveText('2', ARRIVAL);

      // The server goes away.
      await own.server.stop(signal);
      for (const [who, page] of [['Ada', a], ['Bob', b]]) {
        await expect(
          page.getByTestId('connection-status'),
          `${who}'s page still says it is connected with the server down`,
        ).toHaveAttribute('data-state', /^(reconnecting|offline)$/, ARRIVAL);
      }

      // Both keep typing while it is down: Ada at the start, Bob at the end.
      await caretTo(a, 'start');
      await a.keyboard.type('ada_offline ');
      await caretTo(b, 'end');
      await b.keyboard.type(' bob_offline');
      expect(await editorText(a)).toBe('ada_offline shared');
      expect(await editorText(b)).toBe('shared bob_offline');

      // Leaving now would lose those edits: the page asks first.
      const dialog = a.waitForEvent('dialog', { timeout: 10_000 }).catch(() => null);
      await a.close({ runBeforeUnload: true });
      const asked = await dialog;
      if (asked) await asked.dismiss();
      expect(asked?.type(), 'leaving a page with unsynced edits gave no warning').toBe('beforeunload');
      expect(a.isClosed(), 'the page closed despite unsynced edits').toBe(false);

      // The server comes back on the same port with the same data.
      await own.server.start();
      for (const [who, page] of [['Ada', a], ['Bob', b]]) {
        await expect(
          page.getByTestId('connection-status'),
          `${who}'s page did not reconnect by itself`,
        ).toHaveAttribute('data-state', 'connected', RECONNECT);
      }
      const expected = 'ada_offline shared bob_offline';
      await expectText(a, expected, 'Ada\'s page did not get Bob\'s offline edit (or lost her own)');
      await expectText(b, expected, 'Bob\'s page did not get Ada\'s offline edit (or lost his own)');
      await expect(a.getByTestId('users-count')).toHaveText('2', ARRIVAL);
      await expect(b.getByTestId('users-count')).toHaveText('2', ARRIVAL);

      // Typing still flows both ways on the new connections.
      await a.keyboard.type('+');
      await b.keyboard.type('!');
      const final = 'ada_offline +shared bob_offline!';
      await expectText(a, final);
      await expectText(b, final);

      // A fresh visitor gets all of it: in the server-rendered page and in the editor.
      const html = await (await fetch(url)).text();
      expect(html, 'the server-rendered page lacks edits made during the outage').toContain(final);
      const c = await person('Cyd');
      expect(await editorText(c)).toBe(final);
    } finally {
      for (const context of contexts) await context.close();
    }
  });
}

test('text others have seen survives a server crash even when everyone has left', async ({ browser, browserLog }) => {
  test.setTimeout(90_000);
  const id = await own.server.createSession('javascript');
  const url = `${own.server.origin}/s/${id}`;
  const ada = await browser.newContext();
  const bob = await browser.newContext();
  await browserLog.watchContext(ada);
  await browserLog.watchContext(bob);
  let a;
  let b;
  try {
    a = await ada.newPage();
    await a.goto(url);
    await waitForEditor(a);
    b = await bob.newPage();
    await b.goto(url);
    await waitForEditor(b);
    await caretTo(a, 'end');
    await a.keyboard.type('const kept = 42;');
    await expectText(b, 'const kept = 42;', 'Bob never got the text');
  } finally {
    await ada.close();
    await bob.close();
  }

  // Nobody is left to re-send it: the server alone must have kept it.
  await own.server.stop('SIGKILL');
  await own.server.start();
  const cyd = await browser.newContext();
  await browserLog.watchContext(cyd);
  try {
    const c = await cyd.newPage();
    await c.goto(url);
    await waitForEditor(c);
    expect(await editorText(c), 'text relayed before a crash was lost').toBe('const kept = 42;');
  } finally {
    await cyd.close();
  }
});
