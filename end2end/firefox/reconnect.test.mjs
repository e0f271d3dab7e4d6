// Firefox: the server restarts under two people. It is stopped with SIGINT (a
// graceful shutdown, as Ctrl+C); both pages say they are reconnecting; it starts
// again on the same port and data directory; both pages reconnect by
// themselves, still show the text typed before the restart, an edit made after
// it reaches the other page, and each page lists the other person again.
// Each test has a server of its own.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OwnServer } from '../measure/server.mjs';
import { adaAndBobIn, ARRIVAL, RECONNECT } from './support/browser.mjs';

/** Others drop a presence not renewed within 30 s (the page renews its own every 15 s). */
const PRESENCE_BACK = 30_000;

/**
 * Ada and Bob on a new session; Ada types `text` and Bob gets it; the server
 * stops (SIGINT), both pages say so, it starts again on the same port and data
 * directory, both pages say they are connected again. Then `body(a, b, url)`.
 */
async function acrossARestart(text, body) {
  const server = await new OwnServer().start();
  try {
    await adaAndBobIn(server, 'javascript', async (a, b, url) => {
      await a.caretTo('end');
      await a.type(text);
      await b.expectText(text, 'Bob never got the text typed before the restart');
      await a.waitForText('users-count', '2');
      await b.waitForText('users-count', '2');

      // The server goes away.
      await server.stop('SIGINT');
      for (const page of [a, b]) {
        await page.waitForAttr('connection-status', 'data-state', /^(reconnecting|offline)$/, {
          timeout: ARRIVAL,
          message: `${page.name}'s page still says it is connected with the server down`,
        });
      }

      // It comes back on the same port with the same data.
      await server.start();
      for (const page of [a, b]) {
        await page.waitForAttr('connection-status', 'data-state', 'connected', {
          timeout: RECONNECT,
          message: `${page.name}'s page did not reconnect by itself`,
        });
      }
      await body(a, b, url);
    });
  } finally {
    await server.stop('SIGINT');
    await server.dispose();
    assert.deepEqual(server.panics(), [], `pairpad panicked:\n${server.logText()}`);
  }
}

test('after a server restart both pages reconnect, keep the text, and edits reach the other page', { timeout: 180_000 }, async () => {
  await acrossARestart('shared', async (a, b, url) => {
    for (const page of [a, b]) {
      await page.expectText('shared', `${page.name}'s page lost the text typed before the restart`);
    }

    // Typing flows both ways on the new connections.
    await b.caretTo('end');
    await b.type(' bob');
    await a.expectText('shared bob', "Bob's edit after the restart never reached Ada");
    await a.caretTo('start');
    await a.type('ada ');
    await b.expectText('ada shared bob', "Ada's edit after the restart never reached Bob");

    // The restarted server has it all: a fresh visitor's server-rendered page shows it.
    const html = await (await fetch(url)).text();
    assert.ok(html.includes('ada shared bob'), 'the server-rendered page lacks the text after the restart');
  });
});

test('after a server restart each page lists the other person again', { timeout: 180_000 }, async () => {
  await acrossARestart('shared', async (a, b) => {
    // Nobody types or moves after the restart: being there is enough to be listed.
    for (const [page, other] of [
      [a, 'Bob'],
      [b, 'Ada'],
    ]) {
      await page.waitForText('users-count', '2', {
        timeout: PRESENCE_BACK,
        message: `${page.name}'s page does not list ${other} again after the restart`,
      });
    }
  });
});
