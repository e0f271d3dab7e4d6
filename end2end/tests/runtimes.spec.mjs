// The vendored runtimes work under the page's security headers: Monaco's AMD
// build loads into a session page (loader script with the page's CSP nonce) and
// runs its TypeScript worker, and Pyodide starts in a module Worker made from a
// blob: URL (as the Python runner does) and runs code with cross-origin
// isolation. A CSP or COEP block fails the test with the browser's complaints.
// The runners themselves start only once the editor is up.

import { test, expect, createSessionViaApi, clickCopyOnceHydrated } from '../support/fixtures.mjs';
import { MONACO_VS, PYODIDE_DIR } from '../support/env.mjs';

/** Opens a fresh, hydrated session page. */
async function openSession(page, request, language) {
  const session = await createSessionViaApi(request, language);
  const response = await page.goto(`/s/${session.id}`);
  expect(response.status()).toBe(200);
  await clickCopyOnceHydrated(page);
  return session;
}

/**
 * In the page: loads Monaco's AMD loader (once) with the page's nonce and then
 * `vs/editor/editor.main`; resolves `{ ok, error }`.
 */
async function loadMonaco(page) {
  return page.evaluate(async (vs) => {
    try {
      if (!(window.require && typeof window.require.config === 'function')) {
        const nonce = document.querySelector('script[nonce]')?.nonce;
        if (!nonce) return { ok: false, error: 'no script[nonce] element to take the CSP nonce from' };
        await new Promise((resolve, reject) => {
          const script = document.createElement('script');
          script.nonce = nonce;
          script.src = `${vs}/loader.js`;
          script.onload = resolve;
          script.onerror = () => reject(new Error(`${script.src} did not load`));
          document.head.appendChild(script);
        });
      }
      // An absolute URL: Monaco starts its workers from blob: URLs, where a
      // path-only `vs` cannot be resolved (importScripts fails).
      window.require.config({ paths: { vs: new URL(vs, location.origin).href } });
      await new Promise((resolve, reject) => window.require(['vs/editor/editor.main'], resolve, reject));
      if (!window.monaco?.editor) return { ok: false, error: 'editor.main loaded but window.monaco.editor is missing' };
      return { ok: true };
    } catch (e) {
      return { ok: false, error: String(e?.stack || e) };
    }
  }, MONACO_VS);
}

/** In the page: creates an editor in the editor area (test-only container). */
async function createEditor(page, language, value) {
  return page.evaluate(
    ({ language, value }) => {
      const area = document.querySelector('[data-testid="editor"]');
      const host = document.createElement('div');
      host.id = 'e2e-monaco';
      host.style.cssText = 'width: 600px; height: 240px';
      area.appendChild(host);
      window.__e2eEditor = window.monaco.editor.create(host, { value, language, automaticLayout: false });
      return window.__e2eEditor.getValue();
    },
    { language, value },
  );
}

test('Monaco loads into the editor area and its model round-trips text', async ({ page, request, browserLog }) => {
  await openSession(page, request, 'python');
  const loaded = await loadMonaco(page);
  expect(loaded, `Monaco did not load:\n${browserLog.text()}`).toEqual({ ok: true });

  const text = 'def greet(name):\n    return f"héllo, {name} 👋"\n\nprint(greet("pairpad"))\n';
  expect(await createEditor(page, 'python', text)).toBe(text);
  const edited = await page.evaluate(() => {
    const editor = window.__e2eEditor;
    const model = editor.getModel();
    model.pushEditOperations([], [{ range: new window.monaco.Range(1, 1, 1, 1), text: '# top\n' }], () => null);
    return { value: editor.getValue(), lines: model.getLineCount(), language: model.getLanguageId() };
  });
  expect(edited).toEqual({ value: `# top\n${text}`, lines: 6, language: 'python' });

  // The view rendered it inside the editor area (beside the app's own editor).
  const ours = page.getByTestId('editor').locator('#e2e-monaco');
  await expect(ours.locator('.monaco-editor')).toHaveCount(1);
  await expect(ours.locator('.view-lines')).toContainText('def greet(name):');
});

