#!/usr/bin/env node
// Measures running code, against a pairpad server of its own on loopback, in
// Debian's Chromium (launched as the suite launches it):
//
//  1. run: time from the click on Run (the click event in the page) to the first
//     output line in the output panel, for warm runs (a run already happened on
//     that page: the JS worker is pre-started, Pyodide loaded and used once),
//     in JavaScript and in Python. Also click -> run status no longer "running".
//  2. python-load: on a fresh session page, time from navigation start to the
//     Python status saying ready (data-state="ready"), with a cold HTTP cache (a
//     new browser context per load) and a warm one (one context, a first load
//     not counted); both restore Python from the memory snapshot pairpad serves.
//     A third series, coldLongWay, withholds the snapshot (404), so Python starts
//     the long way, as before pairpad served one. Also how many requests reached
//     the server during each load (from /metrics), to show what the warm cache saved.
//
// Times are taken inside the page (performance.now(), a MutationObserver on the
// panel), so Playwright's round trips are not in them.
//
// Run from the repository root (after `cargo leptos build --release`):
//   node end2end/measure/run-latency.mjs [--runs 10] [--loads 5] [--json out.json]
// Numbers are for information; nothing here is a pass/fail check.

import { chromium } from 'playwright-core';
import { OwnServer, CHROMIUM } from './server.mjs';
import { withoutSnapshot } from '../support/python-snapshot.mjs';
import { parseArgs, stats, table, loadavg, reportHeader, emitJson } from './report.mjs';

const options = parseArgs(process.argv.slice(2), { runs: 10, loads: 5, json: '' });

const PY_LOAD_TIMEOUT = 180_000;

// --- run latency ------------------------------------------------------------------------

