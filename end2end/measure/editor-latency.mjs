#!/usr/bin/env node
// Measures, against a pairpad server of its own on loopback, in Debian's Chromium:
//
//  1. load: time from navigation start to an editable editor (the editor area
//     has data-ready="true", i.e. Monaco loaded and the first sync done), over
//     fresh page loads with a warm HTTP cache (one browser context reused) and a
//     cold one (a new context per load). Each load opens a new session.
//  2. keystroke: time from a keystroke in page A (its keydown event) to the
//     character appearing in page B's Monaco model (onDidChangeContent), for a
//     few hundred characters typed one at a time. Both pages live in one browser
//     process, so `performance.timeOrigin + performance.now()` is a shared clock.
//  3. both typing: A and B type at the same time, `--bothRate` characters a
//     second each (A at the start, B at the end, told apart by their alphabets);
//     keydown on one page -> the character in the other's model, both ways.
//
//  4. peer typing: page A types at `--bothRate` while a stock Yjs client (npm
//     yjs + y-websocket, no browser) types as fast and moves its caret; A's
//     keydown -> the peer's document, the peer's insert -> A's model. One
//     editor renders, as on each participant's own machine.
//
// Cold loads are also measured with Pyodide's files blocked (coldNoPyodide),
// to show what its background download and start-up cost the editor. Loopback
// hides round trips and bandwidth: `--network 100,8` emulates a 100 ms round
// trip and 8 Mbit/s down (Chromium's DevTools throttling) for the loads.
//
// Run from the repository root (after `cargo leptos build --release`):
//   node end2end/measure/editor-latency.mjs [--loads 10] [--chars 300] [--interval 50] [--bothRate 30] [--json out.json]
//     [--skip loads,keystroke,both,peer] [--network 100,8]
//     [--settle 5] [--lineLength 60] [--monacoOptions '{"quickSuggestionsDelay":10}']   (the "both" and
//     "peer" runs: type once the pages' Python has loaded and N seconds more; Enter every ~N characters;
//     Monaco options to try)
//     [--profile a.cpuprofile] [--trace both.json]   (page A's CPU profile during the "both"
//     run; the browser's trace during the "both" run, and in both.peer.json during the "peer" run)
// Numbers are for information (issue notes); nothing here is a pass/fail check.

import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { OwnServer, CHROMIUM } from './server.mjs';
// The interop suite's stock Yjs client (yjs + y-websocket from npm): the "peer" run's second participant.
import { Y, yClient } from '../../tests/interop/support/clients.mjs';
import { parseArgs, stats, table, loadavg, reportHeader, emitJson } from './report.mjs';

const options = parseArgs(process.argv.slice(2), {
  loads: 10,
  chars: 300,
  interval: 50, // ms between keystrokes in the paced run (20 characters/s)
  fastInterval: 0, // the fast run: as fast as Playwright can type
  bothRate: 30, // the "both" and "peer" runs: characters per second each participant types, at the same time
  bothLanguage: 'javascript', // the "both" and "peer" runs' session language
  lineLength: 0, // the "both" and "peer" runs: Enter after this many characters, as code has lines (0: one long line)
  monacoOptions: '', // the "both" and "peer" runs: JSON of Monaco options set on the editors first (an experiment)
  settle: 0, // the "both" and "peer" runs: seconds to wait after the pages' Python is ready before typing (0: type at once)
  skip: '', // "loads,keystroke,both,peer": parts not to run
  network: '', // "100,8": the loads over an emulated network (round trip ms, download Mbit/s)
  profile: '', // the "both" run: write page A's CPU profile (.cpuprofile, for DevTools) here
  trace: '', // the "both" and "peer" runs: write a Chromium trace of the whole browser here (chrome://tracing, Perfetto)
  json: '',
});

/** What `--trace` records: Chromium's timeline, compositor, V8 and input events. */
const TRACE_CATEGORIES = ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'blink', 'cc', 'toplevel', 'v8', 'input'];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// In every page: note when the editor becomes ready (ms since navigation start),
// and when the server-rendered preview is first in the DOM.
function recordReadiness() {
  window.__pp = { ready: null, preview: null };
  const check = () => {
    const editor = document.querySelector('[data-testid="editor"]');
    if (editor && window.__pp.preview === null) window.__pp.preview = performance.now();
    if (editor && editor.getAttribute('data-ready') === 'true' && window.__pp.ready === null) {
      window.__pp.ready = performance.now();
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true });
  document.addEventListener('DOMContentLoaded', check);
}

