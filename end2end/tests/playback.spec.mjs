// Playback (issue 13) from the interviewer's side: `/s/<id>/playback` replays the
// session from its stored history in a read-only Monaco under a timeline.
//
// - Exactness (the key test): an interviewer and a candidate type in
//   turns and at once (typing, deleting, a multi-line paste, unicode and emoji),
//   and at several quiet instants T (both pages converged and idle for 300 ms)
//   the test records T and the text both pages show. The playback at scrubber
//   value `T - data-start` must show that text byte for byte; so must a
//   reconstruction in Node from `GET /api/sessions/<id>/history` (stock Yjs).
// - Controls: speeds, play / pause, previous / next change, markers (run,
//   language, join, leave, blur, paste; a run marker shows the run's output),
//   the people filter and its highlight, read-only, no WebSocket.
// - Access: no key or a wrong key shows `playback-denied` and no code; the
//   history API wants the key; the session page links to the playback for
//   interviewers only; a password on the session does not matter for the key.
// - After the room was unloaded and after a server crash (own server) the
//   playback still shows the final text, and opening it changes nothing.
//
// Sessions are created through the REST API (which answers `interviewerUrl`).
// The live pages' text is read from Monaco's model, the playback's from the
// page's first Monaco editor (`monaco.editor.getEditors()[0]`). Join and leave
// events reach the history up to ~5 s late (batched): tests that need them poll
// the history API first. Every wait is bounded; nothing asserts a wall-clock time.

import { randomBytes, randomUUID } from 'node:crypto';
import * as Y from 'yjs';
import * as decoding from 'lib0/decoding';
import { test as base, expect } from '../support/fixtures.mjs';
import { ORIGIN } from '../support/env.mjs';
import { ARRIVAL, expectText, waitForEditor, caretTo, editorText } from '../support/editor.mjs';
import { presetName, startRun, runEnded } from '../support/run-panel.mjs';
import { useOwnServer } from '../support/own-server.mjs';
import { leaveTab, comeBack } from '../support/attention.mjs';

/** Something no page could show by chance. */
const tag = (label) => `${label}${randomBytes(4).toString('hex')}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long both pages must have been converged and unchanged around a recorded instant. */
const QUIET_MS = 300;
/** The playback loads Monaco, the wasm and the whole history: allow for a busy 2-core machine. */
const PLAYBACK_READY = { timeout: 45_000 };
/** Join and leave events are batched by the session room (~5 s); allow a few rounds. */
const EVENTS_ARRIVE = { timeout: 30_000 };

const CLIPBOARD = { permissions: ['clipboard-read', 'clipboard-write'] };

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
        if (name) await presetName(context, name);
        return context.newPage();
      },
    });
    await Promise.all(contexts.map((context) => context.close().catch(() => {})));
  },
});

// ---- the session (REST) ----------------------------------------------------------------------

/** POST /api/sessions/create on `origin`; returns its 201 body (with `interviewerKey`). */
async function createInterview(origin, { language = 'javascript', password } = {}) {
  const data = { language };
  if (password) data.password = password;
  const response = await fetch(`${origin}/api/sessions/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(data),
  });
  const text = await response.text();
  expect(response.status, text).toBe(201);
  const session = JSON.parse(text);
  expect(session.interviewerUrl).toBe(`${session.url}#key=${session.interviewerKey}`);
  return session;
}

/** GET `path` on `origin` with the key (or `auth: null` for none); returns `{ status, json }`. */
async function api(origin, path, { key, auth } = {}) {
  const headers = {};
  if (auth !== undefined) {
    if (auth !== null) headers.authorization = auth;
  } else if (key) {
    headers.authorization = `Bearer ${key}`;
  }
  const response = await fetch(`${origin}${path}`, { headers });
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, contentType: response.headers.get('content-type') || '', text, json };
}

/** The session's history (200, checked) as the API answers it. */
async function history(origin, session) {
  const response = await api(origin, `/api/sessions/${session.id}/history`, { key: session.interviewerKey });
  expect(response.status, `GET history: ${response.text.slice(0, 300)}`).toBe(200);
  expect(response.json?.format).toBe('pairpad-history-1');
  return response.json;
}

/** Polls the history until `predicate(body)` holds (e.g. until join events arrived); returns it. */
async function historyWhen(origin, session, predicate, message) {
  let body;
  await expect
    .poll(
      async () => {
        body = await history(origin, session);
        return predicate(body);
      },
      { message, ...EVENTS_ARRIVE },
    )
    .toBe(true);
  return body;
}

const hasAuthor = (body, name) => (body.authors || []).some((a) => a.name === name);
const hasEvent = (body, kind, name) => (body.events || []).some((e) => e.kind === kind && (!name || e.name === name));

/**
 * The history's records `{ at, author, update }`, decoded as the contract says:
 * varuint atDelta | varuint author | varuint length | bytes, back to back.
 */