test("Monaco's TypeScript worker runs (JavaScript diagnostics appear)", async ({ page, request, browserLog }) => {
  await openSession(page, request, 'javascript');
  const loaded = await loadMonaco(page);
  expect(loaded, `Monaco did not load:\n${browserLog.text()}`).toEqual({ ok: true });
  await createEditor(page, 'javascript', 'const x = ;\n');
  // Diagnostics come only from the TypeScript language worker.
  await expect
    .poll(
      () => page.evaluate(() => window.monaco.editor.getModelMarkers({}).length),
      { message: `no diagnostics from Monaco's worker:\n${browserLog.text()}`, timeout: 30_000 },
    )
    .toBeGreaterThan(0);
});

test('Pyodide runs Python in a module worker from a blob: URL', async ({ page, request, browserLog }) => {
  test.setTimeout(120_000);
  await openSession(page, request, 'python');
  const result = await page.evaluate(async (dir) => {
    const source = `
      self.onmessage = async (event) => {
        const { origin, dir } = event.data;
        const report = { crossOriginIsolated: self.crossOriginIsolated, sharedArrayBuffer: typeof SharedArrayBuffer };
        try {
          const { loadPyodide } = await import(origin + dir + 'pyodide.mjs');
          const pyodide = await loadPyodide({ indexURL: origin + dir });
          report.version = pyodide.version;
          report.sum = pyodide.runPython('1+2');
          if (report.sharedArrayBuffer === 'function') {
            // What the runner uses to interrupt long runs.
            pyodide.setInterruptBuffer(new Int32Array(new SharedArrayBuffer(4)));
            report.interruptBuffer = true;
          }
          report.ok = true;
        } catch (e) {
          report.ok = false;
          report.error = String((e && e.stack) || e);
        }
        self.postMessage(report);
      };`;
    const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    let worker;
    try {
      worker = new Worker(url, { type: 'module', name: 'e2e-pyodide' });
    } catch (e) {
      return { ok: false, error: `new Worker threw: ${e}` };
    }
    try {
      return await new Promise((resolve) => {
        worker.onmessage = (event) => resolve(event.data);
        worker.onerror = (event) =>
          resolve({ ok: false, error: `worker error: ${event.message || '(no message: the script was blocked or failed to load)'}` });
        worker.postMessage({ origin: location.origin, dir });
      });
    } finally {
      worker.terminate();
      URL.revokeObjectURL(url);
    }
  }, PYODIDE_DIR);

  expect(result, `Pyodide did not run:\n${browserLog.text()}`).toMatchObject({
    ok: true,
    sum: 3,
    crossOriginIsolated: true,
    sharedArrayBuffer: 'function',
    interruptBuffer: true,
  });
});

test("the runners start only once the editor is up, so their downloads do not compete with Monaco's", async ({
  page,
  request,
}) => {
  // Every runner worker the page starts, and whether the editor was up then.
  await page.addInitScript(() => {
    const NativeWorker = window.Worker;
    window.__runnerStarts = [];
    window.Worker = class extends NativeWorker {
      constructor(url, options) {
        if (String(url).includes('/runner/')) {
          window.__runnerStarts.push({
            url: String(url),
            editorUp: document.querySelector('[data-testid="editor"] .monaco-editor') !== null,
            sinceNavigationMs: performance.now(),
          });
        }
        super(url, options);
      }
    };
  });
  const session = await createSessionViaApi(request, 'javascript');
  await page.goto(`/s/${session.id}`);
  await expect(page.locator('[data-testid="editor"][data-ready="true"]')).toHaveCount(1, { timeout: 60_000 });
  await expect
    .poll(() => page.evaluate(() => window.__runnerStarts.map((s) => s.url)), { message: 'no runner worker started' })
    .toContainEqual(expect.stringContaining('/runner/js-worker.js'));
  for (const start of await page.evaluate(() => window.__runnerStarts)) {
    // Before the editor only by the few-second fallback (for a Monaco that is slow to come).
    expect(
      start.editorUp || start.sinceNavigationMs >= 4_000,
      `${start.url} started ${Math.round(start.sinceNavigationMs)} ms after navigation, before the editor was up`,
    ).toBe(true);
  }
});