async function loadOnce(context, server) {
  const id = await server.createSession('javascript');
  const page = await context.newPage();
  try {
    await emulateNetwork(context, page);
    await page.goto(`${server.origin}/s/${id}`);
    await waitForEditor(page);
    return await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
      const transferred = performance
        .getEntriesByType('resource')
        .reduce((sum, r) => sum + (r.transferSize || 0), nav ? nav.transferSize || 0 : 0);
      return {
        ready: window.__pp.ready,
        domContentLoaded: nav ? nav.domContentLoadedEventEnd : null,
        fcp: fcp ? fcp.startTime : null,
        transferredBytes: transferred,
      };
    });
  } finally {
    await page.close();
  }
}

/** Throttles `page`'s network as `--network rtt,mbps` says (nothing without it). */
async function emulateNetwork(context, page) {
  if (!options.network) return;
  const [latency, mbps] = String(options.network).split(',').map(Number);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency,
    downloadThroughput: (mbps * 1e6) / 8,
    uploadThroughput: (mbps * 1e6) / 8,
  });
}

async function measureLoads(browser, server, count) {
  const result = {};
  // Warm: one context; a first load fills the cache and is not counted.
  {
    const context = await browser.newContext();
    await context.addInitScript(recordReadiness);
    await loadOnce(context, server);
    const runs = [];
    for (let i = 0; i < count; i++) runs.push(await loadOnce(context, server));
    await context.close();
    result.warm = runs;
  }
  // Cold: a new context (empty HTTP cache, no storage) for every load. The
  // second variant blocks Pyodide (which the page starts loading in the
  // background) to show what it costs the editor.
  for (const [name, blockPyodide] of [
    ['cold', false],
    ['coldNoPyodide', true],
  ]) {
    const runs = [];
    for (let i = 0; i < count; i++) {
      const context = await browser.newContext();
      await context.addInitScript(recordReadiness);
      if (blockPyodide) await context.route('**/vendor/pyodide-*/**', (route) => route.abort());
      runs.push(await loadOnce(context, server));
      await context.close();
    }
    result[name] = runs;
  }
  return result;
}

/** Types `text` one character at a time in A; returns per-character send and arrival times. */
async function measureKeystrokes(browser, server, text, intervalMs) {
  const id = await server.createSession('javascript');
  const url = `${server.origin}/s/${id}`;
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    const a = await ctxA.newPage();
    const b = await ctxB.newPage();
    for (const page of [a, b]) {
      await page.goto(url);
      await waitForEditor(page);
    }
    // A: when each key reached the page, and when A's own model had it.
    await a.evaluate(() => {
      const clock = () => performance.timeOrigin + performance.now();
      window.__keys = [];
      window.__local = [];
      document.addEventListener('keydown', (e) => window.__keys.push({ key: e.key, t: clock() }), true);
      window.monaco.editor.getModels()[0].onDidChangeContent(() => {
        window.__local.push({ length: window.monaco.editor.getModels()[0].getValueLength(), t: clock() });
      });
    });
    // B: when each change arrived, and the length it brought the text to.
    await b.evaluate(() => {
      const clock = () => performance.timeOrigin + performance.now();
      window.__arrivals = [];
      const model = window.monaco.editor.getModels()[0];
      model.onDidChangeContent(() => window.__arrivals.push({ length: model.getValueLength(), t: clock() }));
    });
    await a.locator('.monaco-editor .view-lines').click();
    await a.keyboard.press('Control+End');
    const base = await a.evaluate(() => window.monaco.editor.getModels()[0].getValueLength());
    await a.evaluate(() => {
      window.__keys.length = 0;
    });
    let disconnects = 0;
    const watch = setInterval(async () => {
      try {
        const state = await a.getAttribute('[data-testid="connection-status"]', 'data-state');
        if (state !== 'connected') disconnects += 1;
      } catch {
        // page busy
      }
    }, 200);
    for (const ch of text) {
      await a.keyboard.type(ch);
      if (intervalMs) await sleep(intervalMs);
    }
    // Wait (bounded) for B to have everything.
    const want = base + text.length;
    const deadline = Date.now() + 30_000;
    let bLength = 0;
    while (Date.now() < deadline) {
      bLength = await b.evaluate(() => window.monaco.editor.getModels()[0].getValueLength());
      if (bLength >= want) break;
      await sleep(50);
    }
    clearInterval(watch);
    const keys = await a.evaluate(() => window.__keys);
    const local = await a.evaluate(() => window.__local);
    const arrivals = await b.evaluate(() => window.__arrivals);
    const same =
      (await a.evaluate(() => window.monaco.editor.getModels()[0].getValue())) ===
      (await b.evaluate(() => window.monaco.editor.getModels()[0].getValue()));
    const statusB = await b.getAttribute('[data-testid="connection-status"]', 'data-state');

    // Character i (0-based) is in a model once its length reaches base + i + 1.
    const firstAt = (events, length) => events.find((e) => e.length >= length)?.t;
    const remote = [];
    const localEcho = [];
    let missing = 0;
    const typedKeys = keys.filter((k) => k.key.length === 1);
    for (let i = 0; i < text.length; i++) {
      const sent = typedKeys[i]?.t;
      const arrived = firstAt(arrivals, base + i + 1);
      const shown = firstAt(local, base + i + 1);
      if (sent === undefined || arrived === undefined) {
        missing += 1;
        continue;
      }
      remote.push(arrived - sent);
      if (shown !== undefined) localEcho.push(shown - sent);
    }
    const span = typedKeys.length > 1 ? (typedKeys.at(-1).t - typedKeys[0].t) / 1000 : 0;
    return {
      intervalMs,
      characters: text.length,
      charactersPerSecond: span ? Math.round((text.length - 1) / span) : null,
      remoteChanges: arrivals.length,
      missing,
      converged: same && bLength >= want,
      statusBAfter: statusB,
      notConnectedSamplesA: disconnects,
      keyToRemote: stats(remote),
      keyToLocalModel: stats(localEcho),
    };
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
}

