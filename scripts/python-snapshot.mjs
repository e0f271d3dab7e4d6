// Makes Python's memory snapshot at build time: Pyodide started once in Node, its memory
// right after the interpreter's start-up written to
// public/vendor/pyodide-<version>/memory-snapshot.bin (with .br and .gz beside it). The
// Python worker (runner/py/python.js) restores it instead of starting the interpreter,
// which is most of Python's load time (about 3 s of one core here, against 0.5 s to restore).
//
// Why Node can make it for the browser: the snapshot is the wasm memory plus the list of
// JavaScript objects Python holds at that point, and right after start-up Python holds
// none (the list is empty), so nothing in it is Node's. Pyodide stamps the snapshot with
// its build id and refuses to restore it into another build; the files in node_modules are
// the ones vendor.mjs copies, so they match. What Python sees of its environment is made
// to match the browser's: the same `env` as python.js passes, and `_` (Emscripten's
// program name, from process.argv[1] in Node) set to the browser's './this.program'. The
// one thing the snapshot keeps of this machine is the C library's time zone, which
// python.js replaces with the browser's after restoring (adoptBrowserTimeZone).
// (The end-to-end test "a fresh browser restores Python ..." compares the two.)
//
// Called by vendor.mjs; skips the work when the snapshot there was made by this very
// script (a stamp beside it holds this file's hash).

import { compressBeside } from './compress.mjs';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const SNAPSHOT_FILE = 'memory-snapshot.bin';

// Must stay equal to the `env` runner/py/python.js passes to loadPyodide. LANG is set
// because Emscripten otherwise takes it from the browser's language (and from nothing in
// Node): a program's locale is the same on every participant's page.
const PYTHON_ENV = { HOME: '/home/pyodide', NO_COLOR: '1', PYTHON_COLORS: '0', LANG: 'C.UTF-8' };

/** Writes DIR/memory-snapshot.bin (and .br, .gz) unless it is there already. */
export async function ensurePythonSnapshot(pyodidePackageDir, vendorDir) {
  const target = path.join(vendorDir, SNAPSHOT_FILE);
  const stamp = path.join(vendorDir, '.snapshot-stamp');
  const maker = createHash('sha256').update(fs.readFileSync(new URL(import.meta.url))).digest('hex');
  if (fs.existsSync(target) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === maker) {
    console.log(`vendor: Python's memory snapshot already in place`);
    return;
  }
  fs.rmSync(stamp, { force: true });
  const started = Date.now();
  // Emscripten takes the program name (`_` in os.environ) from argv[1] in Node.
  const argv1 = process.argv[1];
  process.argv[1] = './this.program';
  let bytes;
  try {
    const { loadPyodide } = await import(pathToFileURL(path.join(pyodidePackageDir, 'pyodide.mjs')).href);
    const pyodide = await loadPyodide({
      indexURL: `${pyodidePackageDir}/`,
      env: PYTHON_ENV,
      stdout: () => {},
      stderr: () => {},
      _makeSnapshot: true,
    });
    bytes = pyodide.makeMemorySnapshot();
  } finally {
    process.argv[1] = argv1;
  }
  // Written in a scratch directory first, then moved into place with the snapshot itself
  // last: a build stopped half-way leaves no snapshot that looks complete.
  const scratch = path.join(vendorDir, '.snapshot-partial');
  fs.rmSync(scratch, { recursive: true, force: true });
  fs.mkdirSync(scratch);
  const partial = path.join(scratch, SNAPSHOT_FILE);
  fs.writeFileSync(partial, bytes);
  compressBeside(partial);
  for (const suffix of ['.gz', '.br', '']) fs.renameSync(`${partial}${suffix}`, `${target}${suffix}`);
  fs.rmSync(scratch, { recursive: true, force: true });
  fs.writeFileSync(stamp, maker);
  console.log(
    `vendor: made Python's memory snapshot (${(bytes.length / 1e6).toFixed(1)} MB) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}
