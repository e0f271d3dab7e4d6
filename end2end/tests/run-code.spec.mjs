// Running code from the user's side, on the suite's server (default limits):
// hello world in both languages, console formatting like Node's, runtime and
// syntax errors pointing at the editor's line numbers on stderr, stdin for
// input()/readline(), output streaming while a program runs, Ctrl+Enter, Clear,
// the Stop button, a Python run asked for while Python is still loading, Python
// restored from the memory snapshot pairpad serves (and a damaged one refused),
// and runs shared with the other people in the session.
//
// The code is set through Monaco's model (the normal edit path); output is read
// from the run panel's `.line` elements. Every wait is bounded; nothing asserts a
// wall-clock time. Time limits and output caps are in run-limits.spec.mjs (own
// server with small limits); sandbox escapes in run-sandbox.spec.mjs.

import util from 'node:util';
import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { test, expect, createSessionViaApi } from '../support/fixtures.mjs';
import {
  SNAPSHOT_MAGIC,
  withoutSnapshot,
  withSnapshotBytes,
  recordPythonStatuses,
} from '../support/python-snapshot.mjs';
import { RUN_END, texts, openSession, presetName, setCode, editorText, outputLines, startRun, runEnded, run } from '../support/run-panel.mjs';

/** Pyodide is ~12 MB and compiles on a 2-core machine: allow for it. */
const PYTHON_LOAD = { timeout: 120_000 };

async function waitForPython(page) {
  await expect(page.getByTestId('python-status'), 'Python never finished loading').toHaveAttribute(
    'data-state',
    'ready',
    PYTHON_LOAD,
  );
  await expect(page.getByTestId('python-status')).toHaveText('Python ready');
}

// ------------------------------------------------------------------------------------------

