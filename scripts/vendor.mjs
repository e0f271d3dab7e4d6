// Copies the front-end runtimes pairpad serves itself (Monaco's AMD build,
// Pyodide's core files; Node's inspect goes into the JavaScript runner's bundle instead,
// scripts/runner-bundle.mjs) from node_modules into public/vendor/, under paths that
// carry their versions (so they can be cached forever), and writes .br and .gz
// beside each text or wasm file so the server sends them precompressed; then makes
// Python's memory snapshot beside Pyodide (python-snapshot.mjs).
// cargo-leptos then copies public/ into the site. Nothing here touches the network.

import { compressBeside } from './compress.mjs';
import { ensurePythonSnapshot } from './python-snapshot.mjs';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const vendorDir = path.join(root, 'public', 'vendor');

// The directory npm installed a direct dependency in (not require.resolve: a package whose
// "exports" leave out package.json cannot be resolved that way).
function packageDir(name) {
  return path.join(root, 'node_modules', name);
}

function versionOf(name) {
  return JSON.parse(fs.readFileSync(path.join(packageDir(name), 'package.json'), 'utf8')).version;
}

function copyTree(from, to) {
  fs.mkdirSync(to, { recursive: true });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) {
      copyTree(source, target);
    } else {
      fs.copyFileSync(source, target);
      compressBeside(target);
    }
  }
}

function vendor(name, copy) {
  const version = versionOf(name);
  const target = path.join(vendorDir, `${name}-${version}`);
  const stamp = path.join(target, '.complete');
  if (fs.existsSync(stamp)) {
    console.log(`vendor: ${name} ${version} already in place`);
    return;
  }
  fs.rmSync(target, { recursive: true, force: true });
  copy(packageDir(name), target);
  fs.writeFileSync(stamp, `${name}@${version}\n`);
  console.log(`vendor: copied ${name} ${version} to ${path.relative(root, target)}`);
}

// Monaco: the AMD build (min/vs), loaded with its own loader.js.
vendor('monaco-editor', (from, to) => copyTree(path.join(from, 'min', 'vs'), path.join(to, 'min', 'vs')));

// Pyodide: only the five core files; packages are not shipped.
const PYODIDE_CORE = ['pyodide.mjs', 'pyodide.asm.mjs', 'pyodide.asm.wasm', 'python_stdlib.zip', 'pyodide-lock.json'];
vendor('pyodide', (from, to) => {
  fs.mkdirSync(to, { recursive: true });
  for (const file of PYODIDE_CORE) {
    fs.copyFileSync(path.join(from, file), path.join(to, file));
    compressBeside(path.join(to, file));
  }
});

// Python's memory snapshot, restored by the Python worker instead of starting the
// interpreter (python-snapshot.mjs).
await ensurePythonSnapshot(packageDir('pyodide'), path.join(vendorDir, `pyodide-${versionOf('pyodide')}`));