/** In the page: times of the next click on Run, first output line and end of the run. */
function armRunProbe() {
  const output = document.querySelector('[data-testid="output"]');
  const button = document.querySelector('[data-testid="run-button"]');
  const probe = { click: null, firstLine: null, ended: null, status: null };
  window.__runProbe = probe;
  button.addEventListener('click', () => { if (probe.click === null) probe.click = performance.now(); }, {
    capture: true,
    once: true,
  });
  const check = () => {
    if (probe.click === null) return;
    if (probe.firstLine === null && output.querySelector('.line')) probe.firstLine = performance.now();
    const status = output.querySelector('[data-testid="run-status"]');
    const state = status && status.getAttribute('data-status');
    if (probe.ended === null && state && state !== 'running') {
      probe.ended = performance.now();
      probe.status = state;
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(output, { subtree: true, childList: true, characterData: true, attributes: true });
  probe.disconnect = () => observer.disconnect();
}

async function runOnce(page, code) {
  await page.evaluate((c) => window.monaco.editor.getModels()[0].setValue(c), code);
  await page.click('[data-testid="clear-output"]');
  await page.waitForFunction(() => !document.querySelector('[data-testid="run-status"]'));
  await page.waitForSelector('[data-testid="run-button"]:not([disabled])');
  await page.evaluate(armRunProbe);
  await page.click('[data-testid="run-button"]');
  await page.waitForFunction(() => window.__runProbe.ended !== null, null, { timeout: 30_000 });
  const probe = await page.evaluate(() => {
    const { click, firstLine, ended, status } = window.__runProbe;
    window.__runProbe.disconnect();
    return { click, firstLine, ended, status };
  });
  if (probe.status !== 'ok') throw new Error(`run ended with status ${probe.status}`);
  return { firstLine: probe.firstLine - probe.click, ended: probe.ended - probe.click };
}

async function measureRuns(browser, server, language, count) {
  const code = language === 'python' ? 'print("hello")' : 'console.log("hello");';
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const id = await server.createSession(language);
    await page.goto(`${server.origin}/s/${id}`);
    await page.waitForSelector('[data-testid="editor"][data-ready="true"]', { timeout: 60_000 });
    await page.waitForSelector('[data-testid="python-status"][data-state="ready"]', { timeout: PY_LOAD_TIMEOUT });
    const first = await runOnce(page, code); // warms up: not counted
    const runs = [];
    for (let i = 0; i < count; i++) runs.push(await runOnce(page, code));
    return { first, runs };
  } finally {
    await context.close();
  }
}

// --- Pyodide load -----------------------------------------------------------------------

// In every page: when the Python status first says ready (ms since navigation start).
function recordPythonReady() {
  window.__py = { ready: null };
  const check = () => {
    const el = document.querySelector('[data-testid="python-status"]');
    if (el && el.getAttribute('data-state') === 'ready' && window.__py.ready === null) {
      window.__py.ready = performance.now();
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true });
  document.addEventListener('DOMContentLoaded', check);
}

/** The server's HTTP responses so far, by status (from /metrics). */
async function responsesByStatus(server) {
  const text = await (await fetch(`${server.origin}/metrics`)).text();
  const counts = {};
  for (const m of text.matchAll(/^pairpad_http_responses_total\{status="(\d+)"\} (\d+)$/gm)) counts[m[1]] = Number(m[2]);
  return counts;
}

async function loadOnce(context, server) {
  const id = await server.createSession('python');
  const before = await responsesByStatus(server);
  const page = await context.newPage();
  try {
    await page.goto(`${server.origin}/s/${id}`);
    await page.waitForFunction(() => window.__py && window.__py.ready !== null, null, { timeout: PY_LOAD_TIMEOUT });
    const ready = await page.evaluate(() => window.__py.ready);
    // What reached the server for this page (minus the /metrics scrape before it):
    // shows whether the "warm" loads were served from the browser's cache.
    const after = await responsesByStatus(server);
    let served = -1;
    for (const [status, n] of Object.entries(after)) served += n - (before[status] || 0);
    return { ready, served };
  } finally {
    await page.close();
  }
}

async function measureLoads(browser, server, count) {
  const result = { cold: [], warm: [], coldLongWay: [] };
  for (const [series, snapshot] of [['cold', true], ['coldLongWay', false]]) {
    for (let i = 0; i < count; i++) {
      const context = await browser.newContext();
      await context.addInitScript(recordPythonReady);
      if (!snapshot) await withoutSnapshot(context);
      result[series].push(await loadOnce(context, server));
      await context.close();
    }
  }
  const context = await browser.newContext();
  await context.addInitScript(recordPythonReady);
  // Fills the HTTP cache: not counted.
  await loadOnce(context, server);
  for (let i = 0; i < count; i++) result.warm.push(await loadOnce(context, server));
  await context.close();
  return result;
}

async function main() {
  const server = new OwnServer();
  await server.start();
  const browser = await chromium.launch({ ...CHROMIUM, headless: true });
  const report = { ...reportHeader(browser, server), options };
  try {
    report.run = {};
    for (const language of ['javascript', 'python']) {
      const { first, runs } = await measureRuns(browser, server, language, options.runs);
      report.run[language] = {
        firstRunOnPage: first,
        warmClickToFirstLineMs: stats(runs.map((r) => r.firstLine)),
        warmClickToEndMs: stats(runs.map((r) => r.ended)),
      };
    }
    const loads = await measureLoads(browser, server, options.loads);
    report.pythonLoad = {};
    for (const [cache, runs] of Object.entries(loads)) {
      report.pythonLoad[cache] = {
        navigationToReadyMs: stats(runs.map((r) => r.ready)),
        requestsReachingServer: stats(runs.map((r) => r.served)),
      };
    }
    report.machine.loadavgAfter = loadavg();
  } finally {
    await browser.close();
    await server.dispose();
  }

  const rows = [];
  for (const [language, m] of Object.entries(report.run)) {
    rows.push({ measure: `run ${language} warm: click->first line ms`, ...m.warmClickToFirstLineMs });
    rows.push({ measure: `run ${language} warm: click->run ended ms`, ...m.warmClickToEndMs });
  }
  for (const [cache, m] of Object.entries(report.pythonLoad)) {
    rows.push({ measure: `python load ${cache} cache: nav->ready ms`, ...m.navigationToReadyMs });
    rows.push({ measure: `python load ${cache} cache: requests reaching server`, ...m.requestsReachingServer });
  }
  console.log(`pairpad run latency, ${report.when}, ${report.machine.cpus} CPUs, Chromium ${report.chromium}`);
  console.log(table(rows, ['measure', 'n', 'min', 'median', 'p95', 'max']));
  for (const [language, m] of Object.entries(report.run)) {
    console.log(
      `${language}: first run on the page (not counted): click->first line ${Math.round(m.firstRunOnPage.firstLine)} ms, ` +
        `click->ended ${Math.round(m.firstRunOnPage.ended)} ms`,
    );
  }
  emitJson(report, options.json);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
