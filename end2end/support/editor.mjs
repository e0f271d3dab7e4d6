// Reading and driving the Monaco editor of a session page from end-to-end tests.

import { expect } from './fixtures.mjs';
import { editorText, presetName } from './run-panel.mjs';

export { editorText };

/** How long an edit may take to show up on another page. */
export const ARRIVAL = { timeout: 15_000 };
/** Reconnect backoff tops out at 10 s (plus jitter below it): allow a few rounds. */
export const RECONNECT = { timeout: 45_000 };

/** Waits until `page`'s editor shows exactly `text`. */
export async function expectText(page, text, message) {
  await expect.poll(() => editorText(page), { message, ...ARRIVAL }).toBe(text);
}

/** Waits until the editor is ready and the page connected. */
export async function waitForEditor(page) {
  await expect(page.getByTestId('editor')).toHaveAttribute('data-ready', 'true', { timeout: 30_000 });
  await expect(page.getByTestId('connection-status')).toHaveAttribute('data-state', 'connected');
}

/** Puts the caret at the 'start' or 'end' of the text. */
export async function caretTo(page, where) {
  await page.locator('.monaco-editor .view-lines').click();
  await page.keyboard.press(where === 'start' ? 'Control+Home' : 'Control+End');
}

/**
 * Opens `url` as `name` in a new context of `browser` (watched by
 * `browserLog`), waits for its editor; returns the page. The context is added
 * to `contexts` for the caller to close.
 */
export async function openAs(browser, browserLog, contexts, name, url) {
  const context = await browser.newContext();
  contexts.push(context);
  await browserLog.watchContext(context);
  await presetName(context, name);
  const page = await context.newPage();
  await page.goto(url);
  await waitForEditor(page);
  return page;
}
