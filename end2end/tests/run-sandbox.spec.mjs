// User code cannot leave its sandbox: each way out of the JavaScript worker
// (fetch, XMLHttpRequest, WebSocket, EventSource, importScripts, nested workers,
// sendBeacon, IndexedDB, Cache Storage, document, localStorage) and of the
// Python worker (the `js` module's fetch/XMLHttpRequest/WebSocket/…, js.eval,
// pyodide.http, urllib) fails with an error shown in the output panel, and
// nothing reaches the server:
//  - no request the browser makes (page or worker) carries the probe's unique
//    token (Playwright sees worker requests too: checked with Pyodide's own
//    downloads), and
//  - the server's HTTP response counter (/metrics) grows by exactly the requests
//    the browser was seen to make, so nothing arrived behind Playwright's back.
//
// Each probe prints "ESCAPED" if the forbidden call went through.

import { randomUUID } from 'node:crypto';
import { test, expect, createSessionViaApi } from '../support/fixtures.mjs';
import { RUN_END, texts, openSession, presetName, setCode, outputLines, startRun, runEnded, run } from '../support/run-panel.mjs';
import { ORIGIN, HOST, PYODIDE_DIR } from '../support/env.mjs';
import { withoutSnapshot, recordPythonStatuses } from '../support/python-snapshot.mjs';

const PYTHON_LOAD = { timeout: 120_000 };

// --- what reaches the network and the server ----------------------------------------------

/**
 * Every request and WebSocket the browser makes in `context` (pages and their workers).
 * A request the browser itself blocked for breaking a CSP never left it: it is marked
 * `blocked` (and counts as nothing below).
 */
function watchNetwork(context) {
  const seen = [];
  const entries = new Map();
  context.on('request', (r) => {
    const entry = { kind: 'request', url: r.url(), blocked: false };
    entries.set(r, entry);
    seen.push(entry);
  });
  context.on('requestfailed', (r) => {
    if (r.failure()?.errorText === 'csp' && entries.has(r)) entries.get(r).blocked = true;
  });
  context.on('page', (page) => page.on('websocket', (ws) => seen.push({ kind: 'websocket', url: ws.url() })));
  for (const page of context.pages()) page.on('websocket', (ws) => seen.push({ kind: 'websocket', url: ws.url() }));
  return seen;
}

/** The server's total of HTTP responses (all statuses) from /metrics. */
async function responsesServed(request) {
  const response = await request.get('/metrics');
  expect(response.status()).toBe(200);
  let total = 0;
  for (const line of (await response.text()).split('\n')) {
    const m = line.match(/^pairpad_http_responses_total\{status="\d+"\} (\d+)$/);
    if (m) total += Number(m[1]);
  }
  return total;
}

/**
 * A baseline of the server's response count; `expectNothingElseArrived()` then
 * checks that the count grew by exactly our own scrapes plus the requests the
 * browser was seen to make to the server since. Requests for the versioned files
 * under /vendor/ (cached for good) may or may not reach the server.
 */
async function serverBaseline(request, seen) {
  const base = await responsesServed(request);
  const seenAtBase = seen.length;
  let scrapes = 1; // the baseline scrape itself is counted after it answered
  return {
    async expectNothingElseArrived(what) {
      let unexplained;
      await expect
        .poll(
          async () => {
            const now = await responsesServed(request);
            const browser = seen
              .slice(seenAtBase)
              .filter((s) => !s.blocked && (s.url.startsWith(ORIGIN) || s.url.includes(HOST)));
            const cacheable = browser.filter((s) => new URL(s.url).pathname.startsWith('/vendor/')).length;
            const extra = now - base - scrapes - (browser.length - cacheable);
            scrapes += 1;
            unexplained = extra < 0 ? extra : Math.max(0, extra - cacheable);
            return unexplained;
          },
          { message: `the server answered requests the browser did not show (${what})`, timeout: 5_000 },
        )
        .toBe(0);
    },
  };
}

