// Sessions from the user's side: create one from the home page, land on its
// page, share its link with a second browser, and copy the link once the page
// has hydrated. The REST API must describe the same session the page shows.

import {
  test,
  expect,
  createSessionViaApi,
  waitForSessionPage,
  clickCopyOnceHydrated,
  expectSessionLanguage,
} from '../support/fixtures.mjs';
import { ORIGIN } from '../support/env.mjs';

test.describe('with clipboard permission', () => {
  test.use({ permissions: ['clipboard-read', 'clipboard-write'] });

  test('home page creates a Python session that a second browser can join', async ({
    page,
    browser,
    request,
    browserLog,
  }) => {
    const home = await page.goto('/');
    expect(home.status()).toBe(200);
    await expect(page.getByTestId('create-session')).toBeVisible();
    await page.getByTestId('create-language').selectOption('python');
    await page.getByTestId('create-session').click();
    const id = await waitForSessionPage(page);

    // The creator arrived with the interviewer key in the fragment; the page
    // keeps it and takes it off the address bar. The share link is this page's
    // own address, absolute, without the key.
    const link = `${ORIGIN}/s/${id}`;
    await expect(page).toHaveURL(link);
    await expect(page.getByTestId('role')).toHaveText('Interviewer');
    await expect(page.getByTestId('share-link')).toHaveValue(link);
    await expect(page.getByTestId('share-link')).toHaveAttribute('readonly', '');
    await expectSessionLanguage(page, 'python');
    await expect(page.getByTestId('editor')).toBeVisible();

    // The REST API agrees.
    const api = await request.get(`/api/sessions/${id}`);
    expect(api.status()).toBe(200);
    const body = await api.json();
    expect(body).toMatchObject({ id, language: 'python' });
    expect(typeof body.users).toBe('number');
    expect(Date.parse(body.createdAt)).not.toBeNaN();
    expect(Date.parse(body.lastActivity)).not.toBeNaN();

    // A second browser (its own cookies and storage) opens the shared link.
    const other = await browser.newContext();
    try {
      await browserLog.watchContext(other);
      const guest = await other.newPage();
      const response = await guest.goto(link);
      expect(response.status()).toBe(200);
      expect(guest.url()).toBe(link);
      await expect(guest.getByTestId('share-link')).toHaveValue(link);
      await expectSessionLanguage(guest, 'python');
      await expect(guest.getByTestId('editor')).toBeVisible();
      await expect(guest.locator(`[data-session-id="${id}"]`)).toHaveCount(1);
    } finally {
      await other.close();
    }
  });

  test('copy button copies the share link after hydration', async ({ page, request }) => {
    const session = await createSessionViaApi(request, 'javascript');
    const response = await page.goto(`/s/${session.id}`);
    expect(response.status()).toBe(200);
    await expectSessionLanguage(page, 'javascript');
    const link = await page.getByTestId('share-link').inputValue();
    expect(link).toBe(`${ORIGIN}/s/${session.id}`);
    expect(link).toBe(session.url);

    const feedback = await clickCopyOnceHydrated(page);
    expect(feedback, 'the clipboard write was refused although permission was granted').toBe('Copied');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(link);
  });
});

test('without clipboard permission the copy button still helps', async ({ page, request }) => {
  const session = await createSessionViaApi(request, 'python');
  await page.goto(`/s/${session.id}`);
  const feedback = await clickCopyOnceHydrated(page);
  if (feedback === 'Press Ctrl+C to copy') {
    // The link is selected so that Ctrl+C copies it.
    const selected = await page.getByTestId('share-link').evaluate((input) =>
      input.value.slice(input.selectionStart, input.selectionEnd),
    );
    expect(selected).toBe(session.url);
  } else {
    expect(feedback).toBe('Copied');
  }
});
