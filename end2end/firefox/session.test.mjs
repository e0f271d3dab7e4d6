// Firefox: a session created from the home page. The visitor picks a language in
// the create form, clicks "Create session" and lands on /s/<id> as its
// interviewer, with the share link and a live editor; the REST API describes the
// same session.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serverForFile } from './support/server.mjs';
import { withPeople, poll } from './support/browser.mjs';

const own = serverForFile();

/** A session path as the server issues it (UUID v4). */
const SESSION_PATH = /^\/s\/([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})$/;

test('the home page creates a Python session and lands on its page', { timeout: 120_000 }, async () => {
  const { server } = own;
  await withPeople(
    ['Ada'],
    async ([ada]) => {
      await ada.open(`${server.origin}/`);
      await poll(() => ada.byTestId('create-session').isDisplayed(), {
        message: 'the home page shows no create button',
      });
      await ada.select('create-language', 'python');
      await ada.byTestId('create-session').click();

      // The creator arrives with the interviewer key in the fragment; the page
      // keeps it and takes it off the address bar.
      const url = await poll(
        async () => {
          const u = new URL(await ada.url());
          return SESSION_PATH.test(u.pathname) && u.hash === '' ? u : null;
        },
        { timeout: 30_000, message: 'the create button never led to a session page (without the key in the address)' },
      );
      const id = url.pathname.match(SESSION_PATH)[1];
      const link = `${server.origin}/s/${id}`;
      assert.equal(url.href, link);

      await ada.waitForEditor();
      assert.equal(await ada.text('role'), 'Interviewer');
      assert.equal(await ada.value('share-link'), link);
      assert.equal(await ada.value('language-select'), 'python');
      assert.equal(await ada.editorLanguage(), 'python');

      // The REST API agrees.
      const response = await fetch(`${server.origin}/api/sessions/${id}`);
      assert.equal(response.status, 200);
      const body = await response.json();
      assert.equal(body.id, id);
      assert.equal(body.language, 'python');
    },
    { server },
  );
});