// --- the probes ---------------------------------------------------------------------------

/**
 * JavaScript ways out. `api` must be named in the error. Each prints ESCAPED
 * if the call went through.
 */
const JS_ESCAPES = [
  { api: 'fetch', code: (t) => `fetch("/api/health?probe=${t}").then((r) => console.log("ESCAPED", r.status));` },
  {
    api: 'fetch',
    name: 'fetch from the prototype chain',
    code: (t) =>
      `const proto = Object.getPrototypeOf(Object.getPrototypeOf(globalThis));\n` +
      `if (typeof proto.fetch !== "function") throw new TypeError("fetch is not on WorkerGlobalScope.prototype");\n` +
      `proto.fetch.call(globalThis, "/api/health?probe=${t}").then(() => console.log("ESCAPED"));`,
  },
  {
    api: 'XMLHttpRequest',
    code: (t) =>
      `const x = new XMLHttpRequest();\nx.open("GET", "/api/health?probe=${t}", false);\n` +
      `x.send();\nconsole.log("ESCAPED", x.status);`,
  },
  {
    api: 'WebSocket',
    code: (t) => `const ws = new WebSocket("ws://${HOST}/ws/${t}");\nws.onopen = () => console.log("ESCAPED");`,
  },
  {
    api: 'EventSource',
    code: (t) => `const es = new EventSource("/api/health?probe=${t}");\nes.onopen = () => console.log("ESCAPED");`,
  },
  { api: 'importScripts', code: (t) => `importScripts("/pkg/pairpad.js?probe=${t}");\nconsole.log("ESCAPED");` },
  {
    api: 'Worker',
    code: (t) => `const w = new Worker("/runner/js-worker.js?probe=${t}");\nconsole.log("ESCAPED");`,
  },
  {
    // A second copy of the runner would reach its wasm; the worker's CSP allows no script
    // source ("Failed to fetch dynamically imported module").
    api: 'imported',
    name: 'import() of the runner bundle',
    code: (t) => `await import("/runner/js-worker.js?probe=${t}");\nconsole.log("ESCAPED");`,
  },
  {
    api: 'sendBeacon',
    code: (t) => `navigator.sendBeacon("/api/health?probe=${t}", "x");\nconsole.log("ESCAPED");`,
  },
  {
    api: 'indexedDB',
    code: (t) => `const req = indexedDB.open("probe-${t}");\nreq.onsuccess = () => console.log("ESCAPED");`,
  },
  { api: 'caches', code: (t) => `caches.open("probe-${t}").then(() => console.log("ESCAPED"));` },
  { api: 'document', code: (t) => `document.title = "${t}";\nconsole.log("ESCAPED");` },
  { api: 'localStorage', code: (t) => `localStorage.setItem("probe", "${t}");\nconsole.log("ESCAPED");` },
];

