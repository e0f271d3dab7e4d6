// After the whole run: fails it if the server under test panicked (a panic in a
// request task may not fail any single test, but it is always a bug).

import fs from 'node:fs';
import { SERVER_LOG } from './env.mjs';

export default async function globalTeardown() {
  if (!fs.existsSync(SERVER_LOG)) return;
  const lines = fs.readFileSync(SERVER_LOG, 'utf8').split('\n');
  const panics = [];
  lines.forEach((line, i) => {
    if (/panicked at /.test(line)) {
      const where = line.trim().replace(/^thread '([^']*)' \(\d+\)/, "thread '$1'");
      panics.push(`${where}\n    ${(lines[i + 1] || '').trim()}`);
    }
  });
  if (panics.length) {
    const distinct = [...new Set(panics)];
    throw new Error(
      `the server panicked ${panics.length} time(s) during the run (full log: ${SERVER_LOG}):\n` +
        distinct.slice(0, 10).join('\n'),
    );
  }
}
