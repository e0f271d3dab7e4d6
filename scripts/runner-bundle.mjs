// Builds a code-runner worker (public/runner/js-worker.js, public/runner/py-worker.js) as ONE
// self-contained script: the wasm-bindgen --target web glue, the libraries, the wasm itself
// (base64) and the hand-written parts, all inside one `(() => { "use strict"; ... })();`. With no
// script of its own to load, the JavaScript worker's response CSP can be `default-src 'none';
// script-src 'unsafe-eval'`, and since nothing is declared on the global object, code running in
// the worker (a JavaScript program in the global scope, Python through its `js` module) cannot
// reach the wasm exports or the glue. Writes .br and .gz beside it.
//
// node scripts/runner-bundle.mjs --glue <glue.js> [--wasm <x_bg.wasm>] [--lib name=path]...
//     [--js part.js]... --tail tail.js [--dynamic-import] --out public/runner/js-worker.js
//
//   --glue  wasm-bindgen --target web output: `export` keywords stripped, `export {..}` lines
//           dropped, inline snippets (`import {..} from './snippets/..'`) inlined, and the
//           `new URL('x_bg.wasm', import.meta.url)` default-init fallback turned into a throw,
//           so only glue.initSync({ module }) works. Bound to `glue` (a frozen object).
//   --wasm  bound to `WASM_BASE64` (a string); the parts decode it and call glue.initSync.
//   --lib   UMD/CommonJS file, bound to `name` (its module.exports); it sees its own
//           module/exports, `define` undefined and `this` a fresh object.
//   --js    hand-written parts, then --tail: pasted as they are into the shared scope.
//   --dynamic-import  the parts may use import() (the Python worker loads Pyodide's module,
//           which its CSP allows); without it, import() is warned about.
// Paths are relative to the current directory. Fails (exit 1, naming file:line) if the result does
// not compile as a classic script (e.g. module syntax is left). Nothing here touches the network.

import { compressBeside } from './compress.mjs';
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';

const ME = 'runner-bundle';
const die = (msg) => {
  console.error(`${ME}: error: ${msg}`);
  process.exit(1);
};
const warn = (msg) => console.warn(`${ME}: warning: ${msg}`);
const IDENT = /^[A-Za-z_$][\w$]*$/;

// ---- command line ----
const args = { lib: [], js: [], dynamicImport: false };
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === '--dynamic-import') {
    args.dynamicImport = true;
    continue;
  }
  const m = process.argv[i].match(/^--(glue|wasm|lib|js|tail|out)(?:=(.*))?$/s);
  if (!m) die(`unknown argument ${process.argv[i]} (see the header of scripts/runner-bundle.mjs)`);
  const value = m[2] ?? process.argv[++i];
  if (value === undefined || value === '') die(`--${m[1]} needs a value`);
  if (m[1] === 'lib' || m[1] === 'js') args[m[1]].push(value);
  else if (args[m[1]] !== undefined) die(`--${m[1]} given twice`);
  else args[m[1]] = value;
}
for (const k of ['glue', 'tail', 'out']) if (!args[k]) die(`--${k} is required`);

/** How a path is named in messages and the header: relative to the cwd when inside it. */
const shown = (p) => {
  const rel = path.relative(process.cwd(), path.resolve(p));
  return rel.startsWith('..') || path.isAbsolute(rel) ? p : rel;
};
const read = (p, encoding = 'utf8') => {
  try {
    return fs.readFileSync(p, encoding);
  } catch (e) {
    die(`cannot read ${shown(p)}: ${e.message}`);
  }
};
const splitLines = (text) => text.replace(/^\uFEFF/, '').split(/\r?\n/);

// The output is built as lines that remember where they came from ({ text, file, line, lib }),
// so every check can name the input file and line rather than a line of the bundle.
const out = [];
const synth = (text) => {
  for (const t of text.split('\n')) out.push({ text: t, file: null, line: null, lib: false });
};

// ---- glue: ESM -> function body (line-based; it is generated code with a fixed shape) ----
const snippets = new Map(); // resolved path -> { name, names }
const snippetLines = [];

