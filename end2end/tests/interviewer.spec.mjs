// Interviews from the users' side (issue 12): an interviewer and a candidate,
// each in a browser context of their own (own cookies and storage).
//
// - A session created on the home page with a password: the creator is the
//   interviewer (the key leaves the address bar); a candidate with the share
//   link gets a password prompt and none of the code until the right password.
// - What a candidate never sees or receives: the interviewer's controls, the
//   notes, the interviewer key.
// - Notes shared live between two interviewers, kept across a reload.
// - The candidate leaving the tab and pasting a lot: notices for the
//   interviewer only.
// - Ending and reopening the interview: read-only for everyone while ended.
// - Exports: the code file (extension follows the language) and the
//   interviewer's HTML record (code, notes, a run's output; nothing in it runs).
//
// Sessions are created through the REST API (which answers `interviewerUrl`)
// except in the home page test. Code is set through Monaco's model (the normal
// edit path). Every wait is bounded; nothing asserts a wall-clock time.

import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { test as base, expect, waitForSessionPage, expectSessionLanguage } from '../support/fixtures.mjs';
import { ORIGIN } from '../support/env.mjs';
import { ARRIVAL, expectText, waitForEditor, caretTo, editorText } from '../support/editor.mjs';
import { presetName, setCode, run, texts } from '../support/run-panel.mjs';
import { leaveTab, comeBack } from '../support/attention.mjs';

/** Something no page could show by chance. */
const tag = (label) => `${label}${randomBytes(5).toString('hex')}`;

/** Test ids a candidate's page must never render. */
const INTERVIEWER_ONLY = [
  'interviewer-link',
  'copy-interviewer-link',
  'password-set',
  'password-clear',
  'end-session',
  'reopen-session',
  'notes',
  'export-record',
  'focus-notice',
];

/**
 * `people.open(name, contextOptions)`: a new browser context (own cookies and
 * storage, display name `name`, watched by `browserLog`) and a blank page in
 * it. Every context is closed after the test.
 */
const test = base.extend({
  people: async ({ browser, browserLog }, use) => {
    const contexts = [];
    await use({
      async open(name, options = {}) {
        const context = await browser.newContext(options);
        contexts.push(context);
        await browserLog.watchContext(context);
        await presetName(context, name);
        return context.newPage();
      },
    });
    await Promise.all(contexts.map((context) => context.close()));
  },
});

/** POST /api/sessions/create; returns its 201 body (with `interviewerUrl`). */
async function createInterview(request, { language = 'javascript', password } = {}) {
  const data = { language };
  if (password) data.password = password;
  const response = await request.post('/api/sessions/create', { data });
  expect(response.status(), await response.text()).toBe(201);
  const session = await response.json();
  expect(session.url).toBe(`${ORIGIN}/s/${session.id}`);
  expect(session.interviewerUrl).toBe(`${session.url}#key=${session.interviewerKey}`);
  return session;
}

/** Opens the interviewer link as `name`; waits for the editor and the role. */
async function openInterviewer(people, name, interviewerUrl) {
  const page = await people.open(name);
  await page.goto(interviewerUrl);
  await waitForEditor(page);
  await expect(page.getByTestId('role')).toHaveText('Interviewer');
  // The key left the address bar (it stays in this browser's storage).
  await expect(page, 'the key stayed in the address bar').toHaveURL(interviewerUrl.replace(/#.*$/, ''));
  return page;
}

/** Opens the share link as `name` (no key, no password); waits for the editor and the role. */
async function openCandidate(people, name, url, options) {
  const page = await people.open(name, options);
  const response = await page.goto(url);
  expect(response.status()).toBe(200);
  await waitForEditor(page);
  await expect(page.getByTestId('role')).toHaveText('Candidate');
  return page;
}

/**
 * Records everything `page` receives from the server: WebSocket frames and the
 * bodies of documents and fetches. `received(text)` says whether `text` was in
 * any of them or is in the page now.
 */
function watchWhatArrives(page) {
  const chunks = [];
  const pending = [];
  page.on('websocket', (socket) => {
    socket.on('framereceived', ({ payload }) => chunks.push(Buffer.isBuffer(payload) ? payload : Buffer.from(payload)));
  });
  page.on('response', (response) => {
    if (!['document', 'fetch', 'xhr', 'eventsource'].includes(response.request().resourceType())) return;
    pending.push(response.body().then((body) => chunks.push(body), () => {}));
  });
  return {
    async received(text) {
      await Promise.all(pending);
      const needle = Buffer.from(text);
      return chunks.some((chunk) => chunk.includes(needle)) || (await page.content()).includes(text);
    },
  };
}

/** What someone with no cookies of this context's gets from the server for `url`, before any script runs. */
async function serverRenderedFor(page, url) {
  const response = await page.context().request.get(url);
  expect(response.status()).toBe(200);
  return response.text();
}

/** Fills the password prompt and submits it. */
async function submitPassword(page, password) {
  await page.getByTestId('password-input').fill(password);
  await page.getByTestId('password-submit').click();
}

/** Clicks `testId` and returns the file it downloads: `{ name, text }`. */
async function downloadFrom(page, testId) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId(testId).click()]);
  return { name: download.suggestedFilename(), text: await readFile(await download.path(), 'utf8') };
}

