// Python's memory snapshot (runner/py/python.js) from end-to-end tests:
// a page that started Python the long way makes a snapshot of Python's memory
// in the background and keeps it in the browser's Cache Storage; later pages of
// the same browser context restore it, and say so ("Restoring Python…").

import { expect } from './fixtures.mjs';
import { PYODIDE_DIR } from './env.mjs';

export const SNAPSHOT_CACHE = 'pairpad-python';

/** Where the snapshot is kept, for the origin `page` is on. */
export const snapshotKey = (page) => `${new URL(page.url()).origin}${PYODIDE_DIR}memory-snapshot`;

/** A snapshot holds all of Python's memory: anything smaller is not one. */
const SMALLEST_SNAPSHOT = 1 << 20;

/** Size of the snapshot this browser context keeps (0: none). */
export function snapshotBytes(page) {
  return page.evaluate(
    async ({ cacheName, key }) => {
      const response = await (await caches.open(cacheName)).match(key);
      return response ? (await response.arrayBuffer()).byteLength : 0;
    },
    { cacheName: SNAPSHOT_CACHE, key: snapshotKey(page) },
  );
}

/** Waits until `page` (whose Python is ready) has left a snapshot bigger than `than` bytes. */
export async function waitForSnapshot(page, { than = SMALLEST_SNAPSHOT, message = 'no memory snapshot was stored' } = {}) {
  await expect.poll(() => snapshotBytes(page), { message, timeout: 150_000 }).toBeGreaterThan(than);
}

/** Records, in every page of `context`, each text the Python status shows (`window.__pythonStatuses`). */
export async function recordPythonStatuses(context) {
  await context.addInitScript(() => {
    window.__pythonStatuses = [];
    const note = () => {
      const text = document.querySelector('[data-testid="python-status"]')?.textContent;
      if (text && window.__pythonStatuses.at(-1) !== text) window.__pythonStatuses.push(text);
    };
    new MutationObserver(note).observe(document, { subtree: true, childList: true, characterData: true });
  });
}
