// A run cannot change a later run (issue 11, item 10), on a server of our own with a short
// time limit (`--run-time-limit-secs 3`, end2end/measure/server.mjs). Whatever a Python run
// leaves behind (a js.setTimeout callback that spins, an interval or an asyncio task that
// prints, message listeners, a patched print or sys.stdout) never runs during a later run nor
// shows in its output: the next run prints exactly its own lines and ends normally, a run
// that hits the time limit still gets the notice, and Stop still recovers. Ordinary runs keep
// the loaded interpreter. The same for timers a JavaScript run leaves.
//
// A run that left something behind may make the next one wait while Python restarts, so the
// run after it gets Python's load time.

import { test, expect } from '../support/fixtures.mjs';
import { RUN_END, setCode, startRun, runEnded, run } from '../support/run-panel.mjs';
import { useOwnServer, openOwnSession } from '../support/own-server.mjs';

const TIME_LIMIT_SECS = 3;
const PYTHON_LOAD = { timeout: 120_000 };
const NOTICE = { stream: 'stderr', text: `[time limit exceeded: the program was stopped after ${TIME_LIMIT_SECS * 1000} ms]` };

const own = useOwnServer(['--run-time-limit-secs', String(TIME_LIMIT_SECS)]);

/** Creates a session on our server, opens it and waits for the editor (and Python). */
function openNewSession(page, context, language) {
  return openOwnSession(page, context, own.server, language, PYTHON_LOAD);
}

const stdout = (...texts) => texts.map((text) => ({ stream: 'stdout', text }));

/** Runs `code`, which must end normally printing exactly `lines` (stdout). */
async function expectRun(page, code, lines, wait = PYTHON_LOAD) {
  const result = await run(page, code, wait);
  expect(result.status, JSON.stringify(result.lines)).toBe('ok');
  expect(result.lines).toEqual(stdout(...lines));
}

/** A later run that waits a while in the event loop (where leftovers would get their turn). */
const PY_LATER = 'import asyncio\nawait asyncio.sleep(0.5)\nprint("later")';
const PY_LOOP = 'print("looping")\nwhile True:\n    pass';

const PY_SCHEDULE = 'import js\nfrom pyodide.ffi import create_proxy\n';
// The program from the bug report: a callback that builds an endless list.
const PY_ENDLESS_LIST = `${PY_SCHEDULE}js.setTimeout(create_proxy(lambda: [0 for _ in iter(int, 1)]), 0)\nprint("scheduled")`;
// A callback that spins and swallows the KeyboardInterrupt meant to stop it.
const PY_SPINNER =
  `${PY_SCHEDULE}def spin():\n    while True:\n        try:\n            while True:\n                pass\n` +
  `        except BaseException:\n            pass\njs.setTimeout(create_proxy(spin), 0)\nprint("scheduled")`;

// ------------------------------------------------------------------------------------------