test.describe('JavaScript', () => {
  test.beforeEach(async ({ page, context, request }) => {
    await presetName(context, 'Ada');
    const { id } = await createSessionViaApi(request, 'javascript');
    await openSession(page, id);
  });

  test('hello world prints on stdout and the status says who ran it', async ({ page }) => {
    const result = await run(page, 'console.log("Hello, world!");');
    expect(result.lines).toEqual([{ stream: 'stdout', text: 'Hello, world!' }]);
    expect(result.status).toBe('ok');
    expect(result.summary).toMatch(/^Ada ran JavaScript · finished in \d+ ms$/);
  });

  test('console.log formats values like Node', async ({ page }) => {
    // Each line must print exactly what Node's console.log prints for it.
    const program = [
      'console.log({a: 1, b: [1, 2], m: new Map([["k", 1]])});',
      'console.log([1, "two", null, undefined, true, 1.5, -0, 10n]);',
      'console.log({ deep: { er: { still: { hidden: 1 } } }, list: [[1, [2, [3, [4]]]]] });',
      'console.log(new Set(["x", 2]), "plain string", 42);',
      'console.log({ q: "it\'s", "needs quotes": 1, nested: { s: "text" } });',
      'const o = { name: "o" }; o.self = o; console.log(o);',
      'console.log(new (class Point { constructor() { this.x = 1; this.y = 2; } })());',
      'function namedFn() {} console.log(namedFn, () => 1, [function () {}]);',
      'console.log([undefined, , 3], {}, [], new Map(), "end");',
      'console.log(new Map([[{ k: 1 }, ["v"]]]), [new Set([[1]])]);',
    ].join('\n');
    const expected = [];
    new Function('console', program)({ log: (...args) => expected.push(...util.format(...args).split('\n')) });

    const result = await run(page, program);
    expect(result.status, JSON.stringify(result.lines)).toBe('ok');
    expect(texts(result.lines)).toEqual(expected);
    expect(texts(result.lines, 'stderr')).toEqual([]);
  });

  test('console.table, nested collections, class instances and format specifiers print as in Node', async ({ page }) => {
    // Node's own console writes the expected output (util.inspect is the same code in both).
    const program = [
      'console.table([{ a: 1, b: "x" }, { a: 2, c: [1, 2, 3, 4] }, 7]);',
      'console.table({ row: { n: { deep: 1, more: 2, most: 3 } }, other: { n: 2 } });',
      'console.table(new Map([["k", { v: 1 }], [2, "two"]]));',
      'console.table(new Set(["s", 1]));',
      'console.table([{ a: 1, b: 2 }, { a: 3 }], ["b"]);',
      'console.log(new Map([["outer", new Map([["inner", new Set([1, new Set([2, [3, { four: 4 }]])])]])]]));',
      'const ring = { name: "ring", list: [] }; ring.list.push({ back: ring }, ring); console.log(ring, [ring]);',
      'class Animal { constructor() { this.legs = 4; } } class Dog extends Animal { #secret = 1; bark() {} }',
      'console.log(new Dog(), [new Dog()], { pet: new Dog() }, Dog, Animal);',
      'console.log("%o|%O", { a: [1, { b: 2 }] }, { a: [1, { b: 2 }] });',
      'console.log("%d %i %f", "42.5", 7.9, "3.25x", "extra", 1);',
      'console.log("%j %s %c%s %%", { j: [1] }, { s: 1 }, "color: red", "styled", Symbol("sym"));',
      'console.log("%s %d", 10n, 10n, -0, [-0]);',
      'console.dir({ a: { b: { c: { d: 1 } } } }, { depth: 0 });',
      'console.assert(1 === 2, "%s is not %s", "one", "two"); console.assert(false);',
    ].join('\n');
    const expected = { stdout: [], stderr: [] };
    const sink = (lines) => new Writable({
      write(chunk, _, done) { lines.push(...String(chunk).replace(/\n$/, '').split('\n')); done(); },
    });
    const nodeConsole = new Console({ stdout: sink(expected.stdout), stderr: sink(expected.stderr), colorMode: false });
    new Function('console', program)(nodeConsole);

    const result = await run(page, program);
    expect(result.status, JSON.stringify(result.lines)).toBe('ok');
    expect(texts(result.lines, 'stdout')).toEqual(expected.stdout);
    expect(texts(result.lines, 'stderr')).toEqual(expected.stderr);
  });

  test('an error with a cause prints as in Node, its frames in editor lines', async ({ page }) => {
    const program = [
      'function parse() { throw new TypeError("bad token", { cause: new RangeError("too long") }); }',
      'try { parse(); } catch (e) { console.log(new Error("could not parse", { cause: e })); }',
      'const quiet = new Error("no frames"); quiet.stack = "Error: no frames"; console.log([quiet]);',
    ].join('\n');
    const expected = [];
    new Function('console', program)({ log: (...args) => expected.push(...util.format(...args).split('\n')) });
    // Stacks differ between Node and a browser: compare without the frame lines (and Node's
    // "... N lines matching cause stack trace ...", which longer stacks get).
    const withoutFrames = (lines) => lines.filter((l) => !/^\s+(at |\.\.\. \d+ lines? matching)/.test(l));

    const result = await run(page, program);
    expect(result.status, JSON.stringify(result.lines)).toBe('ok');
    const printed = texts(result.lines);
    expect(withoutFrames(printed)).toEqual(withoutFrames(expected));
    expect(printed, 'the cause\'s frames should be in editor lines').toContain('      at parse (editor.js:1:26)');
    expect(printed, 'the error\'s frame should be in editor lines').toContain('    at editor.js:2:42 {');
    expect(printed.join('\n'), 'runner frames leaked into a printed stack').not.toMatch(/js-worker|inspect\.js/);
  });

  test('a runtime error shows its type, message and editor line on stderr', async ({ page }) => {
    const program = [
      'function lookup(o) {', // 1
      '  return o.missing.deeper;', // 2
      '}', // 3
      'console.log("before");', // 4
      'lookup({});', // 5
      'console.log("after");', // 6
    ].join('\n');
    const result = await run(page, program);
    expect(result.status).toBe('error');
    expect(result.summary).toMatch(/^Ada ran JavaScript · failed in \d+ ms$/);
    expect(texts(result.lines, 'stdout')).toEqual(['before']);
    const stderr = texts(result.lines, 'stderr');
    expect(stderr[0]).toBe("Uncaught TypeError: Cannot read properties of undefined (reading 'deeper')");
    // The frames: inside lookup (line 2), called from line 5, in the editor's numbering.
    expect(stderr.join('\n')).toMatch(/at lookup \(editor\.js:2:\d+\)/);
    expect(stderr.join('\n')).toMatch(/editor\.js:5:\d+/);
    expect(stderr.join('\n'), 'runner-internal frames leaked into the trace').not.toMatch(/js-worker|runner\.js/);
    expect(texts(result.lines)).not.toContain('after');
  });

  test('a thrown error and a syntax error point at the right line', async ({ page }) => {
    let result = await run(page, '\n\nthrow new RangeError("too far");\n');
    expect(result.status).toBe('error');
    expect(texts(result.lines, 'stderr')[0]).toBe('Uncaught RangeError: too far');
    expect(texts(result.lines, 'stderr').join('\n')).toMatch(/editor\.js:3:\d+/);

    result = await run(page, 'const a = 1;\nconst b = 2;\nlet c = (a + ;\n');
    expect(result.status).toBe('error');
    expect(texts(result.lines, 'stdout')).toEqual([]);
    expect(texts(result.lines, 'stderr')[0]).toMatch(/^Uncaught SyntaxError: /);
    expect(texts(result.lines, 'stderr').join('\n')).toMatch(/editor\.js:3:\d+/);
  });

  test('console.error and console.warn go to stderr, in order with stdout', async ({ page }) => {
    const result = await run(
      page,
      ['console.log("out 1");', 'console.error("err 1");', 'console.warn("warn 1");', 'console.log("out 2");'].join(
        '\n',
      ),
    );
    expect(result.status).toBe('ok');
    expect(result.lines).toEqual([
      { stream: 'stdout', text: 'out 1' },
      { stream: 'stderr', text: 'err 1' },
      { stream: 'stderr', text: 'warn 1' },
      { stream: 'stdout', text: 'out 2' },
    ]);
  });

  test('readline() reads the stdin box line by line, then null', async ({ page }) => {
    await page.getByTestId('stdin').fill('first line\nsecond line');
    const result = await run(page, 'console.log(readline());\nconsole.log(readline());\nconsole.log(readline());');
    expect(result.status).toBe('ok');
    expect(texts(result.lines)).toEqual(['first line', 'second line', 'null']);
  });

  test('output streams while the program runs', async ({ page }) => {
    await setCode(page, 'console.log("first");\nsetTimeout(() => console.log("second"), 1500);');
    await page.getByTestId('clear-output').click();
    await watchForFirstLine(page, 'first');
    await page.getByTestId('run-button').click();
    const result = await runEnded(page);
    expect(result.status).toBe('ok');
    expect(texts(result.lines)).toEqual(['first', 'second']);
    const seen = await page.evaluate(() => window.__firstSeen);
    expect(seen, '"first" was never seen on its own').not.toBeNull();
    expect(seen.lines, '"first" only appeared together with "second"').toEqual(['first']);
    expect(seen.status, '"first" only appeared once the run had ended').toBe('running');
  });

  test('Ctrl+Enter in the editor runs the code', async ({ page }) => {
    await setCode(page, 'console.log(6 * 7);');
    await page.locator('.monaco-editor .view-lines').click();
    await page.keyboard.press('Control+Enter');
    const result = await runEnded(page);
    expect(result.lines).toEqual([{ stream: 'stdout', text: '42' }]);
    expect(await editorText(page), 'Ctrl+Enter also typed into the editor').toBe('console.log(6 * 7);');
  });

  test('Clear empties the output panel', async ({ page }) => {
    const result = await run(page, 'console.log("one");\nconsole.error("two");');
    expect(result.lines).toHaveLength(2);
    await page.getByTestId('clear-output').click();
    await expect(page.getByTestId('output').locator('.line')).toHaveCount(0);
    await expect(page.getByTestId('run-status')).toHaveCount(0);
    await expect(page.getByTestId('output')).toHaveText('');
  });

  test('a run that prints thousands of lines scrolls through all of them, with only those in view in the page', async ({
    page,
  }) => {
    const COUNT = 9_990; // under the default 10,000-line cap
    const result = await run(page, `for (let i = 0; i < ${COUNT}; i++) console.log('line ' + i);`);
    expect(result.status).toBe('ok');
    const output = page.getByTestId('output');
    await expect(output).toHaveAttribute('data-lines', String(COUNT));
    // The page holds a window of lines, not all of them.
    const rendered = await output.locator('.line').count();
    expect(rendered, 'every line is in the page: the output is not windowed').toBeLessThan(500);
    expect(rendered).toBeGreaterThan(0);
    await expect(output.locator('.line').first()).toHaveText('line 0');

    // Scrolling reaches any line: the middle, then the very last one.
    const scrollTo = (fraction) =>
      output.evaluate((el, f) => {
        el.scrollTop = (el.scrollHeight - el.clientHeight) * f;
        el.dispatchEvent(new Event('scroll'));
      }, fraction);
    // The numbers of the lines fully inside the output area, top to bottom.
    const linesInView = () =>
      output.evaluate((el) => {
        const area = el.getBoundingClientRect();
        return [...el.querySelectorAll('.line')]
          .filter((line) => {
            const box = line.getBoundingClientRect();
            return box.top >= area.top && box.bottom <= area.bottom;
          })
          .map((line) => Number(line.textContent.replace('line ', '')));
      });
    await scrollTo(0.5);
    await expect
      .poll(async () => (await linesInView())[0], { message: 'the middle of the output is not shown' })
      .toBeGreaterThan(4_500);
    const middle = await linesInView();
    expect(middle[0]).toBeLessThan(5_500);
    expect(middle, 'the lines in view are not consecutive').toEqual(middle.map((_, i) => middle[0] + i));
    await scrollTo(1);
    await expect(output.locator('.line', { hasText: /^line 9989$/ })).toBeInViewport();
    expect(await output.locator('.line').count()).toBeLessThan(500);
    // Back to the top: the first line again.
    await scrollTo(0);
    await expect(output.locator('.line', { hasText: /^line 0$/ })).toBeInViewport();
  });

  test('Stop ends a running loop; Run works again afterwards', async ({ page }) => {
    await setCode(page, 'console.log("spinning");\nlet i = 0;\nwhile (true) { i++; }');
    await startRun(page);
    await expectStopsWithButton(page);
    const result = await run(page, 'console.log("after stop");');
    expect(result.status).toBe('ok');
    expect(texts(result.lines)).toEqual(['after stop']);
  });
});

