// Python's memory snapshot (scripts/python-snapshot.mjs, runner/py/python.js) from
// end-to-end tests: pairpad serves a snapshot of Python's freshly started memory beside
// Pyodide's files, and the Python worker restores it ("Restoring Python…") instead of
// starting the interpreter; without a usable one it starts the long way.

import { PYODIDE_DIR } from './env.mjs';

/** Where pairpad serves the snapshot (a glob for `context.route`). */
export const SNAPSHOT_ROUTE = `**${PYODIDE_DIR}memory-snapshot.bin`;

/** Pyodide's snapshot header starts with this number (pyodide.asm.mjs, makeSnapshot). */
export const SNAPSHOT_MAGIC = 1886286592;

/** Makes every page of `context` find no snapshot (404), so Python starts the long way. */
export async function withoutSnapshot(context) {
  await context.route(SNAPSHOT_ROUTE, (route) =>
    route.fulfill({ status: 404, contentType: 'application/json', body: '{"error":"not found"}' }),
  );
}

/** Makes every page of `context` get `body` as the snapshot. */
export async function withSnapshotBytes(context, body) {
  await context.route(SNAPSHOT_ROUTE, (route) =>
    route.fulfill({ status: 200, contentType: 'application/octet-stream', body }),
  );
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
