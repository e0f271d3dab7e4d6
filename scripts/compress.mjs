// Writes .br and .gz beside text and wasm files so pairpad's static file
// service sends them precompressed (instead of compressing on every request).
// Used by vendor.mjs for Monaco and Pyodide, whose files never change (and for
// Python's memory snapshot, python-snapshot.mjs), and by
// `./x build` for the site's own bundle (`node scripts/compress.mjs --best
// target/site/pkg`): brotli's best quality takes about 4 s for the hydrate wasm
// and sends 398 KB where the server's on-the-fly level 4 would send 497 KB. The
// server ignores the bundle's variants if any is older than its file
// (src/server/static_files.rs), as after a plain `cargo leptos build`.

import { brotliCompressSync, gzipSync, constants } from 'node:zlib';
import fs from 'node:fs';
import path from 'node:path';

// .bin: Python's memory snapshot (python-snapshot.mjs), mostly zeros.
const COMPRESSIBLE = /\.(js|mjs|css|json|wasm|svg|ttf|map|txt|html|bin)$/;

/** Brotli quality for vendor files (Pyodide's are large) and with --best. */
const BROTLI_QUALITY = 9;
const BROTLI_BEST = constants.BROTLI_MAX_QUALITY;

/** Compresses one file (if worth it) into FILE.br and FILE.gz. */
export function compressBeside(file, brotliQuality = BROTLI_QUALITY) {
  if (!COMPRESSIBLE.test(file)) return;
  const data = fs.readFileSync(file);
  if (data.length < 1024) return;
  fs.writeFileSync(`${file}.gz`, gzipSync(data, { level: 9 }));
  fs.writeFileSync(
    `${file}.br`,
    brotliCompressSync(data, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: brotliQuality,
        [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      },
    }),
  );
}

/** Compresses every file under `dir`. */
export function compressTree(dir, brotliQuality = BROTLI_QUALITY) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) compressTree(file, brotliQuality);
    else if (!/\.(br|gz)$/.test(entry.name)) compressBeside(file, brotliQuality);
  }
}

// node scripts/compress.mjs [--best] DIR...
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const args = process.argv.slice(2);
  const quality = args.includes('--best') ? BROTLI_BEST : BROTLI_QUALITY;
  for (const dir of args.filter((arg) => arg !== '--best')) compressTree(dir, quality);
}