/** Python ways out; `api` must be named in the error (null: any error will do). */
const PY_ESCAPES = [
  {
    name: 'js.fetch',
    api: 'fetch',
    code: (t) => `import js\nprint("ESCAPED", js.fetch("/api/health?probe=${t}"))`,
  },
  {
    name: 'from js import fetch',
    api: 'fetch',
    code: (t) => `from js import fetch\nfetch("/api/health?probe=${t}")\nprint("ESCAPED")`,
  },
  {
    name: 'pyodide.http.pyfetch',
    api: 'pyodide.http',
    code: (t) =>
      `from pyodide.http import pyfetch\nr = await pyfetch("/api/health?probe=${t}")\nprint("ESCAPED", r.status)`,
  },
  {
    name: 'pyodide.http.open_url',
    api: 'pyodide.http',
    code: (t) => `from pyodide.http import open_url\nprint("ESCAPED", open_url("/api/health?probe=${t}").read())`,
  },
  {
    name: 'js.XMLHttpRequest',
    api: 'XMLHttpRequest',
    code: (t) =>
      `import js\nx = js.XMLHttpRequest.new()\nx.open("GET", "/api/health?probe=${t}", False)\n` +
      `x.send()\nprint("ESCAPED", x.status)`,
  },
  {
    name: 'js.WebSocket',
    api: 'WebSocket',
    code: (t) => `import js\nws = js.WebSocket.new("ws://${HOST}/ws/${t}")\nprint("ESCAPED")`,
  },
  {
    name: 'js.importScripts',
    api: 'importScripts',
    code: (t) => `import js\njs.importScripts("/pkg/pairpad.js?probe=${t}")\nprint("ESCAPED")`,
  },
  {
    name: 'js.indexedDB',
    api: 'indexedDB',
    code: (t) => `import js\njs.indexedDB.open("probe-${t}")\nprint("ESCAPED")`,
  },
  { name: 'js.caches', api: 'caches', code: (t) => `import js\njs.caches.open("probe-${t}")\nprint("ESCAPED")` },
  {
    name: 'js.localStorage',
    api: 'localStorage',
    code: (t) => `import js\njs.localStorage.setItem("probe", "${t}")\nprint("ESCAPED")`,
  },
  {
    // JavaScript code run through the bridge: the worker's CSP forbids eval.
    name: 'js.eval',
    api: 'EvalError',
    code: (t) => `import js\njs.eval('fetch("/api/health?probe=${t}")')\nprint("ESCAPED")`,
  },
  {
    name: 'urllib.request',
    api: null,
    code: (t) =>
      `import urllib.request\nprint("ESCAPED", urllib.request.urlopen("${ORIGIN}/api/health?probe=${t}").status)`,
  },
];

/** Runs each probe in `page`, checking the output, the browser's requests and the server. */
async function tryEscapes(page, request, seen, probes, expectError) {
  for (const probe of probes) {
    const title = probe.name || probe.api;
    await test.step(title, async () => {
      const token = randomUUID();
      const server = await serverBaseline(request, seen);
      const result = await run(page, probe.code(token));
      const shown = JSON.stringify(result.lines);
      expect.soft(result.status, `${title}: the run did not fail: ${shown}`).toBe('error');
      expect.soft(texts(result.lines, 'stdout').join('\n'), `${title}: the call went through`).not.toContain('ESCAPED');
      expectError(title, probe.api, result.lines);
      // Anything asynchronous the probe started has had its chance by the time the counter settles.
      await server.expectNothingElseArrived(title);
      expect.soft(
        seen.filter((s) => !s.blocked && s.url.includes(token)),
        `${title}: a request with the probe's token left the browser`,
      ).toEqual([]);
    });
  }
}

/**
 * Opens a new `language` session with every request of the context watched
 * (returns the list that fills up), once Python has loaded: Python loads in the
 * background on every session page, and its downloads must not blur the
 * server's counters.
 */
async function openWatchedSession(page, context, request, language) {
  await presetName(context, 'Ada');
  const seen = watchNetwork(context);
  const { id } = await createSessionViaApi(request, language);
  await openSession(page, id);
  await expect(page.getByTestId('python-status')).toHaveAttribute('data-state', 'ready', PYTHON_LOAD);
  return seen;
}

test('JavaScript: every way out of the worker fails with an error and reaches nothing', async ({
  page,
  context,
  request,
}) => {
  test.setTimeout(240_000);
  const seen = await openWatchedSession(page, context, request, 'javascript');

  await tryEscapes(page, request, seen, JS_ESCAPES, (title, api, lines) => {
    const stderr = texts(lines, 'stderr');
    expect
      .soft(
        stderr.some((l) => new RegExp(`^Uncaught (\\(in promise\\) )?\\w*Error: .*\\b${api}\\b`).test(l)),
        `${title}: no error naming ${api} on stderr: ${JSON.stringify(lines)}`,
      )
      .toBe(true);
  });
});

