// Firefox: running code. A JavaScript run prints on the page that ran it and on
// the other person's page; Python (Pyodide, served by pairpad itself) loads and
// prints; an endless loop in either language is stopped at the time limit with
// a notice, and the next run works; a Python page restores Python from the
// memory snapshot pairpad serves, and starts it the long way on a site without one.
//
// The server has a 2 s run time limit (`--run-time-limit-secs 2`), as the
// Chromium suite's run-limits spec uses. Every wait is bounded; nothing asserts
// a time.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serverForFile } from './support/server.mjs';
import { withPeople, PYTHON_LOAD, RUN_END } from './support/browser.mjs';
import { OwnServer } from '../measure/server.mjs';
import { PYODIDE_DIR } from '../support/env.mjs';

const TIME_LIMIT_SECS = 2;
const own = serverForFile({ extraArgs: ['--run-time-limit-secs', String(TIME_LIMIT_SECS)] });

const LABEL = { javascript: 'JavaScript', python: 'Python' };

/** Opens a new `language` session for each of `names`; for Python, waits until it is ready. */
async function inSession(language, names, body) {
  const { server } = own;
  const id = await server.createSession(language);
  await withPeople(
    names,
    async (people) => {
      for (const person of people) await person.openSession(`${server.origin}/s/${id}`);
      if (language === 'python') {
        await people[0].waitForAttr('python-status', 'data-state', 'ready', {
          timeout: PYTHON_LOAD,
          message: 'Python never finished loading',
        });
        assert.equal(await people[0].text('python-status'), 'Python ready');
      }
      await body(...people);
    },
    { server },
  );
}

test('a JavaScript run shows its output on the page that ran it and on the other page', { timeout: 120_000 }, async () => {
  await inSession('javascript', ['Ada', 'Bob'], async (a, b) => {
    await a.waitForText('users-count', '2');
    const mine = await a.run('console.log(1+1)');
    assert.equal(mine.status, 'ok', JSON.stringify(mine));
    assert.deepEqual(mine.lines, [{ stream: 'stdout', text: '2' }]);
    assert.match(mine.summary, /^Ada ran JavaScript · finished in \d+ ms$/);

    await b.waitForAttr('run-status', 'data-status', 'ok', { timeout: RUN_END, message: "Bob's panel never showed Ada's run" });
    assert.match(await b.text('run-status'), /^Ada ran JavaScript · finished in \d+ ms$/);
    assert.deepEqual(await b.outputLines(), mine.lines);
  });
});

test('a Python run prints its result', { timeout: 150_000 }, async () => {
  await inSession('python', ['Ada'], async (a) => {
    const result = await a.run('print(sum(range(10)))');
    assert.equal(result.status, 'ok', JSON.stringify(result));
    assert.deepEqual(result.lines, [{ stream: 'stdout', text: '45' }]);
    assert.match(result.summary, /^Ada ran Python · finished in \d+ ms$/);
  });
});

test('a Python page restores Python from the memory snapshot pairpad serves', { timeout: 300_000 }, async () => {
  const { server } = own;
  await withPeople(['Ada'], async ([a]) => {
    const statuses = await openPythonSession(a, server);
    const restoring = statuses.indexOf('Restoring Python…');
    assert.ok(restoring >= 0, `Python was not restored: ${JSON.stringify(statuses)}`);
    assert.equal(statuses.indexOf('Starting Python…', restoring), -1, `Python started the long way after all: ${JSON.stringify(statuses)}`);
    const result = await a.run('print(sum(range(10)))');
    assert.deepEqual(result.lines, [{ stream: 'stdout', text: '45' }]);
  });
});

/**
 * Opens a new Python session on `server` and waits until Python is ready; returns every
 * text the Python status showed on the way.
 */
