// A change that would pass the document size limit costs no honest work: the
// page refuses it before sending it (or, when the server refuses it because
// someone else's change landed first, starts over from the server's document),
// says so, keeps every earlier edit on every page, and later edits sync. No
// reconnect loop. A run whose output would pass the limit is shared cut to fit.
// Uses its own server with a 20,000-byte document limit.

import { test, expect } from '../support/fixtures.mjs';
import { useOwnServer } from '../support/own-server.mjs';
import { ARRIVAL, RECONNECT, editorText, expectText, caretTo, openAs } from '../support/editor.mjs';
import { run, outputLines } from '../support/run-panel.mjs';

/** Pastes `text` at the caret, as Monaco's paste command does. */
async function paste(page, text) {
  await page.evaluate((t) => window.monaco.editor.getEditors()[0].trigger('keyboard', 'paste', { text: t }), text);
}

const own = useOwnServer(['--max-document-bytes', '20000'], { perTest: true });

/** Ada and Bob on a new JavaScript session of the own server: `body(ada, bob)`. */
async function adaAndBob(browser, browserLog, body) {
  const id = await own.server.createSession('javascript');
  const url = `${own.server.origin}/s/${id}`;
  const contexts = [];
  try {
    const ada = await openAs(browser, browserLog, contexts, 'Ada', url);
    const bob = await openAs(browser, browserLog, contexts, 'Bob', url);
    await body(ada, bob);
  } finally {
    await Promise.all(contexts.map((c) => c.close()));
  }
}

test('a paste past the limit is refused on the page; earlier and later edits are kept and sync', async ({
  browser,
  browserLog,
}) => {
  test.setTimeout(90_000);
  await adaAndBob(browser, browserLog, async (ada, bob) => {
    await caretTo(ada, 'end');
    await ada.keyboard.type('let a = 1;\nlet b = 2;\n');
    const twoLines = 'let a = 1;\nlet b = 2;\n';
    await expectText(bob, twoLines, 'Bob never got the two lines');

    await paste(ada, 'x'.repeat(30_000));
    await expect(ada.getByTestId('problem')).toContainText('size limit', ARRIVAL);
    await expectText(ada, twoLines, 'the refused paste cost Ada her earlier lines');
    // Refused on the page: the connection was never closed.
    await expect(ada.getByTestId('connection-status')).toHaveAttribute('data-state', 'connected');

    await caretTo(ada, 'end');
    await ada.keyboard.type('ok');
    await expectText(bob, `${twoLines}ok`, 'an edit after the refusal did not reach Bob');
    await expectText(ada, `${twoLines}ok`);
    expect(await editorText(bob)).not.toContain('xxx');
  });
});

test('when the server refuses a change merged after an outage, the page keeps what was accepted and carries on', async ({
  browser,
  browserLog,
}) => {
  test.setTimeout(150_000);
  await adaAndBob(browser, browserLog, async (ada, bob) => {
    await caretTo(ada, 'end');
    await ada.keyboard.type('// shared\n');
    await expectText(bob, '// shared\n', 'Bob never got the first line');

    // While the server is down each pastes 12,000 characters: each fits the
    // limit alone, together they do not, so the second to sync is refused.
    await own.server.stop('SIGTERM');
    for (const page of [ada, bob]) {
      await expect(page.getByTestId('connection-status')).toHaveAttribute('data-state', /^(reconnecting|offline)$/, ARRIVAL);
    }
    await caretTo(ada, 'end');
    await paste(ada, 'a'.repeat(12_000));
    await caretTo(bob, 'end');
    await paste(bob, 'b'.repeat(12_000));
    await own.server.start();

    for (const page of [ada, bob]) {
      await expect(page.getByTestId('connection-status')).toHaveAttribute('data-state', 'connected', RECONNECT);
    }
    // Exactly one paste made it, on both pages, after the shared line.
    await expect
      .poll(async () => {
        const [a, b] = [await editorText(ada), await editorText(bob)];
        return a === b && a.startsWith('// shared\n') && (a.length === 10 + 12_000);
      }, { message: 'the pages did not converge on the first line and one paste', ...RECONNECT })
      .toBe(true);
    const text = await editorText(ada);
    const refused = text.includes('a'.repeat(12_000)) ? bob : ada;
    await expect(refused.getByTestId('problem')).toContainText('not saved', ARRIVAL);

    // No reconnect loop, and the refused page's later edits sync.
    await caretTo(refused, 'end');
    await refused.keyboard.type('!');
    const other = refused === ada ? bob : ada;
    await expectText(other, `${text}!`, 'an edit after the refusal did not sync');
    await expectText(refused, `${text}!`);
    await expect(refused.getByTestId('connection-status')).toHaveAttribute('data-state', 'connected');
  });
});

test('a run whose output would pass the limit is shared cut to fit, and nobody is disconnected', async ({
  browser,
  browserLog,
}) => {
  test.setTimeout(90_000);
  await adaAndBob(browser, browserLog, async (ada, bob) => {
    // 400 lines of 100 characters: twice the document limit.
    const code = 'for (let i = 0; i < 400; i++) console.log(String(i).padStart(4, "0") + "y".repeat(96));\n';
    const mine = await run(ada, code);
    expect(mine.status).toBe('ok');
    expect(mine.lines.length, 'Ada sees all of her own output').toBe(400);

    await expect(bob.getByTestId('run-status'), "Bob's panel never showed Ada's run").toHaveAttribute(
      'data-status',
      'ok',
      ARRIVAL,
    );
    const shared = await outputLines(bob);
    expect(shared.length, 'Bob got none of the output').toBeGreaterThan(0);
    expect(shared.length, 'the shared output was not cut').toBeLessThan(400);
    expect(shared[0].text).toBe(`0000${'y'.repeat(96)}`);

    for (const page of [ada, bob]) {
      await expect(page.getByTestId('connection-status')).toHaveAttribute('data-state', 'connected');
    }
    await caretTo(ada, 'end');
    await ada.keyboard.type('// after');
    await expectText(bob, `${code}// after`, 'an edit after the run did not reach Bob');
  });
});