/**
 * Both pages type at `rate` characters a second each, at the same time, A at
 * the start of the text and B at the end. A types only lowercase letters,
 * digits and spaces, B only uppercase letters and '_', so each page can tell
 * the other's characters from its own: character i of A's has arrived at B
 * once B's model has received i + 1 characters of A's alphabet (and the other
 * way round). Returns per-direction keydown -> other model latencies.
 */
async function measureBothTyping(browser, server, chars, rate, language) {
  const id = await server.createSession(language);
  const url = `${server.origin}/s/${id}`;
  const contexts = [await browser.newContext(), await browser.newContext()];
  const alphabets = { a: ALPHABETS.first, b: ALPHABETS.second };
  const { first, second } = twoTexts(chars);
  const texts = { a: first, b: second };
  // Characters each page counts of the other's (newlines are in neither alphabet).
  const counted = { a: countedOf(texts.a), b: countedOf(texts.b) };
  try {
    const pages = { a: await contexts[0].newPage(), b: await contexts[1].newPage() };
    for (const page of Object.values(pages)) {
      await page.goto(url);
      await waitForEditor(page);
    }
    await settle(Object.values(pages));
    for (const [me, other] of [['a', 'b'], ['b', 'a']]) await recordTyping(pages[me], alphabets[other]);
    for (const page of Object.values(pages)) await applyMonacoOptions(page);
    await pages.a.locator('.monaco-editor .view-lines').click();
    await pages.a.keyboard.press('Control+Home');
    await pages.b.locator('.monaco-editor .view-lines').click();
    await pages.b.keyboard.press('Control+End');
    for (const page of Object.values(pages)) await page.evaluate(() => (window.__keys.length = 0));
    // Each page's main-thread time while typing (Chromium's own counters):
    // where a saturated page spends it.
    const cdp = { a: await contexts[0].newCDPSession(pages.a), b: await contexts[1].newCDPSession(pages.b) };
    for (const session of Object.values(cdp)) await session.send('Performance.enable');
    const mainThread = async () =>
      Object.fromEntries(
        await Promise.all(
          Object.entries(cdp).map(async ([name, session]) => {
            const { metrics } = await session.send('Performance.getMetrics');
            return [name, Object.fromEntries(metrics.map((m) => [m.name, m.value]))];
          }),
        ),
      );
    if (options.profile) {
      await cdp.a.send('Profiler.enable');
      await cdp.a.send('Profiler.setSamplingInterval', { interval: 500 });
      await cdp.a.send('Profiler.start');
    }
    if (options.trace) {
      await browser.startTracing(pages.a, { path: options.trace, categories: TRACE_CATEGORIES });
    }
    const before = await mainThread();
    const typingStarted = Date.now();

    const start = Date.now() + 100;
    await Promise.all([typePaced(pages.a, texts.a, start, rate), typePaced(pages.b, texts.b, start, rate)]);
    const after = await mainThread();
    if (options.trace) await browser.stopTracing();
    if (options.profile) {
      const { profile } = await cdp.a.send('Profiler.stop');
      writeFileSync(options.profile, JSON.stringify(profile));
    }
    const typingSeconds = (Date.now() - typingStarted) / 1000;

    // Wait (bounded) until both have everything.
    const deadline = Date.now() + 30_000;
    const last = async (page) => (await page.evaluate(() => window.__theirs.at(-1)?.count ?? 0));
    while (Date.now() < deadline && ((await last(pages.a)) < counted.b || (await last(pages.b)) < counted.a)) await sleep(50);

    const result = { ...typingSettings(rate, language, chars), mainThreadPercent: {} };
    // Percent of the typing time each page's main thread spent on tasks, and
    // of that on script, layout and style (the rest: paint, input, other).
    for (const name of ['a', 'b']) {
      const spent = (metric) => (((after[name][metric] - before[name][metric]) / typingSeconds) * 100).toFixed(1);
      result.mainThreadPercent[name] = {
        tasks: spent('TaskDuration'),
        script: spent('ScriptDuration'),
        layout: spent('LayoutDuration'),
        style: spent('RecalcStyleDuration'),
      };
    }
    for (const [me, other] of [['a', 'b'], ['b', 'a']]) {
      const keys = (await pages[me].evaluate(() => window.__keys)).filter((k) => k.key.length === 1);
      const arrivals = await pages[other].evaluate(() => window.__theirs);
      result[`${me}To${other.toUpperCase()}`] = {
        charactersPerSecond: rateOf(keys),
        ...pairArrivals(keys, arrivals, counted[me]),
      };
    }
    const [textA, textB] = await Promise.all(
      Object.values(pages).map((page) => page.evaluate(() => window.monaco.editor.getModels()[0].getValue())),
    );
    result.converged = textA === textB && textA.length === texts.a.length + texts.b.length;
    return result;
  } finally {
    for (const context of contexts) await context.close();
  }
}

