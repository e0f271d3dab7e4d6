// Static assets: vendored files (their paths carry versions) are cached for a
// year as immutable and sent precompressed (br or gzip) when the client accepts
// it, the app's own bundle is revalidated and sent precompressed too, all with
// the right MIME types (JavaScript modules, application/wasm); the bytes the
// browser gets are the npm package's bytes; pages with an editor fetch Monaco
// once, as soon as their head arrives.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, expect, createSessionViaApi } from '../support/fixtures.mjs';
import { waitForEditor } from '../support/editor.mjs';
import { MONACO_VS, PYODIDE_DIR } from '../support/env.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const npmFile = (...parts) => fs.readFileSync(path.join(repoRoot, 'node_modules', ...parts));

const loaderJs = `${MONACO_VS}/loader.js`;
const pyodideWasm = `${PYODIDE_DIR}pyodide.asm.wasm`;

for (const encoding of ['br', 'gzip']) {
  test(`a vendor file is immutable and sent as ${encoding} when accepted`, async ({ request }) => {
    const response = await request.get(loaderJs, { headers: { 'Accept-Encoding': encoding } });
    expect(response.status()).toBe(200);
    const headers = response.headers();
    expect(headers['cache-control']).toContain('immutable');
    expect(headers['cache-control']).toMatch(/max-age=\d{7,}/);
    expect(headers['content-encoding']).toBe(encoding);
    expect(headers['content-type']).toMatch(/^(text|application)\/javascript/);
    expect(headers['x-content-type-options']).toBe('nosniff');
    // Playwright decodes the body: it must be the package's file.
    expect((await response.body()).equals(npmFile('monaco-editor', 'min', 'vs', 'loader.js'))).toBe(true);
  });
}

test('a vendor file is sent uncompressed to a client that does not accept compression', async ({ request }) => {
  const response = await request.get(loaderJs, { headers: { 'Accept-Encoding': 'identity' } });
  expect(response.status()).toBe(200);
  expect(response.headers()['content-encoding'] ?? 'identity').toBe('identity');
  expect(response.headers()['cache-control']).toContain('immutable');
  expect((await response.body()).equals(npmFile('monaco-editor', 'min', 'vs', 'loader.js'))).toBe(true);
});

test('Pyodide modules are JavaScript and its wasm is application/wasm', async ({ request }) => {
  for (const file of ['pyodide.mjs', 'pyodide.asm.mjs']) {
    const response = await request.get(`${PYODIDE_DIR}${file}`, { headers: { 'Accept-Encoding': 'br, gzip' } });
    expect(response.status(), file).toBe(200);
    expect(response.headers()['content-type'], file).toMatch(/^(text|application)\/javascript/);
    expect(response.headers()['cache-control'], file).toContain('immutable');
  }
  for (const acceptEncoding of ['br, gzip', 'identity']) {
    const response = await request.get(pyodideWasm, { headers: { 'Accept-Encoding': acceptEncoding } });
    expect(response.status()).toBe(200);
    expect(response.headers()['content-type'], acceptEncoding).toMatch(/^application\/wasm/);
    expect(response.headers()['cache-control']).toContain('immutable');
    const body = await response.body();
    expect(body.subarray(0, 4).toString('hex'), 'not a wasm module').toBe('0061736d');
    expect(body.length).toBe(npmFile('pyodide', 'pyodide.asm.wasm').length);
  }
  for (const file of ['python_stdlib.zip', 'pyodide-lock.json']) {
    const response = await request.get(`${PYODIDE_DIR}${file}`);
    expect(response.status(), file).toBe(200);
    expect(response.headers()['cache-control'], file).toContain('immutable');
  }
});

test("the app's own wasm is application/wasm and revalidated", async ({ request }) => {
  const response = await request.get('/pkg/pairpad.wasm', { headers: { 'Accept-Encoding': 'br, gzip' } });
  expect(response.status()).toBe(200);
  expect(response.headers()['content-type']).toMatch(/^application\/wasm/);
  expect(response.headers()['cache-control']).not.toContain('immutable');
  // `./x build` precompresses the bundle at brotli's best quality: the bytes
  // on the wire are that file's, not the server's quicker on-the-fly brotli.
  expect(response.headers()['content-encoding']).toBe('br');
  const precompressed = fs.statSync(path.join(repoRoot, 'target', 'site', 'pkg', 'pairpad.wasm.br')).size;
  expect(Number(response.headers()['content-length'])).toBe(precompressed);
  expect((await response.body()).subarray(0, 4).toString('hex')).toBe('0061736d');
});

test('a missing vendor file is a 404 that is not cached forever', async ({ request }) => {
  const response = await request.get(`${MONACO_VS}/no-such-file.js`);
  expect(response.status()).toBe(404);
  expect(response.headers()['cache-control'] ?? '').not.toContain('immutable');
});

// The session page's head asks for Monaco's core files (rel=preload), so they
// download beside the wasm instead of after hydration. A preload the loader
// cannot reuse (another URL, kind or CORS mode) would fetch the file twice and
// make Chromium warn that it went unused.
test("a session page fetches Monaco's core files once, asked for by its head", async ({ page, request, browserLog }) => {
  const { id } = await createSessionViaApi(request, 'javascript');
  await page.goto(`/s/${id}`);
  await waitForEditor(page);
  const fetched = await page.evaluate(() =>
    performance.getEntriesByType('resource').map((e) => ({ path: new URL(e.name).pathname, by: e.initiatorType })),
  );
  for (const file of ['loader.js', 'editor/editor.main.js', 'editor/editor.main.css']) {
    const wanted = `${MONACO_VS}/${file}`;
    expect(fetched.filter((entry) => entry.path === wanted), file).toEqual([{ path: wanted, by: 'link' }]);
  }
  expect(browserLog.lines.filter((line) => /preload/i.test(line))).toEqual([]);
});
