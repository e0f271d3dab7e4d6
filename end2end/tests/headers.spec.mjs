// Security headers as the browser sees them: a per-response CSP nonce on HTML,
// nosniff, a referrer policy, and cross-origin isolation (COOP + COEP) so that
// `crossOriginIsolated` is true; and the pages never contact another host.

import { randomUUID } from 'node:crypto';
import { test, expect, createSessionViaApi, waitForSessionPage, clickCopyOnceHydrated } from '../support/fixtures.mjs';
import { HOST } from '../support/env.mjs';

/** The nonce in a CSP's script-src, or fails. */
function scriptNonce(csp) {
  const scriptSrc = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src '));
  expect(scriptSrc, `no script-src in CSP: ${csp}`).toBeTruthy();
  expect(scriptSrc).toContain("'wasm-unsafe-eval'");
  expect(scriptSrc).not.toContain("'unsafe-inline'");
  expect(scriptSrc).not.toMatch(/'unsafe-eval'/);
  const match = scriptSrc.match(/'nonce-([A-Za-z0-9+/_=-]+)'/);
  expect(match, `no nonce in script-src: ${scriptSrc}`).not.toBeNull();
  return match[1];
}

function expectCommonHeaders(headers, what) {
  expect(headers['x-content-type-options'], what).toBe('nosniff');
  expect(headers['referrer-policy'], what).toMatch(/^(no-referrer|same-origin)$/);
  expect(headers['cross-origin-opener-policy'], what).toBe('same-origin');
  expect(headers['cross-origin-embedder-policy'], what).toBe('require-corp');
}

const pages = [
  { name: 'the home page', status: 200, path: async () => '/' },
  {
    name: 'a session page',
    status: 200,
    path: async (request) => `/s/${(await createSessionViaApi(request, 'python')).id}`,
  },
  { name: 'the not-found page', status: 404, path: async () => `/s/${randomUUID()}` },
];

for (const { name, status, path } of pages) {
  test(`${name} is served with security headers and is cross-origin isolated`, async ({ page, request }) => {
    const response = await page.goto(await path(request));
    expect(response.status()).toBe(status);
    const headers = response.headers();
    expect(headers['content-type']).toMatch(/^text\/html/);
    expectCommonHeaders(headers, name);
    const csp = headers['content-security-policy'];
    expect(csp, 'no Content-Security-Policy on HTML').toBeTruthy();
    const nonce = scriptNonce(csp);
    expect(csp).toMatch(/(^|;)\s*object-src 'none'/);
    expect(csp).toMatch(/(^|;)\s*frame-ancestors 'none'/);

    // The page's scripts carry this response's nonce.
    const pageNonces = await page.evaluate(() =>
      [...document.querySelectorAll('script[nonce]')].map((s) => s.nonce),
    );
    expect(pageNonces.length, 'no script carries a nonce').toBeGreaterThan(0);
    for (const n of pageNonces) expect(n).toBe(nonce);

    expect(await page.evaluate(() => window.crossOriginIsolated)).toBe(true);
    expect(await page.evaluate(() => typeof SharedArrayBuffer)).toBe('function');
  });
}

test('each HTML response gets a fresh nonce', async ({ request }) => {
  const first = (await request.get('/')).headers()['content-security-policy'];
  const second = (await request.get('/')).headers()['content-security-policy'];
  expect(scriptNonce(first)).not.toBe(scriptNonce(second));
});

test('API responses carry the security headers too', async ({ request }) => {
  for (const path of ['/api/health', `/api/sessions/${randomUUID()}`, '/api/no-such-endpoint']) {
    const response = await request.get(path);
    expect(response.headers()['content-type'], path).toMatch(/^application\/json/);
    expectCommonHeaders(response.headers(), path);
  }
});

test('pages only talk to their own origin', async ({ page, context, request }) => {
  const foreign = [];
  const seen = [];
  const check = (url, kind) => {
    seen.push(url);
    const { protocol, host } = new URL(url);
    if (['http:', 'https:', 'ws:', 'wss:'].includes(protocol) ? host !== HOST : !['data:', 'blob:'].includes(protocol)) {
      foreign.push(`${kind} ${url}`);
    }
  };
  context.on('request', (r) => check(r.url(), r.resourceType()));
  page.on('websocket', (ws) => check(ws.url(), 'websocket'));
  page.on('worker', (w) => check(w.url(), 'worker'));

  await page.goto('/');
  await page.getByTestId('create-language').selectOption('javascript');
  await page.getByTestId('create-session').click();
  await waitForSessionPage(page);
  await clickCopyOnceHydrated(page);
  await page.waitForLoadState('networkidle');

  await page.goto(`/s/${randomUUID()}`);
  await expect(page.getByTestId('not-found')).toBeVisible();
  await page.waitForLoadState('networkidle');

  expect(seen.length).toBeGreaterThan(0);
  expect(foreign, `requests to other hosts:\n${foreign.join('\n')}`).toEqual([]);
});
