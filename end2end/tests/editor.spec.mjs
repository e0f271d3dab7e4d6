// The collaborative editor from the users' side: several browsers (each its own
// context, so its own storage and name) on one session page type, paste, undo,
// rename themselves and switch the language, and each sees what the others did.
//
// The text is read from Monaco's model (window.monaco, the AMD global), never
// scraped from the virtualised view. Every wait is bounded; nothing asserts a
// wall-clock time. The server restart test is in editor-restart.spec.mjs.

import { test, expect, createSessionViaApi } from '../support/fixtures.mjs';

/** Longest wait for a change to show up in another browser. */
const ARRIVAL = { timeout: 15_000 };

/** Makes every page of `context` start with display name `name` (unless renamed since). */
async function presetName(context, name) {
  await context.addInitScript((n) => {
    try {
      if (!localStorage.getItem('pairpad.name')) localStorage.setItem('pairpad.name', n);
    } catch {
      // about:blank and other opaque origins have no storage.
    }
  }, name);
}

/** A second (third, ...) browser with its own storage, watched by the browser log. */
async function newPerson(browser, browserLog, name, options = {}) {
  const context = await browser.newContext(options);
  await browserLog.watchContext(context);
  if (name) await presetName(context, name);
  return context;
}

/** Waits until a session page has a live, synced editor. */
async function waitForEditor(page) {
  await expect(page.getByTestId('editor'), 'the editor never became ready').toHaveAttribute('data-ready', 'true', {
    timeout: 30_000,
  });
  await expect(page.getByTestId('connection-status')).toHaveAttribute('data-state', 'connected');
  await expect(page.locator('.monaco-editor .view-lines')).toBeVisible();
}

/** Opens session `id` in a new page of `context` and waits for its editor. */
async function openSession(context, id) {
  const page = await context.newPage();
  const response = await page.goto(`/s/${id}`);
  expect(response.status()).toBe(200);
  await waitForEditor(page);
  return page;
}

/**
 * Ada and Bob, each in their own browser context, on a new `language` session:
 * `body(adaPage, bobPage, id)`, then both contexts are closed.
 */
async function adaAndBob({ browser, browserLog, request }, language, body) {
  const { id } = await createSessionViaApi(request, language);
  const ada = await newPerson(browser, browserLog, 'Ada');
  const bob = await newPerson(browser, browserLog, 'Bob');
  try {
    const a = await openSession(ada, id);
    const b = await openSession(bob, id);
    await body(a, b, id);
  } finally {
    await ada.close();
    await bob.close();
  }
}

/** The editor's text, as Monaco's model holds it. */
function editorText(page) {
  return page.evaluate(() => window.monaco.editor.getModels()[0].getValue());
}

/** Monaco's language for the document. */
function editorLanguage(page) {
  return page.evaluate(() => window.monaco.editor.getModels()[0].getLanguageId());
}

/** Waits until the page's editor holds exactly `text`. */
async function expectText(page, text, message = 'editor text') {
  await expect.poll(() => editorText(page), { message, ...ARRIVAL }).toBe(text);
}

/** Focuses the editor and puts the caret at the very start or end of the document. */
async function caretTo(page, where) {
  await page.locator('.monaco-editor .view-lines').click();
  await page.keyboard.press(where === 'start' ? 'Control+Home' : 'Control+End');
}

/** Pastes `text` through the system clipboard (needs clipboard permissions). */
async function pasteViaClipboard(page, text) {
  await page.evaluate((t) => navigator.clipboard.writeText(t), text);
  await page.keyboard.press('Control+V');
}

/** Counts code points, lengths and a checksum in the page so large texts need not travel. */
function digestOf(page) {
  return page.evaluate(() => {
    const text = window.monaco.editor.getModels()[0].getValue();
    let hash = 0;
    for (let i = 0; i < text.length; i++) hash = (Math.imul(hash, 31) + text.charCodeAt(i)) | 0;
    return { length: text.length, hash };
  });
}

function digest(text) {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (Math.imul(hash, 31) + text.charCodeAt(i)) | 0;
  return { length: text.length, hash };
}

/** The server-rendered page (what a fresh visitor gets before any script runs). */
async function serverRendered(request, id) {
  const response = await request.get(`/s/${id}`);
  expect(response.status()).toBe(200);
  return response.text();
}