test.describe('Python', () => {
  test.beforeEach(async ({ page, context, request }) => {
    test.setTimeout(180_000);
    await presetName(context, 'Ada');
    const { id } = await createSessionViaApi(request, 'python');
    await openSession(page, id);
    await waitForPython(page);
  });

  test('hello world prints on stdout and the status says who ran it', async ({ page }) => {
    const result = await run(page, 'print("Hello, world!")');
    expect(result.lines).toEqual([{ stream: 'stdout', text: 'Hello, world!' }]);
    expect(result.status).toBe('ok');
    expect(result.summary).toMatch(/^Ada ran Python · finished in \d+ ms$/);
  });

  test('a runtime error shows a traceback with editor line numbers on stderr', async ({ page }) => {
    const program = [
      'def lookup(d):', // 1
      '    return d["missing"]', // 2
      '', // 3
      'print("before")', // 4
      'lookup({})', // 5
      'print("after")', // 6
    ].join('\n');
    const result = await run(page, program);
    expect(result.status).toBe('error');
    expect(result.summary).toMatch(/^Ada ran Python · failed in \d+ ms$/);
    expect(texts(result.lines, 'stdout')).toEqual(['before']);
    const stderr = texts(result.lines, 'stderr');
    expect(stderr[0]).toBe('Traceback (most recent call last):');
    const trace = stderr.join('\n');
    expect(trace).toMatch(/File "<editor>", line 5, in <module>/);
    expect(trace).toMatch(/File "<editor>", line 2, in lookup/);
    expect(stderr.at(-1)).toBe("KeyError: 'missing'");
    expect(trace, "the runner's own frames leaked into the traceback").not.toMatch(/File "(?!<editor>)/);
    expect(texts(result.lines)).not.toContain('after');
  });

  test('a syntax error points at its line', async ({ page }) => {
    const result = await run(page, 'x = 1\ny = 2\nprint(x +)\n');
    expect(result.status).toBe('error');
    expect(texts(result.lines, 'stdout')).toEqual([]);
    const trace = texts(result.lines, 'stderr').join('\n');
    expect(trace).toMatch(/File "<editor>", line 3/);
    expect(texts(result.lines, 'stderr').at(-1)).toMatch(/^SyntaxError: /);
  });

  test('input() reads the stdin box line by line; past its end it raises EOFError', async ({ page }) => {
    await page.getByTestId('stdin').fill('Ada\n36');
    const program = [
      'name = input()', // 1
      'age = int(input())', // 2
      'print(f"{name} is {age}")', // 3
      'print("third:", input())', // 4
    ].join('\n');
    const result = await run(page, program);
    expect(result.status).toBe('error');
    expect(texts(result.lines, 'stdout')).toEqual(['Ada is 36']);
    const stderr = texts(result.lines, 'stderr');
    expect(stderr.join('\n')).toMatch(/File "<editor>", line 4, in <module>/);
    expect(stderr.at(-1)).toBe('EOFError: EOF when reading a line');
  });

  test('stderr output is marked as stderr, in order with stdout', async ({ page }) => {
    const result = await run(page, 'import sys\nprint("out 1")\nprint("err 1", file=sys.stderr)\nprint("out 2")');
    expect(result.status).toBe('ok');
    expect(result.lines).toEqual([
      { stream: 'stdout', text: 'out 1' },
      { stream: 'stderr', text: 'err 1' },
      { stream: 'stdout', text: 'out 2' },
    ]);
  });

  test('output streams while the program runs (print, sleep, print)', async ({ page }) => {
    await setCode(page, 'import time\nprint("first")\ntime.sleep(1.5)\nprint("second")');
    await page.getByTestId('clear-output').click();
    await watchForFirstLine(page, 'first');
    await page.getByTestId('run-button').click();
    const result = await runEnded(page);
    expect(result.status, JSON.stringify(result.lines)).toBe('ok');
    expect(texts(result.lines)).toEqual(['first', 'second']);
    const seen = await page.evaluate(() => window.__firstSeen);
    expect(seen, '"first" was never seen on its own').not.toBeNull();
    expect(seen.lines, '"first" only appeared together with "second"').toEqual(['first']);
    expect(seen.status, '"first" only appeared once the run had ended').toBe('running');
  });

  test('Stop ends a running loop; Run works again afterwards', async ({ page }) => {
    await setCode(page, 'print("spinning")\ni = 0\nwhile True:\n    i += 1');
    await startRun(page);
    await expectStopsWithButton(page);
    const result = await run(page, 'print("after stop")');
    expect(result.status).toBe('ok');
    expect(texts(result.lines)).toEqual(['after stop']);
  });
});

test('Run pressed while Python is still loading runs once it is ready', async ({ page, context, request }) => {
  test.setTimeout(180_000);
  await presetName(context, 'Ada');
  // Hold Pyodide's interpreter download until the run has been asked for.
  let release;
  const held = new Promise((resolve) => {
    release = resolve;
  });
  let intercepted = false;
  await context.route('**/pyodide.asm.wasm', async (route) => {
    intercepted = true;
    await held;
    await route.continue();
  });
  const { id } = await createSessionViaApi(request, 'python');
  await openSession(page, id);
  await expect
    .poll(() => intercepted, { message: "Pyodide's download never started (or the route never saw it)", ...PYTHON_LOAD })
    .toBe(true);
  await expect(page.getByTestId('python-status')).toHaveAttribute('data-state', 'loading');
  await expect(page.getByTestId('python-status')).toHaveText(/Python/);
  await setCode(page, 'print("ran after loading")');
  await startRun(page);
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-status', 'running');
  await expect(page.getByTestId('run-button'), 'Run is clickable while the first run waits').toBeDisabled();
  release();
  await waitForPython(page);
  const result = await runEnded(page, PYTHON_LOAD);
  expect(result.status, JSON.stringify(result.lines)).toBe('ok');
  expect(result.lines).toEqual([{ stream: 'stdout', text: 'ran after loading' }]);
});

// Python's memory snapshot (scripts/python-snapshot.mjs, runner/py/python.js): pairpad
// serves Python's memory right after start-up, and a fresh browser restores it
// ("Restoring Python…") instead of starting the interpreter.

const PYTHON_CHECK = 'import sys\nprint(sum(range(10)), sys.version_info[0])';

// What a program can see of the interpreter it runs in: a restored Python must be the one a
// start the long way gives (the string-hash seed is the one thing they may not share),
// including the browser's time zone (the snapshot is made on a machine in UTC).
const PYTHON_ENVIRONMENT = `import os, sys, json, time
print(json.dumps({
    "path": sys.path, "cwd": os.getcwd(), "environ": dict(os.environ), "argv": sys.argv,
    "modules": sorted(sys.modules), "recursion": sys.getrecursionlimit(),
    "flags": repr(sys.flags), "files": sorted(os.listdir("/")), "home": sorted(os.listdir("/home")),
    "zone": [time.tzname, time.timezone, time.altzone, time.daylight,
             time.strftime("%Z %z", time.localtime(0)), time.strftime("%Z %z", time.localtime(15_552_000))],
}, sort_keys=True))`;
const TIME_ZONE = 'America/New_York';

test.describe('Python memory snapshot', () => {
  test.use({ timezoneId: TIME_ZONE });
  test.beforeEach(async ({ context }) => {
    test.setTimeout(300_000);
    await presetName(context, 'Ada');
    await recordPythonStatuses(context);
  });

  test('a fresh browser restores Python from the snapshot pairpad serves, and gets the same Python as the long way', async ({
    page,
    browser,
    browserLog,
    request,
  }) => {
    await openSession(page, (await createSessionViaApi(request, 'python')).id);
    await waitForPython(page);
    const statuses = await page.evaluate(() => window.__pythonStatuses);
    const restoring = statuses.indexOf('Restoring Python…');
    expect(restoring, `statuses: ${JSON.stringify(statuses)}`).toBeGreaterThan(-1);
    expect(statuses.indexOf('Starting Python…', restoring), `statuses: ${JSON.stringify(statuses)}`).toBe(-1);
    const restored = await run(page, PYTHON_ENVIRONMENT, PYTHON_LOAD);
    expect(restored.status, JSON.stringify(restored.lines)).toBe('ok');

    // Another browser that gets no snapshot starts Python the long way.
    const context = await browser.newContext({ timezoneId: TIME_ZONE });
    try {
      await browserLog.watchContext(context);
      await presetName(context, 'Bob');
      await recordPythonStatuses(context);
      await withoutSnapshot(context);
      const other = await context.newPage();
      await openSession(other, (await createSessionViaApi(request, 'python')).id);
      await waitForPython(other);
      expect(await other.evaluate(() => window.__pythonStatuses)).not.toContain('Restoring Python…');
      const longWay = await run(other, PYTHON_ENVIRONMENT, PYTHON_LOAD);
      expect(longWay.status, JSON.stringify(longWay.lines)).toBe('ok');
      expect(JSON.parse(texts(restored.lines, 'stdout').join('\n'))).toEqual(
        JSON.parse(texts(longWay.lines, 'stdout').join('\n')),
      );
    } finally {
      await context.close();
    }
  });

  test('a damaged snapshot is not restored: Python starts the long way and runs', async ({ page, context, request }) => {
    // Pyodide's snapshot header (its magic number) followed by 2 MiB of zeros.
    const words = new Uint32Array((2 << 20) / 4);
    words[0] = SNAPSHOT_MAGIC;
    await withSnapshotBytes(context, Buffer.from(words.buffer));

    await openSession(page, (await createSessionViaApi(request, 'python')).id);
    await waitForPython(page);
    const statuses = await page.evaluate(() => window.__pythonStatuses);
    const restoring = statuses.indexOf('Restoring Python…');
    expect(restoring, `statuses: ${JSON.stringify(statuses)}`).toBeGreaterThan(-1);
    expect(statuses.indexOf('Starting Python…', restoring), `statuses: ${JSON.stringify(statuses)}`).toBeGreaterThan(restoring);
    const result = await run(page, PYTHON_CHECK, PYTHON_LOAD);
    expect(result.lines).toEqual([{ stream: 'stdout', text: '45 3' }]);
  });
});

test('a run is shown to everyone in the session with the name of who ran it, streaming while it goes', async ({
  browser,
  browserLog,
  request,
}) => {
  test.setTimeout(90_000);
  const { id } = await createSessionViaApi(request, 'javascript');
  const contexts = [];
  const person = async (name) => {
    const context = await browser.newContext();
    contexts.push(context);
    await browserLog.watchContext(context);
    await presetName(context, name);
    const page = await context.newPage();
    await openSession(page, id);
    return page;
  };
  try {
    const ada = await person('Ada');
    const bob = await person('Bob');
    await expect(ada.getByTestId('users-count')).toHaveText('2', RUN_END);

    // Ada runs; Bob sees her output, its streams, and that it was Ada.
    const mine = await run(ada, 'console.log("from Ada");\nconsole.error("Ada\'s warning");\nconsole.log([1, 2]);');
    expect(mine.status).toBe('ok');
    await expect(bob.getByTestId('run-status'), "Bob's panel never showed Ada's run").toHaveAttribute(
      'data-status',
      'ok',
      RUN_END,
    );
    await expect(bob.getByTestId('run-status')).toHaveText(/^Ada ran JavaScript · finished in \d+ ms$/);
    expect(await outputLines(bob)).toEqual(mine.lines);
    expect(await outputLines(bob)).toEqual([
      { stream: 'stdout', text: 'from Ada' },
      { stream: 'stderr', text: "Ada's warning" },
      { stream: 'stdout', text: '[ 1, 2 ]' },
    ]);

    // Bob runs something that fails; Ada's panel switches to Bob's run.
    const his = await run(bob, 'console.log("from Bob");\nnull.x;');
    expect(his.status).toBe('error');
    await expect(ada.getByTestId('run-status'), "Ada's panel never showed Bob's run").toHaveText(
      /^Bob ran JavaScript · failed in \d+ ms$/,
      RUN_END,
    );
    await expect(ada.getByTestId('run-status')).toHaveAttribute('data-status', 'error');
    expect(await outputLines(ada)).toEqual(his.lines);
    expect(texts(his.lines, 'stderr')[0]).toMatch(/^Uncaught TypeError: /);

    // Ada's next run prints, then keeps going: Bob watches its output stream
    // while it runs, and sees how it ended once she stops it.
    await setCode(ada, 'console.log("streaming to Bob");\nlet n = 0;\nsetInterval(() => console.log(`tick ${n++}`), 50);');
    await startRun(ada);
    await expect(bob.getByTestId('run-status'), "Bob does not see Ada's run going").toHaveText(
      'Ada is running JavaScript…',
      RUN_END,
    );
    await expect(bob.getByTestId('output').locator('.line').first()).toHaveText('streaming to Bob', RUN_END);
    await expect(bob.getByTestId('output').locator('.line').filter({ hasText: 'tick 3' })).toHaveCount(1, RUN_END);
    await expect(ada.getByTestId('run-status'), 'the run ended before Bob saw its output').toHaveAttribute(
      'data-status',
      'running',
    );
    await ada.getByTestId('stop-button').click();
    const stopped = await runEnded(ada);
    expect(stopped.status).toBe('stopped');
    await expect(bob.getByTestId('run-status')).toHaveAttribute('data-status', 'stopped', RUN_END);
    await expect.poll(() => outputLines(bob), { message: "Bob's panel does not show the stopped run's record" }).toEqual(
      stopped.lines,
    );

    // Someone who joins later sees the latest run too.
    const cyd = await person('Cyd');
    await expect(cyd.getByTestId('run-status'), 'a late joiner does not see the latest run').toHaveText(
      /^Ada ran JavaScript · stopped in \d+ ms$/,
      RUN_END,
    );
    expect(await outputLines(cyd)).toEqual(stopped.lines);
  } finally {
    for (const context of contexts) await context.close();
  }
});

// --- shared by the tests above -------------------------------------------------------------

/**
 * In the page: records the panel's lines and run status the first time a line
 * reading `text` is in the output (a MutationObserver, so the snapshot is exact).
 */
async function watchForFirstLine(page, text) {
  await page.evaluate((wanted) => {
    const output = document.querySelector('[data-testid="output"]');
    window.__firstSeen = null;
    const check = () => {
      if (window.__firstSeen) return;
      const lines = [...output.querySelectorAll('.line')].map((el) => el.textContent);
      if (lines.includes(wanted)) {
        const status = output.querySelector('[data-testid="run-status"]');
        window.__firstSeen = { lines, status: status ? status.getAttribute('data-status') : null };
      }
    };
    new MutationObserver(check).observe(output, {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
    });
  }, text);
}

/** With a loop printing "spinning" running: Stop ends it and the buttons flip back. */
async function expectStopsWithButton(page) {
  const output = page.getByTestId('output');
  await expect(output.locator('.line', { hasText: 'spinning' }), 'the loop never printed').toBeVisible(RUN_END);
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-status', 'running');
  await expect(page.getByTestId('run-button'), 'Run is clickable during a run').toBeDisabled();
  await expect(page.getByTestId('stop-button')).toBeEnabled();
  await page.getByTestId('stop-button').click();
  const result = await runEnded(page, { timeout: 8_000 });
  expect(result.status, JSON.stringify(result.lines)).toBe('stopped');
  expect(result.summary).toMatch(/^Ada ran (JavaScript|Python) · stopped in \d+ ms$/);
  expect(texts(result.lines, 'stdout')[0]).toBe('spinning');
  expect(result.lines.at(-1)).toEqual({ stream: 'stderr', text: '[stopped]' });
  await expect(page.getByTestId('run-button')).toBeEnabled();
  await expect(page.getByTestId('stop-button')).toBeDisabled();
}
