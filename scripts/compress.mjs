// Writes .br and .gz beside text and wasm files so pairpad's static file
// service sends them precompressed (instead of compressing on every request).
// Used by vendor.mjs for Monaco and Pyodide, whose files never change. The
// site's own bundle (pkg/) is not precompressed: a later plain `cargo leptos
// build` would leave stale .br/.gz beside new files.

import { brotliCompressSync, gzipSync, constants } from 'node:zlib';
import fs from 'node:fs';
import path from 'node:path';

const COMPRESSIBLE = /\.(js|mjs|css|json|wasm|svg|ttf|map|txt|html)$/;

/** Compresses one file (if worth it) into FILE.br and FILE.gz. */
export function compressBeside(file) {
  if (!COMPRESSIBLE.test(file)) return;
  const data = fs.readFileSync(file);
  if (data.length < 1024) return;
  fs.writeFileSync(`${file}.gz`, gzipSync(data, { level: 9 }));
  fs.writeFileSync(
    `${file}.br`,
    brotliCompressSync(data, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: 9,
        [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      },
    }),
  );
}

/** Compresses every file under `dir`. */
export function compressTree(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) compressTree(file);
    else if (!/\.(br|gz)$/.test(entry.name)) compressBeside(file);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  for (const dir of process.argv.slice(2)) compressTree(dir);
}