async function openPythonSession(person, server) {
  await person.open(`${server.origin}/s/${await server.createSession('python')}`);
  // Python starts once the editor is up: note every status text from now on.
  await person.eval(() => {
    window.__pythonStatuses = [];
    const note = () => {
      const text = document.querySelector('[data-testid="python-status"]')?.textContent;
      if (text && window.__pythonStatuses.at(-1) !== text) window.__pythonStatuses.push(text);
    };
    note();
    new MutationObserver(note).observe(document, { subtree: true, childList: true, characterData: true });
  });
  await person.waitForEditor();
  await person.waitForAttr('python-status', 'data-state', 'ready', {
    timeout: PYTHON_LOAD,
    message: 'Python never finished loading',
  });
  return person.eval(() => window.__pythonStatuses);
}

/** A copy of the built site (symbolic links) without Python's memory snapshot. */
function siteWithoutSnapshot(site) {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'pairpad-site-'));
  const pyodide = PYODIDE_DIR.replace(/^\/|\/$/g, ''); // vendor/pyodide-<version>
  const link = (from, to) => {
    fs.mkdirSync(to, { recursive: true });
    for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
      const source = path.join(from, entry.name);
      const target = path.join(to, entry.name);
      const relative = path.relative(site, source);
      if (entry.name.startsWith('memory-snapshot.bin')) continue;
      if (entry.isDirectory() && (pyodide === relative || pyodide.startsWith(`${relative}/`))) link(source, target);
      else fs.symlinkSync(source, target);
    }
  };
  link(site, copy);
  return copy;
}

test('on a site without the snapshot, Python starts the long way and runs', { timeout: 300_000 }, async () => {
  const site = siteWithoutSnapshot(own.server.siteRoot);
  const server = new OwnServer({ siteRoot: site });
  try {
    await server.start();
    await withPeople(
      ['Ada'],
      async ([a]) => {
        const statuses = await openPythonSession(a, server);
        assert.ok(!statuses.includes('Restoring Python…'), `there was no snapshot to restore: ${JSON.stringify(statuses)}`);
        const result = await a.run('import time\nprint(sum(range(10)), time.daylight in (0, 1))');
        assert.deepEqual(result.lines, [{ stream: 'stdout', text: '45 True' }]);
      },
      { server },
    );
  } finally {
    await server.stop('SIGINT');
    await server.dispose();
    fs.rmSync(site, { recursive: true, force: true });
  }
});

const LOOPS = {
  javascript: { loop: 'while(true){}', after: 'console.log("after the loop")' },
  python: { loop: 'while True:\n    pass\n', after: 'print("after the loop")' },
};

for (const [language, { loop, after }] of Object.entries(LOOPS)) {
  const label = LABEL[language];
  test(`${label}: an endless loop ends at the time limit with a notice, and the next run works`, { timeout: 150_000 }, async () => {
    await inSession(language, ['Ada'], async (a) => {
      const result = await a.run(loop, TIME_LIMIT_SECS * 1000 + 15_000);
      assert.equal(result.status, 'timeout', JSON.stringify(result));
      assert.match(result.summary, new RegExp(`^Ada ran ${label} · stopped: time limit in \\d+ ms$`));
      assert.deepEqual(
        result.lines.filter((line) => line.stream === 'stderr'),
        [{ stream: 'stderr', text: `[time limit exceeded: the program was stopped after ${TIME_LIMIT_SECS * 1000} ms]` }],
      );
      assert.equal(await a.byTestId('run-button').isEnabled(), true, 'Run stays disabled after the time limit');
      assert.equal(await a.byTestId('stop-button').isEnabled(), false, 'Stop stays enabled after the time limit');

      // The next run works (for Python: in an interpreter that survived or was restarted).
      const next = await a.run(after, language === 'python' ? PYTHON_LOAD : RUN_END);
      assert.equal(next.status, 'ok', JSON.stringify(next));
      assert.deepEqual(next.lines, [{ stream: 'stdout', text: 'after the loop' }]);
    });
  });
}