function decodeRecords(body) {
  const bytes = Buffer.from(body.updates, 'base64');
  const decoder = decoding.createDecoder(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
  const records = [];
  let at = 0;
  while (decoding.hasContent(decoder)) {
    at += decoding.readVarUint(decoder);
    const author = decoding.readVarUint(decoder);
    const update = decoding.readVarUint8Array(decoder);
    records.push({ at, author, update });
  }
  expect(records.length, 'the history decodes to a different number of records than its count').toBe(body.count);
  return records;
}

/** The code after every record with `at <= time`, rebuilt with stock Yjs. */
function codeAt(records, time) {
  const doc = new Y.Doc();
  for (const record of records) {
    if (record.at > time) break;
    Y.applyUpdate(doc, record.update);
  }
  const text = doc.getText('code').toString();
  doc.destroy();
  return text;
}

// ---- the live session pages ------------------------------------------------------------------

/** Opens the interviewer link as `name`; waits for the editor and the role. */
async function openInterviewer(people, name, interviewerUrl, options) {
  const page = await people.open(name, options);
  await page.goto(interviewerUrl);
  await waitForEditor(page);
  await expect(page.getByTestId('role')).toHaveText('Interviewer');
  return page;
}

/** Opens the share link as `name` (no key); waits for the editor and the role. */
async function openCandidate(people, name, url, options) {
  const page = await people.open(name, options);
  const response = await page.goto(url);
  expect(response.status()).toBe(200);
  await waitForEditor(page);
  await expect(page.getByTestId('role')).toHaveText('Candidate');
  return page;
}

/** Pastes `text` into the editor at its end through the system clipboard, as Ctrl+V does. */
async function pasteAtEnd(page, text) {
  await page.evaluate((t) => navigator.clipboard.writeText(t), text);
  await caretTo(page, 'end');
  await page.keyboard.press('Control+V');
}

/** Inserts `text` at the end of the document through Monaco's model (the normal edit path). */
async function insertAtEnd(page, text) {
  await page.evaluate((t) => {
    const model = window.monaco.editor.getModels()[0];
    const end = model.getFullModelRange().getEndPosition();
    model.applyEdits([
      { range: new window.monaco.Range(end.lineNumber, end.column, end.lineNumber, end.column), text: t },
    ]);
  }, text);
}

/**
 * Waits for a quiet instant: both pages show the same text and neither changes
 * for QUIET_MS; then takes T = Date.now() (the server stamps updates with the
 * same clock) and checks that nothing changed around it. Returns `{ label, T, text }`.
 */
async function quietInstant(pages, label) {
  let text;
  await expect(async () => {
    const before = await Promise.all(pages.map(editorText));
    expect(new Set(before).size, `${label}: the pages have not converged`).toBe(1);
    await sleep(QUIET_MS);
    const after = await Promise.all(pages.map(editorText));
    expect(after, `${label}: a page changed during the quiet time`).toEqual(before);
    text = before[0];
  }, `${label}: the pages never converged and went quiet`).toPass(ARRIVAL);
  const T = Date.now();
  // The next phase starts well after T, so no update can be stamped T or earlier after it.
  await sleep(QUIET_MS);
  const after = await Promise.all(pages.map(editorText));
  expect(after, `${label}: a page changed right after the recorded instant`).toEqual(pages.map(() => text));
  return { label, T, text };
}

// ---- the playback page -----------------------------------------------------------------------

/** Opens `url` in `page` and waits for `data-ready="true"` on the playback root. */
async function openPlayback(page, url) {
  const response = await page.goto(url);
  expect(response.status(), 'the playback page is not served').toBe(200);
  await expectPlaybackReady(page);
}

async function expectPlaybackReady(page) {
  await expect(page.getByTestId('playback'), 'the playback never became ready').toHaveAttribute(
    'data-ready',
    'true',
    PLAYBACK_READY,
  );
}

/** The scrubber's state: `{ start, min, max, value }` (start from `data-start`, on the scrubber or the root). */
async function timeline(page) {
  const state = await page.evaluate(() => {
    const scrubber = document.querySelector('[data-testid="playback-scrubber"]');
    const root = document.querySelector('[data-testid="playback"]');
    if (!scrubber) return null;
    const start = scrubber.getAttribute('data-start') ?? root?.getAttribute('data-start');
    return {
      type: scrubber.type,
      start: start == null ? null : Number(start),
      min: Number(scrubber.min),
      max: Number(scrubber.max),
      value: Number(scrubber.value),
    };
  });
  expect(state, 'the playback has no scrubber').not.toBeNull();
  expect(state.type).toBe('range');
  expect(Number.isFinite(state.start), 'the playback has no numeric data-start').toBe(true);
  expect(state.min).toBe(0);
  expect(state.max).toBeGreaterThanOrEqual(0);
  return state;
}

/** The code the playback shows. */
function playbackText(page) {
  return page.evaluate(() => window.monaco.editor.getEditors()[0].getValue());
}

function scrubberValue(page) {
  return page.evaluate(() => Number(document.querySelector('[data-testid="playback-scrubber"]').value));
}

/**
 * Seeks as the contract says (set `value`, dispatch `input`; the seek is
 * synchronous) and reads the code right after. Returns `{ value, text }`.
 */
async function seek(page, value) {
  const result = await page.evaluate((v) => {
    const scrubber = document.querySelector('[data-testid="playback-scrubber"]');
    scrubber.value = String(v);
    scrubber.dispatchEvent(new Event('input', { bubbles: true }));
    return { value: Number(scrubber.value), text: window.monaco.editor.getEditors()[0].getValue() };
  }, value);
  expect(result.value, `the scrubber did not take the value ${value} (its step?)`).toBe(value);
  return result;
}

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

/** `m:ss` of a duration in ms, rounded each way the page might. */
const clockTexts = (ms) =>
  [...new Set([Math.floor, Math.round, Math.ceil].map((f) => f(ms / 1000)))].map(
    (s) => `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`,
  );

/** The text under the editor's decorations with class `playback-highlight`, and how many. */
function highlights(page) {
  return page.evaluate(() => {
    const editor = window.monaco.editor.getEditors()[0];
    const model = editor.getModel();
    const marked = model
      .getAllDecorations()
      .filter((d) => Object.values(d.options).some((v) => typeof v === 'string' && /\bplayback-highlight\b/.test(v)));
    return {
      count: marked.length,
      text: marked.map((d) => model.getValueInRange(d.range)).join('\n'),
      rendered: document.querySelectorAll('[data-testid="playback-code"] .playback-highlight').length,
    };
  });
}

// ------------------------------------------------------------------------------------------

test('exact: at every quiet instant the playback shows byte for byte what both pages showed', async ({ people }) => {
  test.setTimeout(240_000);
  const session = await createInterview(ORIGIN);
  const ivy = await openInterviewer(people, 'Ivy', session.interviewerUrl, CLIPBOARD);
  const cam = await openCandidate(people, 'Cam', session.url, CLIPBOARD);
  const both = [ivy, cam];
  const mark = tag('');
  const instants = [];

  // Nothing typed yet.
  instants.push(await quietInstant(both, 'before anyone typed'));

  // Turns. Typed text has no brackets or quotes (no auto-closing) and stays in
  // comments (no suggestions), so the pasted program below still runs.
  await caretTo(ivy, 'end');
  await ivy.keyboard.type('// Ivy: let us write a sum\n');
  instants.push(await quietInstant(both, "Ivy's first line"));

  await caretTo(cam, 'end');
  await cam.keyboard.type('// Cam: on it\n');
  instants.push(await quietInstant(both, "Cam's first line"));

  // Keystroke by keystroke in turns, Ivy at the top and Cam at the bottom.
  await caretTo(ivy, 'start');
  await caretTo(cam, 'end');
  const ivyTop = '// top from ivy\n';
  const camBottom = '// bottom from cam\n';
  for (let i = 0; i < Math.max(ivyTop.length, camBottom.length); i++) {
    if (i < ivyTop.length) await ivy.keyboard.type(ivyTop[i]);
    if (i < camBottom.length) await cam.keyboard.type(camBottom[i]);
  }
  instants.push(await quietInstant(both, 'alternating keystrokes'));

  // Both at full speed at once.
  await Promise.all([
    ivy.keyboard.type('// ivy types fast éü\n', { delay: 5 }),
    cam.keyboard.type('// cam types fast ∑ ✓\n', { delay: 5 }),
  ]);
  instants.push(await quietInstant(both, 'typing at once'));

  // Deleting at once: Ivy replaces the top line (a selection, then a word), Cam fixes a word with Backspace.
  await Promise.all([
    (async () => {
      await ivy.keyboard.press('Control+Home');
      await ivy.keyboard.press('Shift+End');
      await ivy.keyboard.press('Backspace');
      await ivy.keyboard.type('// ivy rewrote the top line', { delay: 5 });
      await ivy.keyboard.press('Control+Backspace');
      await ivy.keyboard.press('Control+Backspace');
      await ivy.keyboard.type('first line', { delay: 5 });
    })(),
    (async () => {
      await cam.keyboard.type('// cam wrote this wrongly', { delay: 5 });
      for (let i = 0; i < 'wrongly'.length; i++) await cam.keyboard.press('Backspace');
      await cam.keyboard.type('right\n', { delay: 5 });
    })(),
  ]);
  instants.push(await quietInstant(both, 'deleting at once'));

  // A multi-line paste with unicode: accents, combining marks, CJK, astral emoji, a ZWJ sequence, a flag.
  const pasted = [
    '// Ünïcödé: naïve café — e\u0301 — 你好，世界 — Ελληνικά — 😀 👩‍💻 🇫🇷 ✓',
    `// ${'-'.repeat(60)}`,
    'const words = ["alpha", "βeta", "гамма", "😀"];',
    'let total = 0;',
    'for (const w of words) total += [...w].length;',
    `console.log("out-" + 6 * 7, total, "${mark}", "✓ 😀");`,
    '',
  ].join('\n');
  expect(pasted.length, 'the paste should be large enough to be recorded').toBeGreaterThan(200);
  await pasteAtEnd(cam, pasted);
  instants.push(await quietInstant(both, 'multi-line paste'));
  expect(instants.at(-1).text, 'the paste did not land').toContain(mark);

  // Unicode typed at once: Ivy at the top, Cam at the bottom.
  await caretTo(ivy, 'start');
  await caretTo(cam, 'end');
  await Promise.all([
    ivy.keyboard.type('// 你好 😀 👩‍💻 é\n', { delay: 5 }),
    cam.keyboard.type('// 🎉 done ✓ 日本語 ∑\n', { delay: 5 }),
  ]);
  instants.push(await quietInstant(both, 'unicode typed at once'));

  // A run (a `run` marker; the code does not change).
  await startRun(ivy);
  const run = await runEnded(ivy);
  expect(run.status, JSON.stringify(run.lines)).toBe('ok');
  expect(run.lines.map((l) => l.text).join('\n')).toContain(`out-42`);
  instants.push(await quietInstant(both, 'after the run'));

  // A language switch (a `language` marker; the code does not change).
  await cam.getByTestId('language-select').selectOption('python');
  await expect(ivy.getByTestId('language-select'), "Ivy's page did not follow the language").toHaveValue(
    'python',
    ARRIVAL,
  );
  instants.push(await quietInstant(both, 'after the language switch'));

  // One more edit after it.
  await caretTo(cam, 'end');
  await cam.keyboard.type('# the end\n');
  const final = await quietInstant(both, 'final');
  instants.push(final);

  // Each typing phase changed the text (the run and the language switch did not).
  for (let i = 1; i < instants.length; i++) {
    if (/after the (run|language switch)/.test(instants[i].label)) {
      expect(instants[i].text, `${instants[i].label} changed the code`).toBe(instants[i - 1].text);
    } else {
      expect(instants[i].text, `${instants[i].label} changed nothing`).not.toBe(instants[i - 1].text);
    }
  }
  expect(instants[0].text).toBe('');

  // The live pages go; the interviewer's browser keeps the key in its storage.
  const ivyContext = ivy.context();
  await cam.close();
  await ivy.close();

  // The history, rebuilt with stock Yjs, agrees with the pages (the server's side of exactness).
  const body = await history(ORIGIN, session);
  const records = decodeRecords(body);
  expect(records.length).toBeGreaterThan(0);
  for (let i = 1; i < records.length; i++) {
    expect(records[i].at, 'history times go backwards').toBeGreaterThanOrEqual(records[i - 1].at);
  }
  for (const instant of instants) {
    expect(codeAt(records, instant.T), `history rebuilt at "${instant.label}"`).toBe(instant.text);
  }

  // The playback, opened as the interviewer (key from this browser's storage).
  const playback = await ivyContext.newPage();
  await openPlayback(playback, `/s/${session.id}/playback`);
  expect(await playbackText(playback), 'the ready playback does not show the code at the end').toBe(final.text);
  const { start, max } = await timeline(playback);
  expect(start, 'data-start is not the first update').toBe(records[0].at);
  expect(max, 'max is not the last update').toBe(records.at(-1).at - start);

  for (const instant of instants) {
    const value = clamp(instant.T - start, 0, max);
    if (instant.T < start) {
      // Before the first stored update there was nothing to show.
      expect(instant.text, `${instant.label}: text before the first update`).toBe('');
      continue;
    }
    const shown = await seek(playback, value);
    expect(
      Buffer.from(shown.text, 'utf8').equals(Buffer.from(instant.text, 'utf8')),
      `playback at "${instant.label}" (value ${value} of ${max}):\n  shown    ${JSON.stringify(shown.text)}\n  recorded ${JSON.stringify(instant.text)}`,
    ).toBe(true);
  }

  // The ends: the final text at max, the first state at 0.
  expect((await seek(playback, max)).text, 'the playback at the end is not the final text').toBe(final.text);
  const first = (await seek(playback, 0)).text;
  expect(first, 'the playback at 0 is not the first stored state').toBe(codeAt(records, start));
  const firstTyped = instants.find((i) => i.text !== '').text;
  expect(firstTyped.startsWith(first) && first.length < firstTyped.length, `value 0 shows ${JSON.stringify(first)}`).toBe(
    true,
  );

  // And anywhere in between, the playback agrees with the history.
  for (let i = 0; i < 12; i++) {
    const value = Math.floor(((i + 0.5) / 12) * max);
    expect((await seek(playback, value)).text, `playback at value ${value}`).toBe(codeAt(records, start + value));
  }
});

test('controls: speeds, play and pause, previous and next change, markers, run output, people filter, read-only', async ({
  people,
}) => {
  test.setTimeout(240_000);
  const session = await createInterview(ORIGIN);
  const ivy = await openInterviewer(people, 'Ivy', session.interviewerUrl);
  const cam = await openCandidate(people, 'Cam', session.url, CLIPBOARD);
  const mark = tag('');

  // Cam and Ivy each write a line of their own.
  const typedAt = Date.now();
  await caretTo(cam, 'end');
  await cam.keyboard.type('let fromCam = 1;\n');
  await expectText(ivy, 'let fromCam = 1;\n', "Ivy never got Cam's line");
  await caretTo(ivy, 'end');
  await ivy.keyboard.type('let fromIvy = 2;\n');
  const twoLines = 'let fromCam = 1;\nlet fromIvy = 2;\n';
  await expectText(cam, twoLines, "Cam never got Ivy's line");

  // Cam leaves the tab and comes back, then pastes a lot.
  await leaveTab(cam);
  await comeBack(cam);
  const pasted = `// notes from cam ${mark}\n// ${'='.repeat(240)}\n`;
  await pasteAtEnd(cam, pasted);
  await expectText(ivy, twoLines + pasted, "Ivy never got Cam's paste");

  // Ivy adds a line that prints, and runs the program.
  const program = `console.log("out-" + (fromCam + fromIvy) + "-${mark}");\n`;
  await insertAtEnd(ivy, program);
  const final = twoLines + pasted + program;
  await expectText(cam, final, "Cam never got Ivy's program");
  await startRun(ivy);
  const run = await runEnded(ivy);
  expect(run.status, JSON.stringify(run.lines)).toBe('ok');
  const output = run.lines.map((l) => l.text);
  expect(output).toEqual([`out-3-${mark}`]);

  // Cam leaves (before the last change, so that the leave is inside the timeline).
  await cam.context().close();

  // A language switch, some seconds into the session (so that playing at 1x takes a while).
  await sleep(Math.max(0, typedAt + 8_000 - Date.now()));
  await ivy.getByTestId('language-select').selectOption('python');
  await expect
    .poll(async () => (await api(ORIGIN, `/api/sessions/${session.id}/export`, { key: session.interviewerKey })).json?.language, {
      message: 'the server never got the language switch',
      ...ARRIVAL,
    })
    .toBe('python');
  await expectText(ivy, final);

  // The history gets both joins, Cam's leave, blur and paste.
  const body = await historyWhen(
    ORIGIN,
    session,
    (b) =>
      hasAuthor(b, 'Ivy') &&
      hasAuthor(b, 'Cam') &&
      hasEvent(b, 'join', 'Ivy') &&
      hasEvent(b, 'join', 'Cam') &&
      hasEvent(b, 'leave', 'Cam') &&
      hasEvent(b, 'blur', 'Cam') &&
      hasEvent(b, 'paste', 'Cam'),
    'the history never got both authors and the join, leave, blur and paste events',
  );
  const records = decodeRecords(body);
  const camClient = body.authors.find((a) => a.name === 'Cam').client;
  const ivyClient = body.authors.find((a) => a.name === 'Ivy').client;

  // The session page links to the playback; it opens in a new tab, which opens no WebSocket.
  const link = ivy.getByTestId('playback-link');
  await expect(link).toBeVisible();
  expect(new URL(await link.getAttribute('href'), ORIGIN).href).toBe(`${ORIGIN}/s/${session.id}/playback`);
  await expect(link).toHaveAttribute('target', '_blank');
  const sockets = [];
  ivy.context().on('page', (p) => p.on('websocket', (ws) => sockets.push(ws.url())));
  const [pb] = await Promise.all([ivy.context().waitForEvent('page'), link.click()]);
  await expectPlaybackReady(pb);
  expect(await playbackText(pb)).toBe(final);
  const { start, max } = await timeline(pb);
  expect(max, 'the session lasted some seconds').toBeGreaterThan(5_000);

  // Speeds and skip idle.
  const speed = pb.getByTestId('playback-speed');
  expect(await speed.evaluate((el) => el.tagName)).toBe('SELECT');
  expect(await speed.locator('option').evaluateAll((os) => os.map((o) => o.value))).toEqual(['1', '2', '4', '8', '16']);
  await expect(pb.getByTestId('playback-skip-idle')).not.toBeChecked();

  // The clock: current / total.
  const time = pb.getByTestId('playback-time');
  const totals = clockTexts(max);
  await expect(time).toHaveText(/^\s*\d+:[0-5]\d \/ \d+:[0-5]\d\s*$/);
  const totalShown = (await time.textContent()).trim().split(' / ')[1];
  expect(totals, `total ${totalShown} for ${max} ms`).toContain(totalShown);
  await seek(pb, 0);
  await expect(time).toHaveText(new RegExp(`^\\s*0:00 / ${totalShown}\\s*$`));

  // Play at 16x from the start: the scrubber and the clock advance, and it stops at the end with the final code.
  const play = pb.getByTestId('playback-play');
  await expect(play).toHaveText(/\bPlay\b/);
  await speed.selectOption('16');
  await play.click();
  await expect(play).toHaveText(/\bPause\b/);
  await expect.poll(() => scrubberValue(pb), { message: 'playing did not move the scrubber' }).toBeGreaterThan(0);
  await expect
    .poll(() => scrubberValue(pb), { message: 'playing never reached the end', timeout: max / 16 + 20_000 })
    .toBe(max);
  await expect(play, 'playing did not stop at the end').toHaveText(/\bPlay\b/);
  expect(await playbackText(pb)).toBe(final);
  await expect(time).toHaveText(new RegExp(`^\\s*${totalShown} / ${totalShown}\\s*$`));

  // Play at 1x, then pause: the scrubber stays where it was, showing the code of that moment.
  await seek(pb, 0);
  await speed.selectOption('1');
  await play.click();
  await expect.poll(() => scrubberValue(pb), { message: 'playing at 1x did not move the scrubber' }).toBeGreaterThan(0);
  await play.click();
  await expect(play).toHaveText(/\bPlay\b/);
  const paused = await scrubberValue(pb);
  expect(paused).toBeLessThan(max);
  await sleep(800);
  expect(await scrubberValue(pb), 'the scrubber moved after pause').toBe(paused);
  expect(await playbackText(pb), `the code shown at ${paused} after pausing`).toBe(codeAt(records, start + paused));

  // Next change (as often as it takes for the code to change), then previous change.
  const atStart = (await seek(pb, 0)).text;
  let value = 0;
  let text = atStart;
  for (let i = 0; i < 20 && text === atStart; i++) {
    const before = value;
    await pb.getByTestId('playback-next').click();
    await expect.poll(() => scrubberValue(pb), { message: 'next did not move forward' }).toBeGreaterThan(before);
    value = await scrubberValue(pb);
    text = await playbackText(pb);
    expect(text, `the code after next (at ${value})`).toBe(codeAt(records, start + value));
  }
  expect(text, 'next never changed the code').not.toBe(atStart);
  expect(records.some((r) => r.at === start + value), 'next did not land on a change').toBe(true);
  await pb.getByTestId('playback-prev').click();
  await expect.poll(() => scrubberValue(pb), { message: 'prev did not move back' }).toBeLessThan(value);
  expect(await playbackText(pb), 'prev did not show the code before that change').toBe(atStart);

  // Markers: run, language, joins, Cam's leave, blur and paste.
  const markers = pb.getByTestId('playback-marker');
  const markersOf = (kind) => pb.locator(`[data-testid="playback-marker"][data-kind="${kind}"]`);
  for (const [kind, least] of [['run', 1], ['language', 1], ['join', 2], ['leave', 1], ['blur', 1], ['paste', 1]]) {
    expect(await markersOf(kind).count(), `${kind} markers`).toBeGreaterThanOrEqual(least);
  }
  for (const at of await markers.evaluateAll((els) => els.map((el) => Number(el.getAttribute('data-at'))))) {
    expect(Number.isFinite(at), 'a marker without a numeric data-at').toBe(true);
  }

  // A click on the run marker seeks to it and shows the run's output.
  await seek(pb, 0);
  const runMarker = markersOf('run').first();
  const runAt = Number(await runMarker.getAttribute('data-at'));
  const runValue = clamp(runAt - start, 0, max);
  expect(runValue, 'the run marker is at the start').toBeGreaterThan(1_000);
  // Markers may sit on top of each other: a click event on the element itself.
  await runMarker.dispatchEvent('click');
  // (Within a second: the marker may carry the run's own time and the seek land on its stored update.)
  await expect
    .poll(async () => Math.abs((await scrubberValue(pb)) - runValue), {
      message: 'clicking the run marker did not seek to it',
    })
    .toBeLessThanOrEqual(1_000);
  const atRun = await scrubberValue(pb);
  expect(await playbackText(pb), 'the code at the run').toBe(codeAt(records, start + atRun));
  for (const line of output) {
    await expect(pb.getByTestId('playback-run-output'), "the run marker did not show the run's output").toContainText(
      line,
    );
  }

  // People: both, by name, with their client ids; the filter highlights Cam's text only.
  await seek(pb, max);
  const authors = pb.getByTestId('playback-author');
  const camButton = authors.filter({ hasText: 'Cam' });
  const ivyButton = authors.filter({ hasText: 'Ivy' });
  await expect(camButton).toHaveCount(1);
  await expect(ivyButton).toHaveCount(1);
  await expect(camButton).toHaveAttribute('data-client', String(camClient));
  await expect(ivyButton).toHaveAttribute('data-client', String(ivyClient));
  expect((await highlights(pb)).count, 'something is highlighted before any filter').toBe(0);
  await expect(camButton).not.toHaveAttribute('aria-pressed', 'true');
  await camButton.click();
  await expect(camButton).toHaveAttribute('aria-pressed', 'true');
  await expect.poll(async () => (await highlights(pb)).count, { message: "no highlight for Cam's text" }).toBeGreaterThan(0);
  const camMarked = await highlights(pb);
  expect(camMarked.text, "Cam's line is not highlighted").toContain('fromCam = 1');
  expect(camMarked.text, "Cam's paste is not highlighted").toContain(mark);
  expect(camMarked.text, "Ivy's line is highlighted as Cam's").not.toContain('fromIvy = 2');
  await expect
    .poll(async () => (await highlights(pb)).rendered, { message: 'no .playback-highlight in the editor' })
    .toBeGreaterThan(0);
  await camButton.click();
  await expect(camButton).not.toHaveAttribute('aria-pressed', 'true');
  await expect.poll(async () => (await highlights(pb)).count, { message: 'the highlight stayed' }).toBe(0);
  await expect.poll(async () => (await highlights(pb)).rendered).toBe(0);

  // Read-only: typing into the playback changes nothing, there or in the session.
  await pb.locator('[data-testid="playback-code"] .view-lines').click();
  await pb.keyboard.press('Control+End');
  await pb.keyboard.type('zzz');
  await pb.keyboard.press('Backspace');
  expect(await playbackText(pb), 'typing changed the playback').toBe(final);
  await sleep(500);
  expect(await editorText(ivy), "the playback changed the session's code").toBe(final);
  const exported = await api(ORIGIN, `/api/sessions/${session.id}/export`, { key: session.interviewerKey });
  expect(exported.status).toBe(200);
  expect(exported.json.code, "the session's stored code changed").toBe(final);
  expect(sockets, 'the playback opened a WebSocket').toEqual([]);
});

test('access: without the key the playback shows nothing; the history API wants the key; the link is for interviewers', async ({
  people,
}) => {
  test.setTimeout(180_000);
  const session = await createInterview(ORIGIN);
  const secret = tag('secret_');
  const ivy = await openInterviewer(people, 'Ivy', session.interviewerUrl);
  const cam = await openCandidate(people, 'Cam', session.url);
  await caretTo(ivy, 'end');
  await ivy.keyboard.type(`// ${secret}\n`);
  await expectText(cam, `// ${secret}\n`);

  // The session page links to the playback for the interviewer only.
  const link = ivy.getByTestId('playback-link');
  await expect(link).toBeVisible();
  expect(new URL(await link.getAttribute('href'), ORIGIN).href).toBe(`${ORIGIN}/s/${session.id}/playback`);
  await expect(cam.getByTestId('role')).toHaveText('Candidate');
  await expect(cam.getByTestId('playback-link'), "the candidate's page links to the playback").toHaveCount(0);

  // The candidate's browser (no key) opens the playback URL: denied, no code, no timeline.
  const url = `${ORIGIN}/s/${session.id}/playback`;
  const expectDenied = async (page, message) => {
    const denied = page.getByTestId('playback-denied');
    await expect(denied, 'no playback-denied').toBeVisible(PLAYBACK_READY);
    await expect(denied).toContainText(message);
    for (const id of ['playback-code', 'playback-scrubber', 'playback-marker', 'playback-author']) {
      await expect(page.getByTestId(id), `a denied playback shows ${id}`).toHaveCount(0);
    }
    await expect(page.locator('.monaco-editor')).toHaveCount(0);
    await expect(page.locator('[data-testid="playback"][data-ready="true"]')).toHaveCount(0);
    expect(await page.content(), 'a denied playback contains the code').not.toContain(secret);
  };
  const camPlayback = await cam.context().newPage();
  expect((await camPlayback.goto(url)).status()).toBe(200);
  await expectDenied(camPlayback, /interviewer/i);

  // A fresh browser with a wrong key in the fragment: denied too.
  const wrongKey = randomBytes(32).toString('base64url');
  const stranger = await people.open('Sam');
  expect((await stranger.goto(`${url}#key=${wrongKey}`)).status()).toBe(200);
  await expectDenied(stranger, /interviewer/i);

  // An unknown session: the same element, saying it was not found.
  const nobody = await people.open('Sam');
  await nobody.goto(`${ORIGIN}/s/${randomUUID()}/playback#key=${wrongKey}`);
  await expect(nobody.getByTestId('playback-denied')).toContainText(/not found/i, PLAYBACK_READY);
  await expect(nobody.getByTestId('playback-code')).toHaveCount(0);

  // The history API: 401 without a key (also with the candidate's cookies), 403 with a wrong one, 200 with it.
  const path = `/api/sessions/${session.id}/history`;
  const none = await api(ORIGIN, path, { auth: null });
  expect(none.status, none.text).toBe(401);
  expect(typeof none.json?.error).toBe('string');
  const fromCam = await cam.context().request.get(`${ORIGIN}${path}`);
  expect(fromCam.status(), "the candidate's browser got the history").toBe(401);
  expect(await fromCam.text()).not.toContain(secret);
  const wrong = await api(ORIGIN, path, { key: wrongKey });
  expect(wrong.status, wrong.text).toBe(403);
  expect(wrong.text).not.toContain(secret);
  const unknown = await api(ORIGIN, `/api/sessions/${randomUUID()}/history`, { key: session.interviewerKey });
  expect(unknown.status, unknown.text).toBe(404);
  const good = await api(ORIGIN, path, { key: session.interviewerKey });
  expect(good.status).toBe(200);
  expect(good.contentType).toMatch(/^application\/json/);
  expect(good.json).toMatchObject({ id: session.id, format: 'pairpad-history-1' });

  // The interviewer's browser opens the same URL from its storage.
  const ivyPlayback = await ivy.context().newPage();
  await openPlayback(ivyPlayback, url);
  expect(await playbackText(ivyPlayback)).toBe(`// ${secret}\n`);

  // A session with a password: the key in the fragment is enough, in a browser that never saw the session.
  const locked = await createInterview(ORIGIN, { password: tag('pw-') });
  const lockedPage = await people.open('Ivy');
  await lockedPage.goto(locked.interviewerUrl);
  await waitForEditor(lockedPage);
  await caretTo(lockedPage, 'end');
  await lockedPage.keyboard.type('// locked but mine\n');
  await expect
    .poll(async () => (await api(ORIGIN, `/api/sessions/${locked.id}/export`, { key: locked.interviewerKey })).json?.code, {
      message: 'the server never stored the code',
      ...ARRIVAL,
    })
    .toBe('// locked but mine\n');
  const fresh = await people.open(null);
  await openPlayback(fresh, `${locked.url}/playback#key=${locked.interviewerKey}`);
  expect(await playbackText(fresh)).toBe('// locked but mine\n');
});

test.describe('on a server of its own', () => {
  // Rooms unload 1 s after the last person left.
  const own = useOwnServer(['--room-unload-grace-secs', '1']);

  test('the playback works after the room was unloaded and after a crash, and opening it changes nothing', async ({
    people,
  }) => {
    test.setTimeout(180_000);
    const origin = own.server.origin;
    const session = await createInterview(origin);
    const ivy = await openInterviewer(people, 'Ivy', session.interviewerUrl);
    await caretTo(ivy, 'end');
    await ivy.keyboard.type('// kept across a restart ✓ 😀\n');
    await ivy.keyboard.type('// second line é\n');
    const final = await editorText(ivy);
    expect(final).toContain('second line');
    await expect
      .poll(async () => (await api(origin, `/api/sessions/${session.id}/export`, { key: session.interviewerKey })).json?.code, {
        message: 'the server never stored the code',
        ...ARRIVAL,
      })
      .toBe(final);

    // Everyone leaves; the room unloads (after its join and leave events are in).
    const ivyContext = ivy.context();
    await ivy.close();
    await historyWhen(
      origin,
      session,
      (b) => hasAuthor(b, 'Ivy') && hasEvent(b, 'join', 'Ivy') && hasEvent(b, 'leave', 'Ivy'),
      "the history never got Ivy's join and leave",
    );
    await sleep(3_000);
    const info = async () => {
      const response = await api(origin, `/api/sessions/${session.id}`, { key: session.interviewerKey });
      expect(response.status).toBe(200);
      return response.json;
    };
    const before = await info();

    // The playback of the unloaded session, from the interviewer's storage.
    const playback = await ivyContext.newPage();
    await openPlayback(playback, `${origin}/s/${session.id}/playback`);
    expect(await playbackText(playback), 'the playback of an unloaded room').toBe(final);
    const { max } = await timeline(playback);
    expect((await seek(playback, max)).text).toBe(final);
    await playback.close();

    // Reading the history changed nothing.
    await sleep(1_500);
    const after = await info();
    expect(after.lastActivity, 'the playback changed lastActivity').toBe(before.lastActivity);
    expect(after.users).toBe(before.users);
    const code = await api(origin, `/api/sessions/${session.id}/export`, { key: session.interviewerKey });
    expect(code.json.code).toBe(final);

    // A crash and a restart on the same data: the playback still shows the final text, in a fresh browser.
    await own.server.stop('SIGKILL');
    await own.server.start();
    const fresh = await people.open(null);
    await openPlayback(fresh, `${origin}/s/${session.id}/playback#key=${session.interviewerKey}`);
    expect(await playbackText(fresh), 'the playback after a restart').toBe(final);
    const restarted = await timeline(fresh);
    expect(restarted.max).toBe(max);
    expect((await seek(fresh, restarted.max)).text).toBe(final);
    await expect(fresh.getByTestId('playback-author').filter({ hasText: 'Ivy' })).toHaveCount(1);
  });
});