test.describe('Python', () => {
  test.beforeEach(async ({ page, context }) => {
    test.setTimeout(300_000);
    await openNewSession(page, context, 'python');
  });

  test('a js.setTimeout callback left spinning does not hold up later runs or their time limit', async ({ page }) => {
    for (const leftover of [PY_ENDLESS_LIST, PY_SPINNER]) {
      await expectRun(page, leftover, ['scheduled'], RUN_END);
      await expectRun(page, 'print("second")', ['second']);
    }

    await expectRun(page, PY_SPINNER, ['scheduled'], RUN_END);
    const loop = await run(page, PY_LOOP, PYTHON_LOAD);
    expect(loop.status, JSON.stringify(loop.lines)).toBe('timeout');
    expect(loop.summary).toMatch(/^Ada ran Python · stopped: time limit in \d+ ms$/);
    expect(loop.lines).toEqual([...stdout('looping'), NOTICE]);

    await expectRun(page, 'print("after the limit")', ['after the limit']);
  });

  test('intervals, asyncio tasks and message listeners a run leaves never print into later runs', async ({
    page,
  }) => {
    const chatter = 'import asyncio\nasync def chatter():\n    while True:\n        print("leaked task")\n' +
      '        await asyncio.sleep(0.02)\n';
    const leftovers = {
      'js.setInterval': `${PY_SCHEDULE}js.setInterval(create_proxy(lambda: print("leaked interval")), 20)\nprint("left it")`,
      'asyncio task from a plain run': `${chatter}asyncio.ensure_future(chatter())\nprint("left it")`,
      'asyncio task from an async run': `${chatter}asyncio.create_task(chatter())\nawait asyncio.sleep(0)\nprint("left it")`,
      // The page's next "run" message reaches the worker's onmessage and message listeners.
      'message listeners': `${PY_SCHEDULE}js.onmessage = create_proxy(lambda e: print("leaked onmessage"))\n` +
        'js.addEventListener("message", create_proxy(lambda e: print("leaked listener")))\n' +
        'channel = js.MessageChannel.new()\n' +
        'channel.port1.onmessage = create_proxy(lambda e: print("leaked port message"))\n' +
        'js.setTimeout(create_proxy(lambda: channel.port2.postMessage(1)), 200)\nprint("left it")',
    };
    for (const [name, leftover] of Object.entries(leftovers)) {
      await test.step(name, async () => {
        const left = await run(page, leftover, RUN_END);
        expect(left.status, JSON.stringify(left.lines)).toBe('ok');
        expect(left.lines).toContainEqual(stdout('left it')[0]);
        await expectRun(page, PY_LATER, ['later']);
        await expectRun(page, 'print("and later")', ['and later']);
      });
    }
  });

  test("a run that patches print, sys.stdout or a module does not change the next run's output", async ({ page }) => {
    const patches = [
      'import builtins\nbuiltins.print = lambda *args, **kwargs: None',
      'import sys, io\nsys.stdout = io.StringIO()\nsys.stderr = io.StringIO()',
      'import sys\nsys.stdout.write = lambda text: len(text)',
      'import sys\nsys.stdout = sys.stderr',
    ];
    const check = 'import sys\nprint("plain print")\nprint("to stderr", file=sys.stderr)\nsys.stdout.write("write\\n")';
    for (const patch of patches) {
      await test.step(patch.split('\n').at(-1), async () => {
        const patched = await run(page, `${patch}\nprint("patched")`, RUN_END);
        expect(patched.status, JSON.stringify(patched.lines)).toBe('ok');
        const next = await run(page, check, PYTHON_LOAD);
        expect(next.status, JSON.stringify(next.lines)).toBe('ok');
        expect(next.lines).toEqual([
          { stream: 'stdout', text: 'plain print' },
          { stream: 'stderr', text: 'to stderr' },
          { stream: 'stdout', text: 'write' },
        ]);
      });
    }
    await run(page, 'import json, math\njson.dumps = lambda *args, **kwargs: "patched"\nmath.pi = 3', RUN_END);
    await expectRun(page, 'import json, math\nprint(json.dumps([math.pi]))', ['[3.141592653589793]']);
  });

  test('Stop recovers after a run left a spinning callback, and the next run works', async ({ page }) => {
    // Stop while the next program runs.
    await expectRun(page, PY_SPINNER, ['scheduled'], RUN_END);
    await setCode(page, 'print("spinning")\nwhile True:\n    pass');
    await startRun(page);
    await expect(page.getByTestId('output').locator('.line', { hasText: 'spinning' })).toBeVisible(PYTHON_LOAD);
    await page.getByTestId('stop-button').click();
    const stopped = await runEnded(page);
    expect(stopped.status, JSON.stringify(stopped.lines)).toBe('stopped');
    expect(stopped.lines).toEqual([...stdout('spinning'), { stream: 'stderr', text: '[stopped]' }]);
    await expectRun(page, 'print("after stop")', ['after stop']);

    // Stop as soon as the next run is asked for (it may still be waiting for Python).
    await expectRun(page, PY_SPINNER, ['scheduled'], RUN_END);
    await setCode(page, 'print("spinning")\nwhile True:\n    pass');
    await startRun(page);
    await page.getByTestId('stop-button').click();
    const early = await runEnded(page);
    expect(early.status, JSON.stringify(early.lines)).toBe('stopped');
    expect(early.lines.at(-1)).toEqual({ stream: 'stderr', text: '[stopped]' });
    await expect(page.getByTestId('run-button')).toBeEnabled();
    await expectRun(page, 'print("after stop")', ['after stop']);
  });

  test('ordinary runs keep the loaded interpreter and each starts afresh', async ({ page }) => {
    // In the page: every state the Python status shows from now on.
    await page.evaluate(() => {
      const status = document.querySelector('[data-testid="python-status"]');
      window.__pythonStates = [];
      new MutationObserver(() => window.__pythonStates.push(status.getAttribute('data-state'))).observe(status, {
        attributes: true,
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    await expectRun(page, 'x = 41\nprint(x + 1)', ['42'], RUN_END);
    const undefinedName = await run(page, 'print(x)');
    expect(undefinedName.status).toBe('error');
    expect(undefinedName.lines.at(-1)).toEqual({ stream: 'stderr', text: "NameError: name 'x' is not defined" });
    await expectRun(
      page,
      'import collections, dataclasses, functools, json, math, random, re\n' +
        '@dataclasses.dataclass\nclass P:\n    x: int\nprint(P(math.isqrt(49)), json.dumps(re.findall("b", "abcb")))\n' +
        'print(collections.Counter("abca").most_common(1))',
      ['P(x=7) ["b", "b"]', "[('a', 2)]"],
      RUN_END,
    );
    await expectRun(page, 'import asyncio\nawait asyncio.sleep(0.1)\nprint("slept")', ['slept'], RUN_END);
    await expectRun(page, 'import sys\nsys.setrecursionlimit(50)\nprint("limited")', ['limited'], RUN_END);
    await expectRun(page, 'def depth(n):\n    return n and depth(n - 1)\nprint(depth(500))', ['0'], RUN_END);
    const states = await page.evaluate(() => window.__pythonStates);
    expect(states, 'Python was reloaded between ordinary runs').not.toContain('loading');
  });
});

// ------------------------------------------------------------------------------------------

test.describe('JavaScript', () => {
  test.beforeEach(async ({ page, context }) => {
    test.setTimeout(120_000);
    await openNewSession(page, context, 'javascript');
  });

  const JS_LATER = 'await new Promise((resolve) => setTimeout(resolve, 500));\nconsole.log("later");';

  test('timers a run leaves never print into a later run', async ({ page }) => {
    // The run ends early (an uncaught error) with its timers still pending.
    const ended = await run(
      page,
      'setInterval(() => console.log("leaked interval"), 20);\n' +
        'setTimeout(() => console.log("leaked timeout"), 200);\n' +
        'setTimeout(() => { for (;;) {} }, 0);\n' +
        'throw new Error("ended early");',
    );
    expect(ended.status, JSON.stringify(ended.lines)).toBe('error');
    await expectRun(page, JS_LATER, ['later'], RUN_END);

    // Timers keep a JavaScript run going: to the time limit, when they are stopped with it.
    for (const leftover of [
      'setInterval(() => console.log("tick"), 200);\nconsole.log("started");',
      'setTimeout(() => { for (;;) {} }, 0);\nconsole.log("started");',
    ]) {
      const limited = await run(page, leftover, { timeout: TIME_LIMIT_SECS * 1000 + 15_000 });
      expect(limited.status, JSON.stringify(limited.lines)).toBe('timeout');
      expect(limited.lines[0]).toEqual(stdout('started')[0]);
      expect(limited.lines.at(-1)).toEqual(NOTICE);
      await expectRun(page, JS_LATER, ['later'], RUN_END);
    }
  });
});
