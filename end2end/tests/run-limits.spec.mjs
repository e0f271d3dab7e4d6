// Runs that break a limit, on a server of our own with small limits
// (`--run-time-limit-secs 2 --max-output-lines 50`, end2end/measure/server.mjs):
// an endless loop in either language is stopped at the time limit with a notice
// while the page stays usable (typing in the editor during the loop), and the
// next run works; output past the line cap is cut with a notice.

import { test, expect } from '../support/fixtures.mjs';
import { RUN_END, texts, setCode, editorText, outputLines, startRun, runEnded, run } from '../support/run-panel.mjs';
import { useOwnServer, openOwnSession } from '../support/own-server.mjs';

const TIME_LIMIT_SECS = 2;
const MAX_OUTPUT_LINES = 50;
const PYTHON_LOAD = { timeout: 120_000 };

const own = useOwnServer(['--run-time-limit-secs', String(TIME_LIMIT_SECS), '--max-output-lines', String(MAX_OUTPUT_LINES)]);

/** Creates a session on our server, opens it and waits for the editor (and Python). */
function openNewSession(page, context, language) {
  return openOwnSession(page, context, own.server, language, PYTHON_LOAD);
}

// ------------------------------------------------------------------------------------------

const LOOPS = {
  javascript: {
    label: 'JavaScript',
    loop: 'console.log("looping");\nlet n = 0;\nwhile (true) { n++; }\n',
    after: 'console.log("after the loop");',
  },
  python: {
    label: 'Python',
    loop: 'print("looping")\nn = 0\nwhile True:\n    n += 1\n',
    after: 'print("after the loop")',
  },
};

for (const [language, { label, loop, after }] of Object.entries(LOOPS)) {
  test(`${label}: an endless loop is stopped at the time limit, the page stays usable, the next run works`, async ({
    page,
    context,
  }) => {
    test.setTimeout(language === 'python' ? 180_000 : 60_000);
    await openNewSession(page, context, language);
    await setCode(page, loop);

    // In the page: when the run status left "running", and when the editor last changed.
    await page.evaluate(() => {
      window.__ended = null;
      window.__typedAt = null;
      const output = document.querySelector('[data-testid="output"]');
      new MutationObserver(() => {
        const s = output.querySelector('[data-testid="run-status"]');
        if (s && window.__ended === null && s.getAttribute('data-status') !== 'running') {
          window.__ended = performance.now();
        }
      }).observe(output, { subtree: true, childList: true, attributes: true });
      window.monaco.editor.getModels()[0].onDidChangeContent(() => {
        window.__typedAt = performance.now();
      });
    });
    await startRun(page);
    const looping = page.getByTestId('output').locator('.line', { hasText: 'looping' });
    await expect(looping, 'the loop never printed').toBeVisible(RUN_END);
    await expect(page.getByTestId('run-status')).toHaveAttribute('data-status', 'running');

    // While it spins, the editor still takes typing (the loop is not on the page's thread).
    await page.locator('.monaco-editor .view-lines').click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('#');
    await expect.poll(() => editorText(page), { message: 'typing during the run did nothing' }).toBe(`${loop}#`);
    const { typedAt, endedAt } = await page.evaluate(() => ({ typedAt: window.__typedAt, endedAt: window.__ended }));
    expect(typedAt, 'no edit was seen').not.toBeNull();
    expect(endedAt === null || typedAt < endedAt, 'the typing only got through after the run had ended').toBe(true);

    const result = await runEnded(page, { timeout: TIME_LIMIT_SECS * 1000 + 15_000 });
    expect(result.status, JSON.stringify(result.lines)).toBe('timeout');
    expect(result.summary).toMatch(new RegExp(`^Ada ran ${label} · stopped: time limit in \\d+ ms$`));
    expect(texts(result.lines, 'stdout')[0]).toBe('looping');
    expect(result.lines, 'no time-limit notice on stderr').toContainEqual({
      stream: 'stderr',
      text: `[time limit exceeded: the program was stopped after ${TIME_LIMIT_SECS * 1000} ms]`,
    });
    await expect(page.getByTestId('run-button')).toBeEnabled();
    await expect(page.getByTestId('stop-button')).toBeDisabled();

    // The next run works (for Python: in an interpreter that survived or was restarted).
    const next = await run(page, after, language === 'python' ? PYTHON_LOAD : RUN_END);
    expect(next.status, JSON.stringify(next.lines)).toBe('ok');
    expect(next.lines).toEqual([{ stream: 'stdout', text: 'after the loop' }]);
  });
}