/**
 * Page A (Chromium) types at `rate` characters a second while a stock Yjs
 * client in this process (a second participant without a browser) types as
 * fast at the end of the document and publishes its caret through awareness
 * after every character, as pairpad's page does. Two pages in one browser on
 * a small machine measure the machine as much as pairpad (both render and
 * lay out every keystroke of both); here one editor renders, so the figure
 * is pairpad's path plus one participant's editor. Reports A's keydown -> the
 * peer's document, and the peer's insert -> A's Monaco model. Both clocks
 * are `performance.timeOrigin + performance.now()` (epoch milliseconds) on
 * one machine.
 */
async function measurePeerTyping(browser, server, chars, rate, language) {
  const id = await server.createSession(language);
  const context = await browser.newContext();
  const peer = yClient({ wsBase: `${server.origin.replace(/^http/, 'ws')}/ws` }, id, { name: 'peer' });
  const { first, second } = twoTexts(chars);
  const texts = { a: first, peer: second };
  const counted = { a: countedOf(texts.a), peer: countedOf(texts.peer) };
  const clock = () => performance.timeOrigin + performance.now();
  try {
    const page = await context.newPage();
    await page.goto(`${server.origin}/s/${id}`);
    await waitForEditor(page);
    await peer.synced(30_000);
    peer.awareness.setLocalStateField('user', { name: 'Peer', color: 3 });
    await settle([page]);
    await recordTyping(page, ALPHABETS.second);
    // What the peer receives of A's typing.
    const mine = new RegExp(ALPHABETS.first, 'g');
    const peerReceived = [];
    let peerCount = 0;
    peer.text.observe((event) => {
      if (event.transaction.local) return;
      let got = 0;
      for (const op of event.delta) if (typeof op.insert === 'string') got += (op.insert.match(mine) || []).length;
      if (got) {
        peerCount += got;
        peerReceived.push({ count: peerCount, t: clock() });
      }
    });
    await applyMonacoOptions(page);
    await page.locator('.monaco-editor .view-lines').click();
    await page.keyboard.press('Control+Home');
    await page.evaluate(() => (window.__keys.length = 0));

    if (options.trace) {
      // Beside the "both" run's trace, not over it.
      await browser.startTracing(page, { path: options.trace.replace(/(\.json)?$/, '.peer.json'), categories: TRACE_CATEGORIES });
    }
    const peerInserts = [];
    const start = Date.now() + 100;
    const due = (i) => start + (i * 1000) / rate;
    const typePeer = async () => {
      for (let i = 0; i < texts.peer.length; i++) {
        // Always through the event loop, even when behind: a burst of inserts
        // would also hold up this process's handling of what A sends.
        await sleep(Math.max(0, due(i) - Date.now()));
        const ch = texts.peer[i];
        if (ch !== '\n') peerInserts.push({ t: clock() });
        peer.text.insert(peer.text.length, ch);
        const caret = Array.from(Y.encodeRelativePosition(Y.createRelativePositionFromTypeIndex(peer.text, peer.text.length)));
        peer.awareness.setLocalStateField('cursor', { anchor: caret, head: caret });
      }
    };
    await Promise.all([typePaced(page, texts.a, start, rate), typePeer()]);
    if (options.trace) await browser.stopTracing();

    const deadline = Date.now() + 30_000;
    const pageCount = async () => page.evaluate(() => window.__theirs.at(-1)?.count ?? 0);
    while (Date.now() < deadline && (peerCount < counted.a || (await pageCount()) < counted.peer)) await sleep(50);

    const keys = (await page.evaluate(() => window.__keys)).filter((k) => k.key.length === 1);
    const result = typingSettings(rate, language, chars);
    result.clock = await clockOffset(page, clock);
    result.pageToPeer = { charactersPerSecond: rateOf(keys), ...pairArrivals(keys, peerReceived, counted.a) };
    result.peerToPage = {
      charactersPerSecond: rateOf(peerInserts),
      ...pairArrivals(peerInserts, await page.evaluate(() => window.__theirs), counted.peer),
    };
    // A peer the server closed (y-websocket reconnects quietly) or that could
    // not parse a message: its latencies include that.
    result.peerCloses = peer.closes;
    result.peerMessageErrors = peer.messageErrors.map(String);
    const pageText = await page.evaluate(() => window.monaco.editor.getModels()[0].getValue());
    result.converged = pageText === peer.text.toString() && pageText.length === texts.a.length + texts.peer.length;
    return result;
  } finally {
    peer.destroy();
    await context.close();
  }
}