test('JavaScript: the runner\'s own code is out of reach, and a program can neither post to the page nor intercept what the runner posts', async ({
  page,
  context,
  request,
}) => {
  await presetName(context, 'Ada');
  await openSession(page, (await createSessionViaApi(request, 'javascript')).id);
  // The runner's wasm glue, its evaluator and Node's inspect live inside the bundle's
  // closure, and postMessage is gone. A program that sets its own postMessage and
  // onmessage (as worker tutorials do) must not swallow the runner's messages: the run
  // still streams and ends on its own, not at the time limit.
  const result = await run(
    page,
    [
      'const names = ["glue", "wasm_bindgen", "evaluator", "WASM_BASE64", "nodeInspect", "postMessage"];',
      'console.log(names.map((name) => typeof globalThis[name]).join(" "));',
      'globalThis.postMessage = () => {};',
      'globalThis.onmessage = () => {};',
      'console.log("after");',
      'await new Promise((resolve) => setTimeout(resolve, 300));',
      'console.log("still running");',
    ].join('\n'),
  );
  expect(texts(result.lines, 'stdout')).toEqual([
    'undefined undefined undefined undefined undefined undefined',
    'after',
    'still running',
  ]);
  expect(result.status).toBe('ok');
  // The page is alive and runs the next program.
  const next = await run(page, 'console.log(6 * 7);');
  expect(texts(next.lines, 'stdout')).toEqual(['42']);
});

test('Python: the runner\'s own code is out of reach, and messages a program forges are not the page\'s', async ({
  page,
  request,
}) => {
  test.setTimeout(240_000);
  await openSession(page, (await createSessionViaApi(request, 'python')).id);
  await expect(page.getByTestId('python-status')).toHaveAttribute('data-state', 'ready', PYTHON_LOAD);
  // The runner's wasm glue and its JavaScript half live inside the bundle's closure, and
  // postMessage is gone (what Python's `js` module reaches is the worker's global object;
  // onmessage is null: the bridge's handler is kept inside the bundle).
  // A MessageEvent the program dispatches itself is not the page's, even when its bytes are
  // a well-formed bridge message: here, a run order of its own (gloo-worker's
  // ProcessInput(handler 0, ToRunner::Run{id 999, code "while True: pass", no time
  // limit}), in bincode). Had the runner taken it, that loop would run after this run, and
  // the page's next run would wait behind it until its time limit.
  const result = await run(
    page,
    [
      'import js, struct',
      'from pyodide.ffi import to_js',
      'names = ["glue", "wasm_bindgen", "pythonRunner", "WASM_BASE64", "postMessage", "onmessage"]',
      'print(" ".join(repr(getattr(js, name, "missing")) for name in names))',
      'def text(t):',
      '    b = t.encode()',
      '    return struct.pack("<Q", len(b)) + b',
      'order = struct.pack("<IQII", 1, 0, 0, 999) + text("while True: pass") + text("") + struct.pack("<QQQ", 65536, 100, 0)',
      'forged = to_js({"data": js.Uint8Array.new(to_js(list(order)))}, dict_converter=js.Object.fromEntries)',
      'js.dispatchEvent(js.MessageEvent.new("message", forged))',
      'print("after")',
    ].join('\n'),
  );
  expect(texts(result.lines, 'stdout')).toEqual([
    "'missing' 'missing' 'missing' 'missing' 'missing' jsnull",
    'after',
  ]);
  expect(result.status).toBe('ok');
  const next = await run(page, 'print(6 * 7)');
  expect(texts(next.lines, 'stdout')).toEqual(['42']);
  expect(next.status).toBe('ok');
});