const FLOODS = {
  javascript: { label: 'JavaScript', code: 'for (let i = 1; i <= 1000; i++) console.log("line " + i);' },
  python: { label: 'Python', code: 'for i in range(1, 1001):\n    print("line", i)' },
};

for (const [language, { label, code }] of Object.entries(FLOODS)) {
  test(`${label}: output over the line cap is cut with a notice`, async ({ page, context }) => {
    test.setTimeout(language === 'python' ? 180_000 : 60_000);
    await openNewSession(page, context, language);
    const result = await run(page, code);
    expect(result.status).toBe('ok');
    const wanted = Array.from({ length: MAX_OUTPUT_LINES }, (_, i) => `line ${i + 1}`);
    expect(texts(result.lines, 'stdout')).toEqual(wanted);
    expect(result.lines.at(-1)).toEqual({
      stream: 'stderr',
      text: `[output truncated: more than ${MAX_OUTPUT_LINES} lines]`,
    });
    expect(result.lines).toHaveLength(MAX_OUTPUT_LINES + 1);
    expect(result.summary).toMatch(new RegExp(`^Ada ran ${label} · finished in \\d+ ms · output truncated$`));
  });
}

// A page that is not cross-origin isolated (a proxy that drops the COOP/COEP headers)
// has no SharedArrayBuffer: output then comes as posted batches instead of a shared
// channel, and Python, without an interrupt buffer, stops itself at the time limit
// (the page restarts it if it does not). The page's global is removed before any of
// its scripts run, so the runner sees exactly what such a page would.
for (const [language, { label, loop }] of Object.entries(LOOPS)) {
  test(`${label} without shared memory: output still streams, the time limit and the line cap still hold`, async ({
    page,
    context,
  }) => {
    test.setTimeout(language === 'python' ? 180_000 : 60_000);
    await context.addInitScript(() => {
      delete globalThis.SharedArrayBuffer;
    });
    await openNewSession(page, context, language);
    expect(await page.evaluate(() => typeof SharedArrayBuffer)).toBe('undefined');

    await setCode(page, loop);
    await startRun(page);
    const looping = page.getByTestId('output').locator('.line', { hasText: 'looping' });
    await expect(looping, 'output did not stream while the loop ran').toBeVisible(RUN_END);
    await expect(page.getByTestId('run-status')).toHaveAttribute('data-status', 'running');
    const stopped = await runEnded(page, { timeout: TIME_LIMIT_SECS * 1000 + 15_000 });
    expect(stopped.status, JSON.stringify(stopped.lines)).toBe('timeout');
    expect(stopped.lines).toEqual([
      { stream: 'stdout', text: 'looping' },
      { stream: 'stderr', text: `[time limit exceeded: the program was stopped after ${TIME_LIMIT_SECS * 1000} ms]` },
    ]);

    const flood = await run(page, FLOODS[language].code, language === 'python' ? PYTHON_LOAD : RUN_END);
    expect(flood.status, JSON.stringify(flood.lines.slice(-3))).toBe('ok');
    const wanted = Array.from({ length: MAX_OUTPUT_LINES }, (_, i) => `line ${i + 1}`);
    expect(texts(flood.lines, 'stdout')).toEqual(wanted);
    expect(flood.lines.at(-1)).toEqual({
      stream: 'stderr',
      text: `[output truncated: more than ${MAX_OUTPUT_LINES} lines]`,
    });
  });
}
