// Firefox: two people (two separate Firefox browsers, each with its own fresh
// profile) in one session: what they type at the same time converges to the
// same text on both pages; each lists the other and sees the other's cursor;
// a language switch reaches the other page.
//
// The text is read from Monaco's model (window.monaco), typing goes through
// WebDriver key presses. Every wait is bounded; nothing asserts a time.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serverForFile } from './support/server.mjs';
import { adaAndBobIn, poll, pollFor, Key } from './support/browser.mjs';

const own = serverForFile();

function twoPeopleIn(language, body) {
  return adaAndBobIn(own.server, language, body);
}

test('typing at the same time at opposite ends converges to the same text on both pages', { timeout: 150_000 }, async () => {
  await twoPeopleIn('python', async (a, b) => {
    assert.equal(await a.editorText(), '');

    // Something in the middle, so that "start" and "end" are different places.
    const middle = 'MIDDLE';
    await a.caretTo('end');
    await a.type(middle);
    await b.expectText(middle, "Bob never saw Ada's first word");

    await a.caretTo('start');
    await b.caretTo('end');

    // Interleaved keystrokes: one from Ada (at the start), one from Bob (at the end), ...
    const adaTyped = 'ada1 ada2 ada3 ';
    const bobTyped = ' bob1 bob2 bob3';
    for (let i = 0; i < Math.max(adaTyped.length, bobTyped.length); i++) {
      if (i < adaTyped.length) await a.type(adaTyped[i]);
      if (i < bobTyped.length) await b.type(bobTyped[i]);
    }
    // ... then both typing a burst at once.
    const adaBurst = 'AAAAAAAAAAAAAAAAAAAA ';
    const bobBurst = ' BBBBBBBBBBBBBBBBBBBB';
    await Promise.all([a.type(adaBurst), b.type(bobBurst)]);

    const expected = adaTyped + adaBurst + middle + bobTyped + bobBurst;
    await a.expectText(expected, "Ada's editor did not end with both people's text in place");
    await b.expectText(expected, "Bob's editor did not end with both people's text in place");
    assert.equal(await a.attr('connection-status', 'data-state'), 'connected');
    assert.equal(await b.attr('connection-status', 'data-state'), 'connected');

    // Remote edits did not move anyone's caret: Ada's is still right after her
    // text, Bob's still at the very end.
    await a.type('!');
    await b.type('?');
    const after = adaTyped + adaBurst + '!' + middle + bobTyped + bobBurst + '?';
    await a.expectText(after, "a remote edit moved someone's caret (Ada's page)");
    await b.expectText(after, "a remote edit moved someone's caret (Bob's page)");
  });
});

test("each page lists the other person and shows the other's cursor", { timeout: 120_000 }, async () => {
  await twoPeopleIn('javascript', async (a, b) => {
    // The people list and its count.
    for (const [page, self, other] of [
      [a, 'Ada', 'Bob'],
      [b, 'Bob', 'Ada'],
    ]) {
      await page.waitForText('users-count', '2', { message: `${self}'s people count never reached 2` });
      const people = await poll(
        async () => {
          const items = await page.eval(() =>
            [...document.querySelectorAll('[data-testid="user-list"] li')].map((li) => li.textContent),
          );
          return items.length === 2 && items.some((t) => t.includes(other)) ? items : null;
        },
        { message: `${self}'s people list never showed ${other}` },
      );
      const mine = people.filter((t) => t.includes('(you)'));
      assert.equal(mine.length, 1, `${self}'s list: ${JSON.stringify(people)}`);
      assert.match(mine[0], new RegExp(self));
      assert.ok(!people.find((t) => t.includes(other)).includes('(you)'), `${self}'s list: ${JSON.stringify(people)}`);
    }

    await a.caretTo('end');
    await a.type('let x = 1;');
    await b.expectText('let x = 1;');
    await b.caretTo('start');

    // A caret and a name label for the other person, none for yourself.
    const peerCursors = (page) =>
      page.eval(() => ({
        carets: [...document.querySelectorAll('.monaco-editor .pp-peer-caret')].map(
          (el) => el.getBoundingClientRect().left,
        ),
        labels: [...document.querySelectorAll('.monaco-editor .pp-peer-label')].map((el) => el.textContent),
      }));
    const oneCursorOf = (name) => (seen) => seen.carets.length === 1 && seen.labels.length === 1 && seen.labels[0] === name;
    await poll(() => peerCursors(b), { accept: oneCursorOf('Ada'), message: "Bob's editor never showed Ada's cursor (only hers)" });
    await poll(() => peerCursors(a), { accept: oneCursorOf('Bob'), message: "Ada's editor never showed Bob's cursor (only his)" });

    // The cursor follows its owner: Ada jumps to the start of her line, and Bob
    // sees her caret move left.
    const { carets: [atEnd] } = await peerCursors(b);
    await a.press(Key.HOME);
    await poll(() => peerCursors(b), {
      accept: (seen) => seen.carets.length === 1 && seen.carets[0] < atEnd,
      message: "Ada's cursor on Bob's page did not follow her caret",
    });
  });
});

test('a language switch from JavaScript to Python reaches the other person', { timeout: 120_000 }, async () => {
  await twoPeopleIn('javascript', async (a, b) => {
    for (const page of [a, b]) {
      assert.equal(await page.value('language-select'), 'javascript');
      assert.equal(await page.editorLanguage(), 'javascript');
    }
    await a.select('language-select', 'python');
    await pollFor(() => a.editorLanguage(), 'python', { message: "Ada's own editor did not switch" });
    await pollFor(() => b.value('language-select'), 'python', { message: "Bob's language picker did not follow" });
    await pollFor(() => b.editorLanguage(), 'python', { message: "Bob's editor did not switch to Python" });
  });
});