function stripEsm(file, depth) {
  const names = []; // [exported name, local name]
  const lines = [];
  splitLines(read(file)).forEach((text, n) => {
    const where = `${shown(file)}:${n + 1}`;
    const keep = (t) => lines.push({ text: t, file: shown(file), line: n + 1, lib: false });
    let m;
    if ((m = text.match(/^\s*import\s*\{([^}]*)\}\s*from\s*(['"])(\.{1,2}\/[^'"]+)\2\s*;?\s*$/))) {
      // a wasm-bindgen snippet (inline_js or module = "/x.js"): inlined once, in its own scope
      if (depth >= 4) die(`${where}: snippet imports nested too deep`);
      const snippet = inlineSnippet(path.resolve(path.dirname(file), m[3]), depth + 1);
      const binds = m[1].split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
        const [a, b = a] = s.split(/\s+as\s+/);
        if (!IDENT.test(a) || !IDENT.test(b)) die(`${where}: unsupported import binding \`${s}\``);
        if (!snippet.names.some(([e]) => e === a)) die(`${where}: ${m[3]} does not export ${a}`);
        return a === b ? a : `${a}: ${b}`;
      });
      return keep(`const { ${binds.join(', ')} } = ${snippet.name}; // was: ${text.trim()}`);
    }
    if (/^\s*import\b(?!\s*[(.])/.test(text)) die(`${where}: unsupported import statement: ${text.trim()}`);
    if ((m = text.match(/^export\s+((?:async\s+)?function\b\s*\*?|class|const|let|var)\s*([A-Za-z_$][\w$]*)/))) {
      names.push([m[2], m[2]]);
      return keep(text.replace(/^export\s+/, ''));
    }
    if ((m = text.match(/^export\s*\{([^}]*)\}\s*;?\s*$/))) {
      for (const s of m[1].split(',').map((x) => x.trim()).filter(Boolean)) {
        const [local, exported = local] = s.split(/\s+as\s+/);
        if (!IDENT.test(local) || !IDENT.test(exported)) die(`${where}: unsupported export \`${s}\``);
        names.push([exported, local]);
      }
      return keep(`// (dropped: ${text.trim()})`);
    }
    if ((m = text.match(/^export\s+default\s+([A-Za-z_$][\w$]*)\s*;?\s*$/))) {
      names.push(['default', m[1]]);
      return keep(`// (dropped: ${text.trim()})`);
    }
    if (/^\s*export\b/.test(text)) die(`${where}: unsupported export statement: ${text.trim()}`);
    if (/\bimport\.meta\b/.test(text)) {
      // Only the glue's default-init fallback is allowed, and it becomes a throw.
      const t = depth > 0 ? text : text.replace(
        /new URL\((['"])[^'"]+_bg\.wasm\1\s*,\s*import\.meta\.url\s*\)/,
        '(() => { throw new Error("runner bundle: the wasm is bundled; call glue.initSync({ module })"); })()',
      );
      if (/\bimport\.meta\b/.test(t)) die(`${where}: unsupported use of import.meta: ${text.trim()}`);
      return keep(t);
    }
    keep(text);
  });
  return { lines, names };
}

function inlineSnippet(file, depth) {
  if (snippets.has(file)) {
    const s = snippets.get(file);
    if (!s.names) die(`${shown(file)}: snippets import each other in a cycle`);
    return s;
  }
  const entry = { name: `__snippet${snippets.size}`, names: null };
  snippets.set(file, entry);
  const { lines, names } = stripEsm(file, depth);
  entry.names = names;
  snippetLines.push({ text: `const ${entry.name} = (() => { // inlined ${shown(file)}`, file: null, line: null, lib: false });
  snippetLines.push(...lines);
  snippetLines.push({ text: `return { ${names.map(([e, l]) => `${JSON.stringify(e)}: ${l}`).join(', ')} };`, file: null, line: null, lib: false });
  snippetLines.push({ text: '})();', file: null, line: null, lib: false });
  return entry;
}

const glue = stripEsm(path.resolve(args.glue), 0);
if (!glue.names.some(([e]) => e === 'initSync')) {
  die(`${shown(args.glue)}: does not export initSync (not wasm-bindgen --target web output?)`);
}

// ---- libraries ----
const libs = args.lib.map((spec) => {
  const eq = spec.indexOf('=');
  const name = spec.slice(0, eq);
  const file = spec.slice(eq + 1);
  if (eq < 1 || !IDENT.test(name) || !file) die(`--lib wants name=path, got ${spec}`);
  return { name, file };
});
const bound = ['glue', 'WASM_BASE64', ...libs.map((l) => l.name)];
for (const [i, name] of bound.entries()) {
  if (bound.indexOf(name) !== i) die(`the name ${name} is bound twice (--lib ${name}=...)`);
}

// ---- wasm ----
let wasmBytes = null;
if (args.wasm) {
  wasmBytes = read(args.wasm, null);
  if (!WebAssembly.validate(wasmBytes)) die(`${shown(args.wasm)}: not a valid WebAssembly module`);
}

// ---- assemble ----
const inputs = [args.glue, args.wasm, ...libs.map((l) => l.file), ...args.js, args.tail].filter(Boolean);
synth(`// generated by scripts/runner-bundle.mjs from ${inputs.map(shown).join(', ')} — do not edit`);
synth('(() => {\n"use strict";');
synth(`const glue = (() => { // ${shown(args.glue)}`);
out.push(...snippetLines, ...glue.lines);
synth(`return Object.freeze({ ${glue.names.map(([e, l]) => `${JSON.stringify(e)}: ${l}`).join(', ')} });\n})();`);
for (const { name, file } of libs) {
  synth(`const ${name} = (() => { // ${shown(file)}`);
  synth('const module = { exports: {} }; const exports = module.exports; const define = undefined;');
  synth('(function () {');
  splitLines(read(file)).forEach((text, n) => out.push({ text, file: shown(file), line: n + 1, lib: true }));
  synth('}).call({});\nreturn module.exports;\n})();');
}
if (wasmBytes) synth(`const WASM_BASE64 = "${wasmBytes.toString('base64')}"; // ${shown(args.wasm)}`);
for (const [label, file] of [...args.js.map((f) => ['js', f]), ['tail', args.tail]]) {
  synth(`// ---- ${label}: ${shown(file)} ----`);
  splitLines(read(file)).forEach((text, n) => out.push({ text, file: shown(file), line: n + 1, lib: false }));
}
synth('})();\n');

// ---- checks ----
// The compile is the check: a classic script rejects import/export statements and import.meta.
// The line scan only finds the culprit for the message (it would misfire on text in a string,
// e.g. the Python source in runner/py/python.js, so it never fails the build on its own).
const origin = (i) => (out[i].file ? `${out[i].file}:${out[i].line}` : `${shown(args.out)}:${i + 1} (generated)`);
const code = out.map((l) => l.text).join('\n');
const FILENAME = `${ME}-output`;
try {
  new vm.Script(code, { filename: FILENAME });
} catch (e) {
  const culprit = out.findIndex(({ text, lib }) => !lib
    && (/^\s*(import|export)\b(?!\s*[(.])/.test(text) || /\bimport\s*\.\s*meta\b/.test(text)));
  const m = String(e.stack).match(new RegExp(`^${FILENAME}:(\\d+)`));
  const at = culprit >= 0 ? origin(culprit) : m ? origin(Number(m[1]) - 1) : shown(args.out);
  die(`${at}: the bundle is not a valid classic script: ${e.name}: ${e.message}`);
}
let sawBase64 = false;
out.forEach(({ text, lib }, i) => {
  if (lib) return;
  if (!args.dynamicImport && /\bimport\s*\(/.test(text)) warn(`${origin(i)}: dynamic import() (the worker's CSP allows no script source)`);
  if (out[i].file && /\bWASM_BASE64\b/.test(text)) sawBase64 = true;
});
if (wasmBytes && !sawBase64) warn('--wasm given but no --js or --tail part mentions WASM_BASE64');

fs.mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
fs.writeFileSync(args.out, code);
compressBeside(args.out);
console.log(`${ME}: wrote ${shown(args.out)} (${Buffer.byteLength(code)} bytes)`);