/**
 * In `page`: each keydown's time (window.__keys) and, each time the editor's
 * model gains characters of the other participant's alphabet `theirs`, their
 * running count and the time (window.__theirs). Times are the shared clock
 * `performance.timeOrigin + performance.now()`.
 */
async function recordTyping(page, theirs) {
  await page.evaluate((alphabet) => {
    const clock = () => performance.timeOrigin + performance.now();
    const pattern = new RegExp(alphabet, 'g');
    window.__keys = [];
    window.__theirs = []; // { count: their characters received so far, t }
    let count = 0;
    document.addEventListener('keydown', (e) => window.__keys.push({ key: e.key, t: clock() }), true);
    window.monaco.editor.getModels()[0].onDidChangeContent((e) => {
      let got = 0;
      for (const change of e.changes) got += (change.text.match(pattern) || []).length;
      if (got) {
        count += got;
        window.__theirs.push({ count, t: clock() });
      }
    });
  }, theirs);
}

/** Characters a second over `sent` ({ t } each, in order): the rate actually typed, which can fall behind the one asked for. */
function rateOf(sent) {
  const span = sent.length > 1 ? (sent.at(-1).t - sent[0].t) / 1000 : 0;
  return span ? Math.round((sent.length - 1) / span) : null;
}

/**
 * `page`'s clock minus this process's (ms), read once around a round trip:
 * the "peer" run compares times taken in the two. Both are epoch-based
 * (`performance.timeOrigin + performance.now()`) on one machine, so this
 * should be within the round trip of 0.
 */
async function clockOffset(page, clock) {
  const before = clock();
  const pageTime = await page.evaluate(() => performance.timeOrigin + performance.now());
  const after = clock();
  return { pageMinusNodeMs: Math.round((pageTime - (before + after) / 2) * 10) / 10, roundTripMs: Math.round((after - before) * 10) / 10 };
}

/** The two typists' alphabets (regular expressions of one character). */
const ALPHABETS = { first: '[a-z0-9 ]', second: '[A-Z_]' };

