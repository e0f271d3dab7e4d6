// Links that lead nowhere (an unknown session, a malformed session id, an
// unknown path) answer 404 with a page that says so and offers a fresh session.

import { randomUUID } from 'node:crypto';
import { test, expect, waitForSessionPage, expectSessionLanguage } from '../support/fixtures.mjs';

const cases = [
  { name: 'an unknown session id', path: () => `/s/${randomUUID()}` },
  { name: 'a malformed session id', path: () => '/s/not-a-session-id' },
  { name: 'the nil UUID', path: () => '/s/00000000-0000-0000-0000-000000000000' },
  { name: 'an unknown path', path: () => '/no/such/page' },
];

for (const { name, path } of cases) {
  test(`404 page for ${name} offers a new session`, async ({ page }) => {
    const response = await page.goto(path());
    expect(response.status()).toBe(404);
    expect(response.headers()['content-type']).toMatch(/^text\/html/);
    const notFound = page.getByTestId('not-found');
    await expect(notFound).toBeVisible();
    await expect(page.getByTestId('share-link')).toHaveCount(0);

    const create = notFound.getByTestId('create-session');
    await expect(create).toBeVisible();
    await notFound.getByTestId('create-language').selectOption('python');
    await create.click();
    await waitForSessionPage(page);
    await expectSessionLanguage(page, 'python');
    await expect(page.getByTestId('not-found')).toHaveCount(0);
  });
}

test('the REST API tells unknown (404) from malformed (400) ids', async ({ request }) => {
  expect((await request.get(`/api/sessions/${randomUUID()}`)).status()).toBe(404);
  expect((await request.get('/api/sessions/not-a-session-id')).status()).toBe(400);
});
