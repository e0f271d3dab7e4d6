// What the measurement scripts share: command-line flags, summary statistics,
// a plain-text table and the machine facts every report starts with.
// Used by editor-latency.mjs and run-latency.mjs.

import fs from 'node:fs';
import os from 'node:os';

/** `--some-flag value` pairs into `{ someFlag }`, typed like `defaults`; unknown flags throw. */
export function parseArgs(argv, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in out)) throw new Error(`unknown option ${argv[i]}`);
    const value = argv[++i];
    out[key] = typeof defaults[key] === 'number' ? Number(value) : value;
  }
  return out;
}

/** n, min, median, p95, max and mean of the finite values (nearest-rank percentiles, 0.1 precision). */
export function stats(values) {
  const sorted = values.filter(Number.isFinite).sort((x, y) => x - y);
  const n = sorted.length;
  if (!n) return { n: 0 };
  const at = (p) => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))];
  const round = (x) => Math.round(x * 10) / 10;
  return {
    n,
    min: round(sorted[0]),
    median: round(at(50)),
    p95: round(at(95)),
    max: round(sorted[n - 1]),
    mean: round(sorted.reduce((s, x) => s + x, 0) / n),
  };
}

/** `rows` as right-aligned text columns, with a header line. */
export function table(rows, columns) {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells) => cells.map((cell, i) => String(cell ?? '').padStart(widths[i])).join('  ');
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(columns.map((c) => r[c])))].join(
    '\n',
  );
}

/** The load averages, rounded to hundredths. */
export function loadavg() {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}

/** The facts every report starts with. */
export function reportHeader(browser, server) {
  return {
    when: new Date().toISOString(),
    machine: { cpus: os.cpus().length, loadavg: loadavg() },
    chromium: browser.version(),
    server: server.origin,
  };
}

/** Prints the full report as JSON, and writes it to `file` too if one is given. */
export function emitJson(report, file) {
  console.log(JSON.stringify(report, null, 2));
  if (file) fs.writeFileSync(file, JSON.stringify(report, null, 2));
}