/**
 * What two participants type at once, told apart by their alphabets: the
 * first only lowercase letters, digits and spaces, the second only uppercase
 * letters and `_` (newlines, with `--lineLength`, in neither).
 */
function twoTexts(chars) {
  const first = typingText(chars, options.lineLength);
  return { first, second: first.toUpperCase().replace(/[0-9 ]/g, '_') };
}

/** How many characters of `text` the other side counts as they arrive (not its newlines). */
const countedOf = (text) => text.replace(/\n/g, '').length;

/**
 * Latency of each of the first `n` counted characters: `sent[i].t` (when the
 * i-th went out) to the first arrival whose running count reaches i + 1.
 */
function pairArrivals(sent, arrivals, n) {
  const latencies = [];
  let missing = 0;
  for (let i = 0; i < n; i++) {
    const arrived = arrivals.find((e) => e.count >= i + 1)?.t;
    if (sent[i] === undefined || arrived === undefined) missing += 1;
    else latencies.push(arrived - sent[i].t);
  }
  return { missing, keyToRemote: stats(latencies) };
}

/** The settings a typing run reports beside its figures. */
function typingSettings(rate, language, chars) {
  return {
    rate,
    language,
    characters: chars,
    lineLength: options.lineLength,
    settleSeconds: options.settle,
    monacoOptions: options.monacoOptions || null,
  };
}

/** Waits until `page`'s editor is ready (Monaco loaded, first sync done) and the page connected. */
async function waitForEditor(page) {
  await page.waitForSelector('[data-testid="editor"][data-ready="true"]', { timeout: 60_000 });
  await page.waitForSelector('[data-testid="connection-status"][data-state="connected"]', { timeout: 60_000 });
}

/**
 * With `--settle N`: waits until every page says Python is ready, then N s.
 * Every page loads Python in the background once its editor is ready; typing
 * at once measures typing during that load, this measures after it.
 */
async function settle(pages) {
  if (!options.settle) return;
  for (const page of pages) {
    await page.waitForSelector('[data-testid="python-status"][data-state="ready"]', { timeout: 60_000 });
  }
  await sleep(options.settle * 1000);
}

/** Types `text` into `page`'s editor, character i due at `start` + i / `rate` s. */
async function typePaced(page, text, start, rate) {
  for (let i = 0; i < text.length; i++) {
    const due = start + (i * 1000) / rate;
    if (due > Date.now()) await sleep(due - Date.now());
    await typeCharacter(page, text[i]);
  }
}

/** Types `ch` into `page`'s editor; a newline is Escape, then Enter (Enter would take an open suggestion). */
async function typeCharacter(page, ch) {
  if (ch === '\n') {
    await page.keyboard.press('Escape');
    await page.keyboard.press('Enter');
  } else {
    await page.keyboard.type(ch);
  }
}

/** `--monacoOptions` on `page`'s editor: an experiment on what an editor feature costs, not pairpad's configuration. */
async function applyMonacoOptions(page) {
  if (!options.monacoOptions) return;
  await page.evaluate((o) => window.monaco.editor.getEditors()[0].updateOptions(o), JSON.parse(options.monacoOptions));
}

function typingText(n, lineLength = 0) {
  // Plain words and spaces: nothing Monaco auto-closes or completes on. With
  // lineLength, a newline (Enter, no indentation) replaces the space that ends
  // a line at or past it: Monaco lays out and measures the whole line a
  // keystroke lands in, so one line of hundreds of characters costs each
  // keystroke more than code does. Newlines are in neither page's alphabet.
  const words = ['let', 'value', 'sum', 'count', 'item', 'total', 'index', 'data', 'node', 'next'];
  let out = '';
  let line = 0;
  for (let i = 0; out.length < n; i++) {
    const word = `${words[i % words.length]}${i % 7}`;
    line += word.length + 1;
    const end = lineLength && line >= lineLength ? '\n' : ' ';
    if (end === '\n') line = 0;
    out += word + end;
  }
  // Never a newline last: the other side counts characters, not newlines, and
  // would stop waiting before it arrived.
  return out.slice(0, n).replace(/\n$/, ' ');
}