/** The people panel entry of `name` with role `role` on `page`. */
const personEntry = (page, role, name) =>
  page.getByTestId('user-list').locator(`li[data-role="${role}"]`).filter({ hasText: name });

/** Expects `page`'s people panel to mark Ivy as the interviewer and Cam as the candidate. */
async function expectRoles(page, interviewer, candidate) {
  await expect(personEntry(page, 'interviewer', interviewer), `${interviewer} is not marked as the interviewer`).toHaveCount(1, ARRIVAL);
  await expect(personEntry(page, 'candidate', candidate), `${candidate} is not marked as the candidate`).toHaveCount(1, ARRIVAL);
  await expect(personEntry(page, 'candidate', interviewer)).toHaveCount(0);
  await expect(personEntry(page, 'interviewer', candidate)).toHaveCount(0);
}

/** Pastes `text` into the editor at its end through the system clipboard, as Ctrl+V does. */
async function pasteAtEnd(page, text) {
  await page.evaluate((t) => navigator.clipboard.writeText(t), text);
  await caretTo(page, 'end');
  await page.keyboard.press('Control+V');
}

const squash = (text) => text.replace(/\s+/g, ' ').trim();
const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

// ------------------------------------------------------------------------------------------

test('a session created with a password: the creator interviews, a candidate needs the password to see the code', async ({
  page,
  context,
  people,
}) => {
  test.setTimeout(120_000);
  const password = tag('pw-');
  const secret = tag('secretAnswer_');
  const code = `// interview question\nconst ${secret} = 42;\n`;

  // The interviewer creates the session on the home page.
  await presetName(context, 'Ivy');
  expect((await page.goto('/')).status()).toBe(200);
  await page.getByTestId('create-language').selectOption('javascript');
  await page.getByTestId('password-field').fill(password);
  await page.getByTestId('create-session').click();
  const id = await waitForSessionPage(page);
  const shareUrl = `${ORIGIN}/s/${id}`;
  await expect(page, 'the key stayed in the address bar').toHaveURL(shareUrl, { timeout: 30_000 });
  await waitForEditor(page);
  await expect(page.getByTestId('role')).toHaveText('Interviewer');
  await expect(page.getByTestId('share-link'), 'the share link must not carry the key').toHaveValue(shareUrl);
  const interviewerLink = page.getByTestId('interviewer-link');
  await expect(interviewerLink).toHaveValue(new RegExp(`^${escapeRegExp(shareUrl)}#key=[A-Za-z0-9_-]{43}$`));
  const key = (await interviewerLink.inputValue()).split('#key=')[1];
  expect(await page.evaluate((i) => localStorage.getItem(`pairpad.key.${i}`), id)).toBe(key);
  await expect(page.getByTestId('password-set')).toContainText('Password set');
  await setCode(page, code);

  // The candidate opens the share link: a password prompt and no code anywhere.
  const cam = await people.open('Cam');
  const arrived = watchWhatArrives(cam);
  expect((await cam.goto(shareUrl)).status()).toBe(200);
  await expect(cam.getByTestId('password-prompt')).toBeVisible({ timeout: 30_000 });
  expect(await cam.content(), 'the locked page contains the code').not.toContain(secret);
  expect(await serverRenderedFor(cam, shareUrl), 'the server-rendered locked page contains the code').not.toContain(secret);

  // A wrong password is refused. (A click before hydration may reload the
  // page instead; at most three guesses stay below the rate limit.)
  for (let attempt = 1; ; attempt++) {
    await submitPassword(cam, 'not-the-password');
    try {
      await expect(cam.getByTestId('password-error')).toBeVisible({ timeout: 10_000 });
      break;
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
  await expect(cam.getByTestId('password-error')).toHaveText(/wrong password/i);
  await expect(cam.getByTestId('password-prompt')).toBeVisible();
  expect(await arrived.received(secret), 'the code reached the locked page').toBe(false);
  expect(await arrived.received(key), 'the interviewer key reached the candidate').toBe(false);

  // The right one opens the workspace with the interviewer's code, also after a reload.
  await submitPassword(cam, password);
  await waitForEditor(cam);
  await expectText(cam, code, "the unlocked page does not show the interviewer's code");
  await expect(cam.getByTestId('password-prompt')).toHaveCount(0);
  await expect(cam.getByTestId('role')).toHaveText('Candidate');
  await cam.reload();
  await waitForEditor(cam);
  await expect(cam.getByTestId('password-prompt'), 'the password was asked again after a reload').toHaveCount(0);
  await expectText(cam, code);

  // Both people panels say who interviews.
  await expectRoles(page, 'Ivy', 'Cam');
  await expectRoles(cam, 'Ivy', 'Cam');
  expect(await arrived.received(key), 'the interviewer key reached the candidate').toBe(false);
});

test("a candidate never sees the interviewer's controls, notes or key", async ({ request, people }) => {
  test.setTimeout(120_000);
  const session = await createInterview(request);
  const ivy = await openInterviewer(people, 'Ivy', session.interviewerUrl);
  const cam = await people.open('Cam');
  const arrived = watchWhatArrives(cam);
  expect((await cam.goto(session.url)).status()).toBe(200);
  await waitForEditor(cam);
  await expect(cam.getByTestId('role')).toHaveText('Candidate');

  // The interviewer's page has what the candidate's must not.
  for (const id of ['interviewer-link', 'end-session', 'export-record', 'notes']) {
    await expect(ivy.getByTestId(id), `the interviewer has no ${id}`).toBeVisible();
  }

  // A note, then a code change after it.
  const note = tag('private-note-');
  await expect(ivy.getByTestId('notes')).toBeEditable();
  await ivy.getByTestId('notes').fill(`Candidate hesitated on recursion ${note}`);
  const marker = `// after the note ${tag('m')}\n`;
  await setCode(ivy, marker);
  await expectText(cam, marker, "the candidate never got the interviewer's code change");

  // Once the server holds the note, a fresh load of the candidate's page gets everything the server sends.
  await expect
    .poll(
      async () => {
        const response = await request.get(`/api/sessions/${session.id}/export`, {
          headers: { authorization: `Bearer ${session.interviewerKey}` },
        });
        return response.ok() && (await response.text()).includes(note);
      },
      { message: 'the server never stored the note', ...ARRIVAL },
    )
    .toBe(true);
  await cam.reload();
  await waitForEditor(cam);
  await expectText(cam, marker);

  expect(await arrived.received(note), 'the notes reached the candidate').toBe(false);
  expect(await serverRenderedFor(cam, session.url), 'the server-rendered page contains the notes').not.toContain(note);
  expect(await arrived.received(session.interviewerKey), 'the interviewer key reached the candidate').toBe(false);
  for (const id of INTERVIEWER_ONLY) {
    await expect(cam.getByTestId(id), `the candidate's page shows ${id}`).toHaveCount(0);
  }
  await expect(cam.getByTestId('role')).toHaveText('Candidate');
  await expectRoles(cam, 'Ivy', 'Cam');
});

test('two interviewers share notes live, and the notes survive a reload', async ({ request, people }) => {
  test.setTimeout(120_000);
  const session = await createInterview(request);
  const ivy = await openInterviewer(people, 'Ivy', session.interviewerUrl);
  const link = await ivy.getByTestId('interviewer-link').inputValue();
  expect(link).toBe(session.interviewerUrl);
  // The second interviewer comes in through the link the first one sees.
  const ian = await openInterviewer(people, 'Ian', link);
  const cam = await openCandidate(people, 'Cam', session.url);

  const ivyNotes = ivy.getByTestId('notes');
  const ianNotes = ian.getByTestId('notes');
  await expect(ivyNotes).toBeEditable();
  await expect(ianNotes).toBeEditable();

  const first = `Ivy: clean loop, asked good questions ${tag('n')}.`;
  await ivyNotes.click();
  await ivy.keyboard.type(first);
  await expect(ianNotes, "Ian never saw Ivy's notes").toHaveValue(first, ARRIVAL);

  const second = ` Ian: agreed, missed the empty input ${tag('n')}.`;
  await ianNotes.click();
  await ian.keyboard.press('Control+End');
  await ian.keyboard.type(second);
  await expect(ivyNotes, "Ivy never saw Ian's addition").toHaveValue(first + second, ARRIVAL);
  await expect(ianNotes).toHaveValue(first + second);

  // A reload keeps both the role (the key is remembered) and the notes.
  await ivy.reload();
  await waitForEditor(ivy);
  await expect(ivy.getByTestId('role')).toHaveText('Interviewer');
  await expect(ivy.getByTestId('notes'), 'the notes were lost on reload').toHaveValue(first + second, ARRIVAL);

  // ...and a change after the reload still reaches the other interviewer.
  const third = ` Ivy again ${tag('n')}.`;
  await ivy.getByTestId('notes').click();
  await ivy.keyboard.press('Control+End');
  await ivy.keyboard.type(third);
  await expect(ianNotes).toHaveValue(first + second + third, ARRIVAL);

  await expect(cam.getByTestId('notes')).toHaveCount(0);
  expect(await cam.content(), 'the notes are on the candidate page').not.toContain(first.slice(0, 20));
});

test('the interviewer is told when the candidate leaves the tab, comes back and pastes a lot; the candidate is not', async ({
  request,
  people,
}) => {
  test.setTimeout(120_000);
  const session = await createInterview(request);
  const ivy = await openInterviewer(people, 'Ivy', session.interviewerUrl);
  const cam = await openCandidate(people, 'Cam', session.url, { permissions: ['clipboard-read', 'clipboard-write'] });
  await expectRoles(ivy, 'Ivy', 'Cam');
  const notices = ivy.getByTestId('focus-notice');
  await expect(notices.filter({ hasText: 'Cam' })).toHaveCount(0);

  await leaveTab(cam);
  await expect(notices.filter({ hasText: 'Cam left the tab' }).first(), 'no notice that Cam left the tab').toBeVisible(
    ARRIVAL,
  );
  await comeBack(cam);
  await expect(notices.filter({ hasText: 'Cam came back' }).first(), 'no notice that Cam came back').toBeVisible(ARRIVAL);

  // A short paste is not worth a notice, a long one is.
  const short = `// ${'s'.repeat(47)}`; // 50 characters
  const long = `// ${'p'.repeat(317)}`; // 320 characters
  await pasteAtEnd(cam, short);
  await expectText(cam, short, 'the short paste did not land');
  await pasteAtEnd(cam, long);
  await expectText(cam, short + long, 'the long paste did not land');
  await expectText(ivy, short + long, "the interviewer never got the candidate's pastes");
  await expect(notices.filter({ hasText: /Cam pasted 320 characters/ }), 'no notice of the long paste').toHaveCount(
    1,
    ARRIVAL,
  );
  await expect(notices.filter({ hasText: /pasted 50 characters/ }), 'a 50-character paste made a notice').toHaveCount(0);

  // The candidate sees none of it.
  await expect(cam.getByTestId('focus-notice')).toHaveCount(0);
  const camPage = await cam.content();
  for (const text of ['left the tab', 'came back', 'pasted 320']) {
    expect(camPage, `the candidate's page says "${text}"`).not.toContain(text);
  }
});

test('ending the interview makes the code read-only for everyone until it is reopened', async ({ request, people }) => {
  test.setTimeout(120_000);
  const session = await createInterview(request);
  const ivy = await openInterviewer(people, 'Ivy', session.interviewerUrl);
  const cam = await openCandidate(people, 'Cam', session.url);
  // No brackets or indentation: Monaco types exactly this.
  const typed = 'let answer = 41;\nanswer += 1;\n';
  await caretTo(cam, 'end');
  await cam.keyboard.type(typed);
  await expectText(cam, typed);
  await expectText(ivy, typed, "the interviewer never got the candidate's code");

  await expect(ivy.getByTestId('reopen-session')).toHaveCount(0);
  await ivy.getByTestId('end-session').click();
  for (const page of [ivy, cam]) {
    await expect(page.getByTestId('session-ended')).toContainText('This interview has ended', ARRIVAL);
    await expect(page.getByTestId('run-button')).toBeDisabled();
  }
  await expect(ivy.getByTestId('end-session')).toHaveCount(0);
  await expect(ivy.getByTestId('reopen-session')).toBeVisible();

  // Typing changes nothing, for the candidate or the interviewer.
  await caretTo(cam, 'end');
  await cam.keyboard.type('zzz');
  expect(await editorText(cam), "the candidate's typing changed the ended session's code").toBe(typed);
  await caretTo(ivy, 'end');
  await ivy.keyboard.type('yyy');
  expect(await editorText(ivy), "the interviewer's typing changed the ended session's code").toBe(typed);

  // Still ended for someone who loads the page now.
  await cam.reload();
  await waitForEditor(cam);
  await expect(cam.getByTestId('session-ended')).toBeVisible();
  await expect(cam.getByTestId('run-button')).toBeDisabled();
  await expectText(cam, typed);

  // Reopened: editing and running work again, and nothing typed while ended comes back.
  await ivy.getByTestId('reopen-session').click();
  for (const page of [ivy, cam]) {
    await expect(page.getByTestId('session-ended')).toHaveCount(0, ARRIVAL);
    await expect(page.getByTestId('run-button')).toBeEnabled();
  }
  await expect(ivy.getByTestId('end-session')).toBeVisible();
  await expect(ivy.getByTestId('reopen-session')).toHaveCount(0);

  await caretTo(cam, 'end');
  await cam.keyboard.type('// cam');
  await expectText(ivy, `${typed}// cam`, "the candidate's edit after reopening did not reach the interviewer");
  await caretTo(ivy, 'end');
  await ivy.keyboard.type(' ivy');
  await expectText(cam, `${typed}// cam ivy`, "the interviewer's edit after reopening did not reach the candidate");
  await expectText(ivy, `${typed}// cam ivy`);
});

test('export code downloads the code with the extension of the language', async ({ request, people }) => {
  test.setTimeout(150_000);
  const session = await createInterview(request);
  const ivy = await openInterviewer(people, 'Ivy', session.interviewerUrl);
  const cam = await openCandidate(people, 'Cam', session.url);
  const code = `// héllo ✓ ${tag('c')}\nconst xs = [3, 1, 2];\nconsole.log(xs.sort());\n`;
  await setCode(ivy, code);
  await expectText(cam, code);

  let file = await downloadFrom(cam, 'export-code');
  expect(file.name).toBe('code.js');
  expect(file.text, 'the downloaded file is not the code').toBe(code);

  await cam.getByTestId('language-select').selectOption('python');
  await expectSessionLanguage(cam, 'python');
  await expect(ivy.getByTestId('language-select'), "the interviewer's page did not follow").toHaveValue('python', ARRIVAL);
  file = await downloadFrom(ivy, 'export-code');
  expect(file.name).toBe('code.py');
  expect(file.text).toBe(code);
});

test("the interviewer's record holds the code, the notes and a run's output, and nothing in it runs", async ({
  request,
  people,
}) => {
  test.setTimeout(120_000);
  const session = await createInterview(request);
  const ivy = await openInterviewer(people, 'Ivy', session.interviewerUrl);
  const cam = await openCandidate(people, 'Cam', session.url);
  const mark = tag('');
  const code = [
    `// answer ${mark}`,
    '// <img src="data:image/png;base64,AAAA" onerror="window.__xss = 1"> stays text',
    'console.log(`out-${6 * 7}-' + mark + '`);',
    '',
  ].join('\n');
  const output = `out-42-${mark}`;

  const result = await run(cam, code);
  expect(result.status, JSON.stringify(result.lines)).toBe('ok');
  expect(texts(result.lines)).toEqual([output]);
  await expectText(ivy, code);
  const note = `Solid on arrays; <b>follow up</b> on sorting ${tag('n')}`;
  await ivy.getByTestId('notes').fill(note);

  // The record is shown as a page of its own: everything in it is text.
  const viewer = await ivy.context().newPage();
  await expect(async () => {
    const record = await downloadFrom(ivy, 'export-record');
    expect(record.name).toBe(`interview-${session.id.slice(0, 8)}.html`);
    await viewer.setContent(record.text);
    const shown = squash(await viewer.evaluate(() => document.body.textContent));
    expect(shown, 'the record lacks the code').toContain(squash(code));
    expect(shown, 'the record lacks the notes').toContain(squash(note));
    expect(shown, "the record lacks the run's output").toContain(output);
    expect(shown, 'the record lacks the people').toContain('Cam');
    expect(shown).toContain('Ivy');
    expect(await viewer.evaluate(() => window.__xss), 'markup from the code ran in the record').toBeUndefined();
  }, 'the record never held the code, the notes and the output').toPass({ timeout: 30_000 });

  await expect(cam.getByTestId('export-record')).toHaveCount(0);
});