function htmlEscape(text) {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

test.describe('two people editing one session', () => {
  test('typing at the same time at opposite ends converges to the same text, and a late joiner gets it', async ({
    browser,
    browserLog,
    request,
  }) => {
    test.setTimeout(90_000);
    await adaAndBob({ browser, browserLog, request }, 'python', async (a, b, id) => {
      expect(await editorText(a)).toBe('');

      // Something in the middle, so that "start" and "end" are different places.
      const middle = 'MIDDLE';
      await caretTo(a, 'end');
      await a.keyboard.type(middle);
      await expectText(b, middle, 'Bob never saw Ada\'s first word');

      await caretTo(a, 'start');
      await caretTo(b, 'end');

      // Interleaved keystrokes: one from Ada (at the start), one from Bob (at the end), ...
      const adaTyped = 'ada1 ada2 ada3 ';
      const bobTyped = ' bob1 bob2 bob3';
      for (let i = 0; i < Math.max(adaTyped.length, bobTyped.length); i++) {
        if (i < adaTyped.length) await a.keyboard.type(adaTyped[i]);
        if (i < bobTyped.length) await b.keyboard.type(bobTyped[i]);
      }
      // ... then both typing at full speed at once.
      const adaBurst = 'AAAAAAAAAAAAAAAAAAAA ';
      const bobBurst = ' BBBBBBBBBBBBBBBBBBBB';
      await Promise.all([a.keyboard.type(adaBurst, { delay: 5 }), b.keyboard.type(bobBurst, { delay: 5 })]);

      const expected = adaTyped + adaBurst + middle + bobTyped + bobBurst;
      await expectText(a, expected, 'Ada\'s editor did not end with both people\'s text in place');
      await expectText(b, expected, 'Bob\'s editor did not end with both people\'s text in place');
      await expect(a.getByTestId('connection-status')).toHaveAttribute('data-state', 'connected');
      await expect(b.getByTestId('connection-status')).toHaveAttribute('data-state', 'connected');

      // Ada's caret is still right after her text, Bob's still at the very end:
      // remote edits did not move them.
      await a.keyboard.type('!');
      await b.keyboard.type('?');
      const after = adaTyped + adaBurst + '!' + middle + bobTyped + bobBurst + '?';
      await expectText(a, after, 'a remote edit moved someone\'s caret');
      await expectText(b, after, 'a remote edit moved someone\'s caret');

      // A third person joins late and gets everything, first in the server-rendered
      // preview and then in the live editor.
      expect(await serverRendered(request, id)).toContain(htmlEscape(after));
      const cyd = await newPerson(browser, browserLog, 'Cyd');
      try {
        const c = await openSession(cyd, id);
        expect(await editorText(c)).toBe(after);
        // And what the late joiner types reaches the others.
        await caretTo(c, 'end');
        await c.keyboard.type(' cyd');
        await expectText(a, after + ' cyd');
        await expectText(b, after + ' cyd');
      } finally {
        await cyd.close();
      }
    });
  });

  test('each person sees the other\'s cursor labelled with their name', async ({ browser, browserLog, request }) => {
    await adaAndBob({ browser, browserLog, request }, 'javascript', async (a, b) => {
      await caretTo(a, 'end');
      await a.keyboard.type('let x = 1;');
      await expectText(b, 'let x = 1;');
      await caretTo(b, 'start');

      const adaOnBob = b.locator('.monaco-editor .pp-peer-label', { hasText: 'Ada' });
      const bobOnAda = a.locator('.monaco-editor .pp-peer-label', { hasText: 'Bob' });
      await expect(adaOnBob, 'Bob does not see Ada\'s cursor').toBeVisible(ARRIVAL);
      await expect(bobOnAda, 'Ada does not see Bob\'s cursor').toBeVisible(ARRIVAL);
      await expect(adaOnBob).toHaveText('Ada');
      await expect(bobOnAda).toHaveText('Bob');
      // Nobody sees a label for themselves.
      await expect(a.locator('.monaco-editor .pp-peer-label', { hasText: 'Ada' })).toHaveCount(0);
      await expect(b.locator('.monaco-editor .pp-peer-label', { hasText: 'Bob' })).toHaveCount(0);

      // The label follows the caret: Ada jumps to the start of her line, and
      // Bob sees her label move left.
      const labelX = async () => (await adaOnBob.boundingBox())?.x ?? NaN;
      const xAtEnd = await labelX();
      await a.keyboard.press('Home');
      await expect.poll(labelX, { message: 'Ada\'s cursor label did not follow her caret', ...ARRIVAL }).toBeLessThan(
        xAtEnd,
      );
    });
  });

  test('a cursor\'s name label shows while that person types, then fades, and comes back under the pointer', async ({
    browser,
    browserLog,
    request,
  }) => {
    await adaAndBob({ browser, browserLog, request }, 'javascript', async (a, b) => {
      const adaOnBob = b.locator('.monaco-editor .pp-peer-label', { hasText: 'Ada' });
      await caretTo(a, 'end');
      await a.keyboard.type('let answer = 42;');
      await expectText(b, 'let answer = 42;');
      await expect(adaOnBob, 'Ada\'s label is not shown while she types').toHaveAttribute('data-state', 'shown', ARRIVAL);

      // She stops: the label fades so it no longer covers the line above.
      await expect(adaOnBob, 'Ada\'s label never faded').toHaveAttribute('data-state', 'faded', ARRIVAL);
      await expect.poll(() => adaOnBob.evaluate((node) => getComputedStyle(node).opacity), ARRIVAL).toBe('0');

      // Bob typing before her caret shifts it but is not her moving: it stays faded.
      await caretTo(b, 'start');
      await b.keyboard.type('// ');
      await expectText(a, '// let answer = 42;');
      await expect(adaOnBob).toHaveAttribute('data-state', 'faded');

      // Bob points at her caret: the label shows; he moves away: it fades again.
      const caret = b.locator('.monaco-editor .pp-peer-caret').first();
      const box = await caret.boundingBox();
      expect(box, 'Ada\'s caret is not drawn on Bob\'s page').not.toBeNull();
      await b.mouse.move(box.x + 1, box.y + box.height / 2);
      await expect(adaOnBob, 'hovering Ada\'s caret does not show her name').toHaveAttribute('data-state', 'shown', ARRIVAL);
      await b.mouse.move(Math.max(0, box.x - 150), box.y + box.height / 2); // the start of the line
      await expect(adaOnBob, 'Ada\'s label stayed after the pointer left').toHaveAttribute('data-state', 'faded', ARRIVAL);

      // She types again: her label is back.
      await a.keyboard.type(' // yes');
      await expect(adaOnBob, 'Ada\'s label did not come back when she typed').toHaveAttribute('data-state', 'shown', ARRIVAL);
    });
  });

  test('a new display name shows in the other\'s user list and cursor label, and is remembered', async ({
    browser,
    browserLog,
    request,
  }) => {
    await adaAndBob({ browser, browserLog, request }, 'python', async (a, b) => {
      await expect(a.getByTestId('display-name')).toHaveValue('Ada');
      await caretTo(a, 'end');
      await a.keyboard.type('x = 1');
      await expect(b.locator('.monaco-editor .pp-peer-label')).toHaveText('Ada', ARRIVAL);
      await expect(b.getByTestId('user-list').locator('li', { hasText: 'Ada' })).toHaveCount(1);

      // Renamed with Enter.
      const name = a.getByTestId('display-name');
      await name.fill('Ada Lovelace');
      await name.press('Enter');
      await expect(b.getByTestId('user-list').locator('li', { hasText: 'Ada Lovelace' }), 'Bob\'s user list kept the old name').toHaveCount(1, ARRIVAL);
      await expect(b.getByTestId('user-list').locator('li')).toHaveCount(2);
      await expect(b.locator('.monaco-editor .pp-peer-label'), 'Bob\'s cursor label kept the old name').toHaveText(
        'Ada Lovelace',
        ARRIVAL,
      );
      await expect(a.getByTestId('user-list').locator('li', { hasText: '(you)' })).toContainText('Ada Lovelace');

      // Renamed by leaving the field (blur).
      await name.fill('Countess');
      await a.locator('.monaco-editor .view-lines').click();
      await expect(b.getByTestId('user-list').locator('li', { hasText: 'Countess' })).toHaveCount(1, ARRIVAL);
      await expect(b.getByTestId('user-list')).not.toContainText('Ada Lovelace');
      await expect(b.locator('.monaco-editor .pp-peer-label')).toHaveText('Countess', ARRIVAL);

      // Remembered: after a reload Ada is still "Countess", here and for Bob.
      expect(await a.evaluate(() => localStorage.getItem('pairpad.name'))).toBe('Countess');
      await a.reload();
      await waitForEditor(a);
      await expect(a.getByTestId('display-name')).toHaveValue('Countess');
      await expect(b.getByTestId('user-list').locator('li', { hasText: 'Countess' })).toHaveCount(1, ARRIVAL);
      await expect(b.getByTestId('users-count')).toHaveText('2', ARRIVAL);
    });
  });

  test('a language change reaches everyone and survives a reload', async ({ browser, browserLog, request }) => {
    await adaAndBob({ browser, browserLog, request }, 'python', async (a, b, id) => {
      for (const page of [a, b]) {
        await expect(page.getByTestId('language-select')).toHaveValue('python');
        expect(await editorLanguage(page)).toBe('python');
      }

      await a.getByTestId('language-select').selectOption('javascript');
      await expect.poll(() => editorLanguage(a), { message: 'Ada\'s own editor did not switch' }).toBe('javascript');
      await expect(b.getByTestId('language-select'), 'Bob\'s picker did not follow').toHaveValue('javascript', ARRIVAL);
      await expect.poll(() => editorLanguage(b), { message: 'Bob\'s editor did not switch', ...ARRIVAL }).toBe(
        'javascript',
      );

      // A reload (and a fresh visitor) gets the new language, from the server-rendered
      // page on, not only after syncing.
      await b.reload();
      await expect(b.getByTestId('language-select')).toHaveValue('javascript');
      await waitForEditor(b);
      expect(await editorLanguage(b)).toBe('javascript');
      const cyd = await newPerson(browser, browserLog, 'Cyd');
      try {
        const c = await openSession(cyd, id);
        await expect(c.getByTestId('language-select')).toHaveValue('javascript');
        expect(await editorLanguage(c)).toBe('javascript');
      } finally {
        await cyd.close();
      }

      // And back, from the other side.
      await b.getByTestId('language-select').selectOption('python');
      await expect(a.getByTestId('language-select')).toHaveValue('python', ARRIVAL);
      await expect.poll(() => editorLanguage(a), ARRIVAL).toBe('python');
    });
  });

  test.describe('with clipboard permission', () => {
    test.use({ permissions: ['clipboard-read', 'clipboard-write'] });

    test('emoji and CJK text round-trip through typing, pasting and a reload', async ({
      context,
      page,
      browser,
      browserLog,
      request,
    }) => {
      test.setTimeout(60_000);
      const { id } = await createSessionViaApi(request, 'python');
      await presetName(context, 'Ada');
      const bob = await newPerson(browser, browserLog, 'Bob', { permissions: ['clipboard-read', 'clipboard-write'] });
      try {
        await page.goto(`/s/${id}`);
        await waitForEditor(page);
        const a = page;
        const b = await openSession(bob, id);

        // Typed: accents, astral-plane emoji (surrogate pairs), a ZWJ sequence, CJK.
        const typed = 'héllo 😀 你好 👩‍💻 ∑ ';
        await caretTo(a, 'end');
        await a.keyboard.type(typed);
        await expectText(b, typed, 'typed emoji/CJK text arrived changed');

        // Pasted through the clipboard, at the end.
        const pasted = '日本語のテキスト 🎉🇫🇷 한국어';
        await pasteViaClipboard(a, pasted);
        await expectText(a, typed + pasted, 'the paste did not land in the editor');
        await expectText(b, typed + pasted, 'pasted emoji/CJK text arrived changed');

        // Bob edits *between* astral characters (UTF-16 offsets must agree):
        // right after the first emoji, and at the end.
        const emojiEnd = typed.indexOf('😀') + '😀'.length;
        await b.locator('.monaco-editor .view-lines').click();
        await b.evaluate((offset) => {
          const editor = window.monaco.editor.getEditors()[0];
          const position = editor.getModel().getPositionAt(offset);
          editor.setPosition(position);
          editor.focus();
        }, emojiEnd);
        await b.keyboard.type('🐍中');
        await pasteViaClipboard(b, '（全角）');
        const expected = typed.slice(0, emojiEnd) + '🐍中（全角）' + typed.slice(emojiEnd) + pasted;
        await expectText(b, expected);
        await expectText(a, expected, 'Bob\'s edit between emoji landed elsewhere for Ada');

        // Bob's insertion before Ada's caret did not move it off the end of the text.
        await a.keyboard.type('🚀');
        await expectText(b, expected + '🚀');

        // Reloads and a fresh visitor get the same characters.
        expect(await serverRendered(request, id)).toContain(htmlEscape(expected + '🚀'));
        await b.reload();
        await waitForEditor(b);
        expect(await editorText(b)).toBe(expected + '🚀');
        await a.reload();
        await waitForEditor(a);
        expect(await editorText(a)).toBe(expected + '🚀');
      } finally {
        await bob.close();
      }
    });

    test('a 1 MB paste works and reaches the other person', async ({ context, page, browser, browserLog, request }) => {
      test.setTimeout(180_000);
      const { id } = await createSessionViaApi(request, 'javascript');
      await presetName(context, 'Ada');
      const bob = await newPerson(browser, browserLog, 'Bob');
      try {
        await page.goto(`/s/${id}`);
        await waitForEditor(page);
        const a = page;
        const b = await openSession(bob, id);

        // 1,000,000 characters of plausible code, 25,000 lines of 40.
        const line = (i) => `const v${String(i).padStart(6, '0')} = ${String(i * 7).padStart(22, '0')};\n`;
        expect(line(1).length).toBe(40);
        let big = '';
        for (let i = 0; i < 25_000; i++) big += line(i);
        expect(big.length).toBe(1_000_000);

        await caretTo(a, 'end');
        await pasteViaClipboard(a, big);
        await expect
          .poll(() => digestOf(a), { message: 'the 1 MB paste did not land in the editor', timeout: 60_000 })
          .toEqual(digest(big));
        await expect
          .poll(() => digestOf(b), { message: 'the 1 MB paste did not reach the other person', timeout: 60_000 })
          .toEqual(digest(big));
        await expect(a.getByTestId('problem')).toHaveCount(0);
        await expect(a.getByTestId('connection-status')).toHaveAttribute('data-state', 'connected');
        await expect(b.getByTestId('connection-status')).toHaveAttribute('data-state', 'connected');

        // Editing still works in both directions after the paste.
        await caretTo(b, 'end');
        await b.keyboard.type('// bob was here');
        await expect.poll(() => digestOf(a), { timeout: 30_000 }).toEqual(digest(big + '// bob was here'));
        await caretTo(a, 'start');
        await a.keyboard.type('// ada ');
        await expect
          .poll(() => digestOf(b), { timeout: 30_000 })
          .toEqual(digest('// ada ' + big + '// bob was here'));

        // And it was stored: a fresh visitor gets all of it.
        const cyd = await newPerson(browser, browserLog, 'Cyd');
        try {
          const c = await cyd.newPage();
          await c.goto(`/s/${id}`);
          await waitForEditor(c);
          expect(await digestOf(c)).toEqual(digest('// ada ' + big + '// bob was here'));
        } finally {
          await cyd.close();
        }
      } finally {
        await bob.close();
      }
    });

    test('a 1 MB insert through the editor API reaches the other person', async ({ browser, browserLog, request }) => {
      // The same as above without the system clipboard: Monaco's own paste command,
      // which goes through the same change path.
      test.setTimeout(180_000);
      await adaAndBob({ browser, browserLog, request }, 'javascript', async (a, b) => {
        const big = 'x'.repeat(99) + '\n';
        await caretTo(a, 'end');
        await a.evaluate((chunk) => {
          const editor = window.monaco.editor.getEditors()[0];
          editor.trigger('keyboard', 'paste', { text: chunk.repeat(10_000) });
        }, big);
        const expected = digest(big.repeat(10_000));
        await expect.poll(() => digestOf(a), { timeout: 60_000 }).toEqual(expected);
        await expect
          .poll(() => digestOf(b), { message: 'the 1 MB insert did not reach the other person', timeout: 60_000 })
          .toEqual(expected);
        await expect(a.getByTestId('problem')).toHaveCount(0);
        await expect(a.getByTestId('connection-status')).toHaveAttribute('data-state', 'connected');
      });
    });
  });

  test('undo and redo touch only your own edits', async ({ browser, browserLog, request }) => {
    const { id } = await createSessionViaApi(request, 'python');
    const ada = await newPerson(browser, browserLog, 'Ada');
    const bob = await newPerson(browser, browserLog, 'Bob');
    try {
      const a = await openSession(ada, id);
      const b = await openSession(bob, id);

      await caretTo(a, 'end');
      await a.keyboard.type('ada_line');
      await expectText(b, 'ada_line');
      await caretTo(b, 'end');
      await b.keyboard.type(' bob_words');
      await expectText(a, 'ada_line bob_words');

      // Ada undoes: her text goes (one or more undo steps: typing slowed by a busy
      // machine splits it into several), Bob's stays, everywhere.
      let undos = 0;
      await a.locator('.monaco-editor .view-lines').click();
      while ((await editorText(a)) !== ' bob_words' && undos < 10) {
        const before = await editorText(a);
        await a.keyboard.press('Control+Z');
        undos += 1;
        await expect.poll(() => editorText(a), { message: 'Ada\'s undo changed nothing', ...ARRIVAL }).not.toBe(before);
        expect(await editorText(a), 'undo removed the other person\'s text').toContain(' bob_words');
      }
      expect(await editorText(a)).toBe(' bob_words');
      await expectText(b, ' bob_words', 'Bob did not see Ada\'s undo');

      // A further undo from Ada has nothing of hers to take back: Bob's text stays.
      await a.keyboard.press('Control+Z');
      await expect(a.getByTestId('connection-status')).toHaveAttribute('data-state', 'connected');
      await expectText(b, ' bob_words');
      expect(await editorText(a)).toBe(' bob_words');

      // Redo brings Ada's text back, in front of Bob's.
      for (let i = 0; i < undos; i++) await a.keyboard.press('Control+Shift+Z');
      await expectText(a, 'ada_line bob_words', 'redo did not restore Ada\'s text');
      await expectText(b, 'ada_line bob_words', 'Bob did not see Ada\'s redo');

      // Bob's own undo takes back only his words.
      await b.locator('.monaco-editor .view-lines').click();
      for (let i = 0; i < 10 && (await editorText(b)) !== 'ada_line'; i++) {
        await b.keyboard.press('Control+Z');
        await expect.poll(() => editorText(b), ARRIVAL).toContain('ada_line');
      }
      await expectText(b, 'ada_line');
      await expectText(a, 'ada_line');
    } finally {
      await ada.close();
      await bob.close();
    }
  });

  test('the people list, its count and join/leave notices follow who is there', async ({
    context,
    page,
    browser,
    browserLog,
    request,
  }) => {
    const { id } = await createSessionViaApi(request, 'python');
    await presetName(context, 'Ada');
    await page.goto(`/s/${id}`);
    await waitForEditor(page);
    const list = page.getByTestId('user-list');
    await expect(page.getByTestId('users-count')).toHaveText('1');
    await expect(list.locator('li')).toHaveCount(1);
    await expect(list.locator('li')).toContainText('Ada');
    await expect(list.locator('li')).toContainText('(you)');

    const bob = await newPerson(browser, browserLog, 'Bob');
    try {
      const b = await openSession(bob, id);
      await expect(page.getByTestId('users-count'), 'Ada\'s count did not go up').toHaveText('2', ARRIVAL);
      await expect(list.locator('li', { hasText: 'Bob' })).toHaveCount(1);
      await expect(list.locator('li', { hasText: 'Bob' })).not.toContainText('(you)');
      await expect(page.getByTestId('notices'), 'no join notice').toContainText('Bob joined', ARRIVAL);
      // Bob sees both, himself marked.
      await expect(b.getByTestId('users-count')).toHaveText('2', ARRIVAL);
      await expect(b.getByTestId('user-list').locator('li', { hasText: '(you)' })).toContainText('Bob');
      await expect(b.getByTestId('user-list').locator('li', { hasText: 'Ada' })).toHaveCount(1);

      // Bob closes his tab: he leaves Ada's list with a notice.
      await b.close();
      await expect(page.getByTestId('notices'), 'no leave notice').toContainText('Bob left', ARRIVAL);
      await expect(page.getByTestId('users-count'), 'Ada\'s count did not go down').toHaveText('1', ARRIVAL);
      await expect(list.locator('li', { hasText: 'Bob' })).toHaveCount(0);
    } finally {
      await bob.close();
    }
  });

  test('the theme toggle is remembered across a reload', async ({ page, request }) => {
    const { id } = await createSessionViaApi(request, 'python');
    await page.goto(`/s/${id}`);
    await waitForEditor(page);
    const html = page.locator('html');
    const toggle = page.getByTestId('theme-toggle');
    const initial = await html.getAttribute('data-theme');
    expect(['light', 'dark']).toContain(initial);
    const other = initial === 'light' ? 'dark' : 'light';
    const monacoClass = { light: /(^|\s)vs(\s|$)/, dark: /(^|\s)vs-dark(\s|$)/ };

    await toggle.click();
    await expect(html).toHaveAttribute('data-theme', other);
    await expect(page.locator('.monaco-editor').first()).toHaveClass(monacoClass[other]);
    expect(await page.evaluate(() => localStorage.getItem('pairpad.theme'))).toBe(other);

    await page.reload();
    await waitForEditor(page);
    await expect(html, 'the theme was forgotten on reload').toHaveAttribute('data-theme', other);
    await expect(page.locator('.monaco-editor').first()).toHaveClass(monacoClass[other]);

    // And back again, also remembered.
    await page.getByTestId('theme-toggle').click();
    await expect(html).toHaveAttribute('data-theme', initial);
    await page.reload();
    await waitForEditor(page);
    await expect(html).toHaveAttribute('data-theme', initial);
    await expect(page.locator('.monaco-editor').first()).toHaveClass(monacoClass[initial]);
  });
});

test.describe('completion while typing', () => {
  /** The rows of the suggestion list Monaco shows under the caret. */
  const suggestions = (page) => page.locator('.suggest-widget .monaco-list-row');

  /** Opens a new `language` session in `page` with the caret in its (empty) editor. */
  async function newSessionWithCaret(page, request, language) {
    const { id } = await createSessionViaApi(request, language);
    await page.goto(`/s/${id}`);
    await waitForEditor(page);
    await caretTo(page, 'end');
  }

  test('Python offers keywords, builtins and names already in the document, and Enter takes one', async ({
    page,
    request,
  }) => {
    await newSessionWithCaret(page, request, 'python');
    // Escape before Enter: Enter takes the highlighted suggestion when the list is open.
    await page.keyboard.type('def running_total(xs):');
    await page.keyboard.press('Escape');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Shift+Tab'); // back out of the indentation Enter added

    await page.keyboard.type('runn');
    await expect(suggestions(page).filter({ hasText: 'running_total' }), 'a name from the document').toBeVisible(ARRIVAL);
    await page.keyboard.press('Enter');
    await expect.poll(() => editorText(page), ARRIVAL).toBe('def running_total(xs):\nrunning_total');

    await page.keyboard.type('\npri');
    await expect(suggestions(page).filter({ hasText: /^print/ }), 'a builtin').toBeVisible(ARRIVAL);
    await page.keyboard.press('Escape');
    await page.keyboard.type('\nwhi');
    await expect(suggestions(page).filter({ hasText: /^while/ }), 'a keyword').toBeVisible(ARRIVAL);
  });

  test('JavaScript completes from the language service in Monaco\'s worker (allowed by the page\'s CSP)', async ({
    page,
    request,
  }) => {
    await newSessionWithCaret(page, request, 'javascript');
    await page.keyboard.type('conso'); // not 'cons': `const` would match too
    // The first answer waits for Monaco's TypeScript worker to start.
    await expect(suggestions(page).filter({ hasText: /^console/ })).toBeVisible({ timeout: 30_000 });
    await page.keyboard.press('Enter');
    await page.keyboard.type('.lo');
    await expect(suggestions(page).filter({ hasText: /^log/ }), 'a member of console').toBeVisible(ARRIVAL);
    await page.keyboard.press('Enter');
    await expect.poll(() => editorText(page), ARRIVAL).toBe('console.log');
  });
});