async function main() {
  const server = new OwnServer();
  await server.start();
  const browser = await chromium.launch({ ...CHROMIUM, headless: true });
  const report = reportHeader(browser, server);
  report.network = options.network ? `emulated: ${options.network} (round trip ms, Mbit/s)` : 'loopback';
  try {
    const skip = new Set(options.skip.split(',').filter(Boolean));
    report.load = {};
    if (!skip.has('loads')) {
      const loads = await measureLoads(browser, server, options.loads);
      for (const [cache, runs] of Object.entries(loads)) {
        report.load[cache] = {
          editorReadyMs: stats(runs.map((r) => r.ready)),
          domContentLoadedMs: stats(runs.map((r) => r.domContentLoaded)),
          firstContentfulPaintMs: stats(runs.map((r) => r.fcp)),
          // Page resources only: what workers fetch (Pyodide) is not in this.
          pageTransferredKiB: stats(runs.map((r) => r.transferredBytes / 1024)),
        };
      }
    }
    report.keystroke = {};
    if (!skip.has('keystroke')) {
      const text = typingText(options.chars);
      report.keystroke.paced = await measureKeystrokes(browser, server, text, options.interval);
      report.keystroke.fast = await measureKeystrokes(browser, server, text, options.fastInterval);
    }
    if (!skip.has('both')) {
      report.bothTyping = await measureBothTyping(browser, server, options.chars, options.bothRate, options.bothLanguage);
    }
    if (!skip.has('peer')) {
      report.peerTyping = await measurePeerTyping(browser, server, options.chars, options.bothRate, options.bothLanguage);
    }
    report.machine.loadavgAfter = loadavg();
  } finally {
    await browser.close();
    await server.dispose();
  }

  const rows = [];
  for (const [cache, m] of Object.entries(report.load)) {
    for (const [metric, s] of Object.entries(m)) rows.push({ measure: `load ${cache}: ${metric}`, ...s });
  }
  for (const [run, m] of Object.entries(report.keystroke)) {
    const label = `${run} (${m.charactersPerSecond} chars/s)`;
    rows.push({ measure: `keystroke ${label}: key->remote ms`, ...m.keyToRemote });
    rows.push({ measure: `keystroke ${label}: key->own model ms`, ...m.keyToLocalModel });
  }
  for (const direction of report.bothTyping ? ['aToB', 'bToA'] : []) {
    const m = report.bothTyping[direction];
    rows.push({
      measure: `both typing ${report.bothTyping.language} (${m.charactersPerSecond} chars/s each) ${direction}: key->remote ms`,
      ...m.keyToRemote,
    });
  }
  for (const direction of report.peerTyping ? ['pageToPeer', 'peerToPage'] : []) {
    const m = report.peerTyping[direction];
    rows.push({ measure: `page and Yjs peer typing ${report.peerTyping.language} ${direction}: key->remote ms`, ...m.keyToRemote });
  }
  console.log(`pairpad editor latency, ${report.when}, ${report.machine.cpus} CPUs, Chromium ${report.chromium}`);
  console.log(table(rows, ['measure', 'n', 'min', 'median', 'p95', 'max']));
  for (const [run, m] of Object.entries(report.keystroke)) {
    console.log(
      `${run}: ${m.characters} chars, ${m.remoteChanges} remote changes, missing ${m.missing}, converged ${m.converged}, ` +
        `B status after ${m.statusBAfter}, A not-connected samples ${m.notConnectedSamplesA}`,
    );
  }
  const both = report.bothTyping;
  if (both) {
    console.log(
      `both typing: ${both.characters} chars each, missing ${both.aToB.missing}/${both.bToA.missing}, converged ${both.converged}`,
    );
    for (const [name, m] of Object.entries(both.mainThreadPercent)) {
      console.log(
        `both typing, page ${name.toUpperCase()}'s main thread: ${m.tasks}% busy (script ${m.script}%, layout ${m.layout}%, style ${m.style}%)`,
      );
    }
  }
  if (report.peerTyping) {
    const peer = report.peerTyping;
    console.log(
      `page and Yjs peer typing: ${peer.characters} chars each, asked ${peer.rate}/s, typed ${peer.pageToPeer.charactersPerSecond}/s (page) and ${peer.peerToPage.charactersPerSecond}/s (peer), ` +
        `missing ${peer.pageToPeer.missing}/${peer.peerToPage.missing}, converged ${peer.converged}, peer closed ${peer.peerCloses.length} times, ` +
        `clock offset ${peer.clock.pageMinusNodeMs} ms (round trip ${peer.clock.roundTripMs})`,
    );
  }
  emitJson(report, options.json);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
