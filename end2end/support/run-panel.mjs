// Driving the run panel from end-to-end tests: set the code, run it, read the
// output. Shared by the run-*.spec.mjs files.

import { expect } from './fixtures.mjs';

/** A short program finishes (and shows up elsewhere) within this. */
export const RUN_END = { timeout: 20_000 };

/** Output lines' texts, optionally of one stream only. */
export const texts = (lines, stream) => lines.filter((l) => !stream || l.stream === stream).map((l) => l.text);

/** Makes every page of `context` start with display name `name`. */
export async function presetName(context, name) {
  await context.addInitScript((n) => {
    try {
      localStorage.setItem('pairpad.name', n);
    } catch {
      // about:blank has no storage
    }
  }, name);
}

/** Replaces the editor's text (goes through the normal edit path and syncs). */
export async function setCode(page, code) {
  await page.evaluate((c) => window.monaco.editor.getModels()[0].setValue(c), code);
}

export function editorText(page) {
  return page.evaluate(() => window.monaco.editor.getModels()[0].getValue());
}

/** The output panel's lines as `{ stream, text }`. */
export function outputLines(page) {
  return page
    .getByTestId('output')
    .locator('.line')
    .evaluateAll((els) => els.map((el) => ({ stream: el.getAttribute('data-stream'), text: el.textContent })));
}

/** Empties the panel, then clicks Run (the status line that appears is this run's). */
export async function startRun(page) {
  await page.getByTestId('clear-output').click();
  await expect(page.getByTestId('run-status')).toHaveCount(0);
  await expect(page.getByTestId('run-button')).toBeEnabled();
  await page.getByTestId('run-button').click();
}

/** Waits for the run on the page to end; returns its status, status text and lines. */
export async function runEnded(page, wait = RUN_END) {
  const status = page.getByTestId('run-status');
  await expect(status, 'the run never ended').toHaveAttribute('data-status', /^(ok|error|timeout|stopped)$/, wait);
  return {
    status: await status.getAttribute('data-status'),
    summary: (await status.textContent()).trim(),
    lines: await outputLines(page),
  };
}

/** Sets the code, runs it and waits for the end. */
export async function run(page, code, wait = RUN_END) {
  await setCode(page, code);
  await startRun(page);
  return runEnded(page, wait);
}

/** Opens session `id` in `page` and waits until its editor is live. */
export async function openSession(page, id) {
  const response = await page.goto(`/s/${id}`);
  expect(response.status()).toBe(200);
  await expect(page.getByTestId('editor'), 'the editor never became ready').toHaveAttribute('data-ready', 'true', {
    timeout: 30_000,
  });
  await expect(page.getByTestId('connection-status')).toHaveAttribute('data-state', 'connected');
}