test('Python: a program can neither replace what the runner reaches the page through nor keep JavaScript globals it changed', async ({
  page,
  request,
}) => {
  test.setTimeout(300_000);
  await openSession(page, (await createSessionViaApi(request, 'python')).id);
  await expect(page.getByTestId('python-status')).toHaveAttribute('data-state', 'ready', PYTHON_LOAD);
  // The runner's Rust half reaches the page through wasm-bindgen's glue, which looks
  // built-ins up as it runs. What it uses is read-only and fixed in place, so a program
  // cannot step into that path (and rewrite a run's end, or read the runner's memory).
  const attempts = {
    'Function.prototype.call': 'js.Function.prototype.call = js.Function.prototype.bind',
    'TextDecoder.prototype.decode': 'js.TextDecoder.prototype.decode = js.Math.max',
    'a typed-array method shadowed on Uint8Array.prototype':
      'js.Object.defineProperty(js.Uint8Array.prototype, "subarray", to_js({"value": js.Math.max}, dict_converter=js.Object.fromEntries))',
  };
  for (const [what, attempt] of Object.entries(attempts)) {
    await test.step(what, async () => {
      const result = await run(page, `import js\nfrom pyodide.ffi import to_js\n${attempt}\nprint("replaced")`);
      expect(result.status, JSON.stringify(result.lines)).toBe('error');
      expect(texts(result.lines, 'stdout')).toEqual([]);
      expect(texts(result.lines, 'stderr').at(-1)).toMatch(/TypeError/);
    });
  }
  // Any other global a run changes ends that run with a sandbox error, and Python restarts
  // before the next run, which finds the built-in as it was.
  const changed = await run(page, 'import js\njs.Math.hypot = js.Math.min\nprint("changed")', PYTHON_LOAD);
  expect(changed.status, JSON.stringify(changed.lines)).toBe('error');
  expect(texts(changed.lines, 'stdout')).toEqual(['changed']);
  expect(texts(changed.lines, 'stderr')).toEqual([
    "SandboxError: the program changed the worker's JavaScript globals, which the runner relies on; Python restarts before the next run",
  ]);
  const next = await run(page, 'import js\nprint(js.Math.hypot(3, 4))', PYTHON_LOAD);
  expect(texts(next.lines, 'stdout')).toEqual(['5']);
  expect(next.status).toBe('ok');
});

// Python restored from the memory snapshot pairpad serves is locked down just as one
// started the long way (the snapshot withheld).
for (const restored of [false, true]) {
  const how = restored ? ' (restored from the memory snapshot)' : ' (started the long way)';
  test(`Python${how}: every way out of the worker fails with an error and reaches nothing`, async ({
    page,
    context,
    request,
  }) => {
    test.setTimeout(240_000);
    await recordPythonStatuses(context);
    if (!restored) await withoutSnapshot(context);
    const seen = await openWatchedSession(page, context, request, 'python');
    const statuses = await page.evaluate(() => window.__pythonStatuses);
    if (restored) {
      expect(statuses).toContain('Restoring Python…');
    } else {
      expect(statuses).not.toContain('Restoring Python…');
    }
    // Playwright does see requests made from inside the workers: Pyodide's own downloads.
    expect(
      seen.some((s) => s.url.startsWith(`${ORIGIN}${PYODIDE_DIR}`) && s.url.endsWith('.wasm')),
      `Pyodide's worker requests are not visible, so the request checks below would prove nothing:\n${seen
        .map((s) => s.url)
        .join('\n')}`,
    ).toBe(true);

    await tryEscapes(page, request, seen, PY_ESCAPES, (title, api, lines) => {
      const stderr = texts(lines, 'stderr');
      const last = stderr.filter((l) => l.trim() !== '').at(-1) || '';
      expect
        .soft(last, `${title}: the traceback does not end with an error: ${JSON.stringify(lines)}`)
        .toMatch(/^[\w.]+(Error|Exception)\b/);
      if (api) {
        expect.soft(last, `${title}: the error does not name ${api}`).toContain(api);
      }
    });
  });
}
