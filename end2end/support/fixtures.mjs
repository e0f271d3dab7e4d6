// Shared test fixtures: every test gets a `browserLog` that records what the
// browser complained about (console errors and warnings, uncaught exceptions,
// failed requests, CSP violations, worker console output) in every page of its
// context. A test that passed still fails if the browser reported a CSP or
// cross-origin-isolation (COEP/CORP) block, and the log is printed on failure.

import { test as base, expect } from '@playwright/test';
import { SESSION_PATH } from './env.mjs';

export { expect };

/** Messages that mean a security header blocked something. */
const POLICY_PROBLEM =
  /Content[- ]Security[- ]Policy|\[csp\]|Refused to|ERR_BLOCKED_BY|Cross-Origin-(Embedder|Resource|Opener)-Policy|require-corp|crossOriginIsolated/i;

// Runs in every page before its own scripts (Playwright injects it outside the
// page's CSP): reports CSP violations, which Chromium may log only to DevTools.
function reportCspViolations() {
  document.addEventListener(
    'securitypolicyviolation',
    (e) => {
      console.error(
        `[csp] ${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'}` +
          ` at ${e.sourceFile || '?'}:${e.lineNumber}; ${e.disposition}`,
      );
    },
    true,
  );
}

export class BrowserLog {
  constructor() {
    /** @type {string[]} */
    this.lines = [];
    this.watched = new WeakSet();
  }

  add(line) {
    this.lines.push(line);
  }

  /** Records every current and future page of `context`. */
  async watchContext(context) {
    await context.addInitScript(reportCspViolations);
    for (const page of context.pages()) this.watchPage(page);
    context.on('page', (page) => this.watchPage(page));
  }

  watchPage(page) {
    if (this.watched.has(page)) return;
    this.watched.add(page);
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') {
        const where = msg.location()?.url ? ` (${msg.location().url}:${msg.location().lineNumber})` : '';
        this.add(`console.${msg.type()}: ${msg.text()}${where}`);
      }
    });
    page.on('pageerror', (error) => this.add(`pageerror: ${error.stack || error.message}`));
    page.on('requestfailed', (request) => {
      this.add(`requestfailed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`);
    });
    page.on('crash', () => this.add('page crashed'));
    page.on('worker', (worker) => {
      this.add(`worker started: ${worker.url()}`);
      worker.on('console', (msg) => {
        if (msg.type() === 'error' || msg.type() === 'warning') {
          this.add(`worker console.${msg.type()}: ${msg.text()}`);
        }
      });
    });
  }

  /** Lines that say a CSP, COEP or CORP rule blocked something. */
  policyProblems() {
    return this.lines.filter((line) => POLICY_PROBLEM.test(line));
  }

  /** Everything recorded, for assertion messages. */
  text() {
    return this.lines.length ? this.lines.join('\n') : '(the browser reported nothing)';
  }
}

export const test = base.extend({
  browserLog: [
    async ({ context }, use, testInfo) => {
      const log = new BrowserLog();
      await log.watchContext(context);
      await use(log);
      if (log.lines.length) {
        await testInfo.attach('browser-log', { body: log.text(), contentType: 'text/plain' });
      }
      if (testInfo.status === testInfo.expectedStatus) {
        expect(log.policyProblems(), `the browser reported blocked content:\n${log.text()}`).toEqual([]);
      } else if (log.lines.length) {
        console.log(`\n--- browser log of "${testInfo.title}" ---\n${log.text()}\n---`);
      }
    },
    { auto: true },
  ],
});

/** Creates a session through the REST API; returns its `{ id, url, language }`. */
export async function createSessionViaApi(request, language) {
  const response = await request.post('/api/sessions/create', {
    data: language ? { language } : undefined,
  });
  expect(response.status(), await response.text()).toBe(201);
  const body = await response.json();
  expect(body.id).toMatch(/^[0-9a-f-]{36}$/);
  return body;
}

/** The session id in a page URL, or fails. */
export function sessionIdOf(url) {
  const match = new URL(url).pathname.match(SESSION_PATH);
  expect(match, `not a session URL: ${url}`).not.toBeNull();
  return match[1];
}

/** Waits until `page` is at a session URL; returns the session id. */
export async function waitForSessionPage(page) {
  await page.waitForURL((url) => SESSION_PATH.test(url.pathname));
  return sessionIdOf(page.url());
}

/**
 * Waits until a session page has hydrated by clicking its copy button until the
 * click has an effect (before hydration it has none). Returns the feedback text.
 */
export async function clickCopyOnceHydrated(page) {
  const feedback = page.getByText(/^(Copied|Press Ctrl\+C to copy)$/);
  await expect(async () => {
    await page.getByTestId('copy-link').click();
    await expect(feedback).toBeVisible({ timeout: 1_000 });
  }, 'the copy button never reacted: the page did not hydrate').toPass({ timeout: 30_000 });
  return (await feedback.textContent()).trim();
}

const LANGUAGE_LABELS = { javascript: 'JavaScript', python: 'Python' };

/**
 * Expects a session page to show `language` ('javascript' | 'python'): either
 * as text (`data-testid="session-language"`) or as the chosen option of the
 * language picker (`data-testid="language-select"`).
 */
export async function expectSessionLanguage(page, language) {
  const label = LANGUAGE_LABELS[language];
  const shown = page.locator('[data-testid="session-language"], [data-testid="language-select"]').first();
  await expect(shown, 'the session page shows no language').toBeVisible();
  if ((await shown.evaluate((el) => el.tagName)) === 'SELECT') {
    await expect(shown).toHaveValue(language);
    await expect(shown.locator('option:checked')).toHaveText(label);
  } else {
    await expect(shown).toHaveText(label);
  }
}
