// Firefox ESR (Debian's /usr/bin/firefox-esr), headless, driven through
// geckodriver by selenium-webdriver. Each participant is a browser of its own: a
// separate geckodriver, Firefox process and fresh temporary profile (so its own
// storage, name and WebSocket), not a tab. Selenium Manager is never used: the
// geckodriver and Firefox paths are passed explicitly, and a missing one fails
// with the command that installs it.
//
// Everything a page reports is collected per participant through WebDriver BiDi
// (log.entryAdded: console messages and uncaught errors, in workers too when
// Firefox reports them) plus a preload script that turns CSP violations into
// console errors; geckodriver's own output (which includes Firefox's stderr)
// goes to a file. Both are printed when a test fails.
//
// Reading page state goes through executeScript (Monaco's model, attributes);
// acting goes through real WebDriver input (clicks, key presses), so Firefox's
// own event handling is what the page sees.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { By, Key } from 'selenium-webdriver';
import firefox from 'selenium-webdriver/firefox.js';
import { Log } from 'selenium-webdriver/bidi/generated/log.js';
import { Script } from 'selenium-webdriver/bidi/generated/script.js';

export { Key };

export const GECKODRIVER_VERSION = '0.37.1';
const GECKODRIVER_INSTALL = `cargo install geckodriver --version ${GECKODRIVER_VERSION} --locked`;
const FIREFOX_INSTALL = 'apt-get update && apt-get install -y firefox-esr';

/** Firefox ESR from Debian's package (PAIRPAD_FIREFOX overrides). */
export const FIREFOX = process.env.PAIRPAD_FIREFOX || '/usr/bin/firefox-esr';

/** How long an edit, a presence change or a run may take to show up on another page. */
export const ARRIVAL = 15_000;
/** Reconnect backoff tops out at 10 s (plus jitter): allow a few rounds. */
export const RECONNECT = 45_000;
/** A short program ends within this. */
export const RUN_END = 20_000;
/** Pyodide (~12 MB, from pairpad itself) loads and compiles on this 2-core machine within this. */
export const PYTHON_LOAD = 60_000;

/** geckodriver from $CARGO_HOME/bin (cargo's default: ~/.cargo/bin), else from PATH. */
export function geckodriverPath() {
  const cargoHome = process.env.CARGO_HOME || path.join(os.homedir(), '.cargo');
  const candidates = [path.join(cargoHome, 'bin', 'geckodriver')];
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (dir) candidates.push(path.join(dir, 'geckodriver'));
  }
  const found = candidates.find((file) => isExecutable(file));
  if (!found) {
    throw new Error(
      `geckodriver not found in ${path.join(cargoHome, 'bin')} or on PATH; install it with: ${GECKODRIVER_INSTALL}`,
    );
  }
  return found;
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function firefoxPath() {
  if (!isExecutable(FIREFOX)) {
    throw new Error(`Firefox ESR not found at ${FIREFOX}; install it with: ${FIREFOX_INSTALL}`);
  }
  return FIREFOX;
}

/**
 * Preferences on top of geckodriver's own: nothing in the background (with a
 * proxy that logs, a session page open for 25 s made no request beyond the
 * loopback server).
 */
export const PREFERENCES = {
  // Only loopback pages are visited: no proxy, whatever the environment says.
  'network.proxy.type': 0,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'browser.safebrowsing.downloads.enabled': false,
  'browser.safebrowsing.update.enabled': false,
  'app.update.disabledForTesting': true,
  'app.normandy.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'datareporting.healthreport.uploadEnabled': false,
  'toolkit.telemetry.enabled': false,
  'browser.ping-centre.telemetry': false,
  'extensions.update.enabled': false,
  'extensions.getAddons.cache.enabled': false,
  'services.settings.server': 'http://127.0.0.1:9/remote-settings-disabled',
  'browser.newtabpage.enabled': false,
  'browser.startup.page': 0,
};

/** Runs in every document before its own scripts: CSP violations become console errors. */
const REPORT_CSP = `() => {
  document.addEventListener('securitypolicyviolation', (e) => {
    console.error('[csp] ' + e.effectiveDirective + ' blocked ' + (e.blockedURI || '(inline)') +
      ' at ' + (e.sourceFile || '?') + ':' + e.lineNumber + '; ' + e.disposition);
  }, true);
}`;

/** Runs in every document before its own scripts: the display name pairpad starts with. */
function presetNameScript(name) {
  return `() => {
    try {
      if (!localStorage.getItem('pairpad.name')) localStorage.setItem('pairpad.name', ${JSON.stringify(name)});
    } catch (e) {
      // about:blank and other opaque origins have no storage.
    }
  }`;
}

/** Messages that mean a security header blocked something. */
const POLICY_PROBLEM =
  /Content[- ]Security[- ]Policy|\[csp\]|Refused to|Cross-Origin-(Embedder|Resource|Opener)-Policy|require-corp|crossOriginIsolated|NS_ERROR_DOM_CORP_FAILED|NS_ERROR_DOM_COEP_FAILED/i;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `probe` until `accept(value)` holds (default: a truthy value), every
 * 100 ms, for at most `timeout` ms; returns the accepted value or throws with
 * `message` and the last value seen (or the last error).
 */
export async function poll(probe, { timeout = ARRIVAL, message = 'condition', accept = Boolean, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastError;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (accept(last)) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) break;
    await sleep(interval);
  }
  const seen = lastError ? `last error: ${lastError.message}` : `last value: ${JSON.stringify(last)}`;
  throw new Error(`${message}: not within ${timeout} ms (${seen})`);
}

/** Waits until `probe()` is strictly equal to `expected`. */
export function pollFor(probe, expected, options = {}) {
  return poll(probe, { ...options, accept: (value) => value === expected });
}

let launched = 0;

/**
 * One person in a session: a Firefox of their own. `await Participant.launch('Ada')`.
 */
export class Participant {
  constructor(name, driver, driverLog) {
    this.name = name;
    this.driver = driver;
    this.driverLog = driverLog;
    /** What the browser reported (console, uncaught errors, CSP). */
    this.lines = [];
  }

  /**
   * Starts a headless Firefox (fresh profile) through its own geckodriver. With
   * `name`, pairpad pages start with that display name.
   */
  static async launch(name) {
    const options = new firefox.Options()
      .setBinary(firefoxPath())
      .addArguments('-headless')
      .enableBidi();
    for (const [key, value] of Object.entries(PREFERENCES)) options.setPreference(key, value);

    const geckodriver = geckodriverPath();
    const driverLog = path.join(os.tmpdir(), `pairpad-firefox-${process.pid}-${++launched}-${name || 'anon'}.log`);
    const logFd = fs.openSync(driverLog, 'w');
    let driver;
    try {
      const service = new firefox.ServiceBuilder(geckodriver)
        .setStdio(['ignore', logFd, logFd])
        // Firefox refuses every connection that is not to a loopback address
        // (and honours services.settings.server above).
        .setEnvironment({ ...process.env, MOZ_DISABLE_NONLOCAL_CONNECTIONS: '1' })
        .build();
      driver = firefox.Driver.createSession(options, service);
      // The service spawns geckodriver asynchronously: the log file stays open
      // until the session exists (geckodriver has its own copy by then).
      await driver.getSession();
    } catch (error) {
      const output = fs.readFileSync(driverLog, 'utf8').trim();
      fs.rmSync(driverLog, { force: true });
      error.message += `\n--- geckodriver/Firefox output ---\n${output || '(nothing)'}`;
      throw error;
    } finally {
      fs.closeSync(logFd);
    }
    const person = new Participant(name, driver, driverLog);
    try {
      await driver.manage().setTimeouts({ script: 30_000, pageLoad: 60_000, implicit: 0 });
      await driver.manage().window().setRect({ width: 1280, height: 900 });
      const log = await Log.create(driver);
      await log.onEntryAdded((entry) => person.record(entry));
      const script = await Script.create(driver);
      await script.addPreloadScript({ functionDeclaration: REPORT_CSP });
      if (name) await script.addPreloadScript({ functionDeclaration: presetNameScript(name) });
    } catch (error) {
      await person.quit();
      throw error;
    }
    return person;
  }

  record(entry) {
    const frame = entry.stackTrace?.callFrames?.[0];
    const where = frame ? ` (${frame.url}:${frame.lineNumber + 1})` : '';
    const kind = entry.type === 'console' ? `console.${entry.method || entry.level}` : `${entry.type} ${entry.level}`;
    this.lines.push(`${kind}: ${entry.text}${where}`);
  }

  /** What the browser reported, for failure messages. */
  report() {
    const lines = this.lines.length ? this.lines.join('\n') : '(nothing)';
    let driverTail = '';
    try {
      const text = fs.readFileSync(this.driverLog, 'utf8').trim().split('\n').slice(-40).join('\n');
      if (text) driverTail = `\n--- geckodriver/Firefox output of ${this.name} (last 40 lines) ---\n${text}`;
    } catch {}
    return `--- browser log of ${this.name} ---\n${lines}${driverTail}`;
  }

  /** Lines saying a CSP, COEP or CORP rule blocked something. */
  policyProblems() {
    return this.lines.filter((line) => POLICY_PROBLEM.test(line));
  }

  async quit() {
    try {
      await this.driver.quit();
    } catch {
      // already gone
    }
    fs.rmSync(this.driverLog, { force: true });
  }

  // --- navigation and page state ------------------------------------------------------------

  async open(url) {
    await this.driver.get(url);
  }

  url() {
    return this.driver.getCurrentUrl();
  }

  /** Runs `fn(...args)` in the page and returns its result. */
  eval(fn, ...args) {
    return this.driver.executeScript(`return (${fn}).apply(null, arguments);`, ...args);
  }

  /** An element by its data-testid (fails if there is none). */
  byTestId(id) {
    return this.driver.findElement(By.css(`[data-testid="${id}"]`));
  }

  /** `[data-testid=id]`'s attribute `name`, or null if there is no such element. */
  attr(id, name) {
    return this.eval(
      (sel, n) => {
        const el = document.querySelector(sel);
        return el ? el.getAttribute(n) : null;
      },
      `[data-testid="${id}"]`,
      name,
    );
  }

  /** `[data-testid=id]`'s text (trimmed), or null if there is no such element. */
  text(id) {
    return this.eval((sel) => document.querySelector(sel)?.textContent.trim() ?? null, `[data-testid="${id}"]`);
  }

  /** A form control's current value, or null. */
  value(id) {
    return this.eval((sel) => document.querySelector(sel)?.value ?? null, `[data-testid="${id}"]`);
  }

  /** Waits until `[data-testid=id]` has attribute `name` equal to (or matching) `expected`. */
  waitForAttr(id, name, expected, { timeout = ARRIVAL, message } = {}) {
    const accept = expected instanceof RegExp ? (v) => v !== null && expected.test(v) : (v) => v === expected;
    return poll(() => this.attr(id, name), {
      timeout,
      accept,
      message: message ?? `${this.name}: [data-testid=${id}] ${name} never became ${expected}`,
    });
  }

  /** Waits until `[data-testid=id]`'s text is (or matches) `expected`. */
  waitForText(id, expected, { timeout = ARRIVAL, message } = {}) {
    const accept = expected instanceof RegExp ? (v) => v !== null && expected.test(v) : (v) => v === expected;
    return poll(() => this.text(id), {
      timeout,
      accept,
      message: message ?? `${this.name}: [data-testid=${id}] text never became ${expected}`,
    });
  }

  // --- the session page ---------------------------------------------------------------------

  /** Opens a session page and waits until its editor is ready and connected. */
  async openSession(url) {
    await this.open(url);
    await this.waitForEditor();
  }

  async waitForEditor() {
    await this.waitForAttr('editor', 'data-ready', 'true', {
      timeout: 30_000,
      message: `${this.name}: the editor never became ready`,
    });
    await this.waitForAttr('connection-status', 'data-state', 'connected', {
      message: `${this.name}: the page never said it was connected`,
    });
    await poll(() => this.eval(() => !!document.querySelector('.monaco-editor .view-lines')), {
      message: `${this.name}: Monaco never drew its lines`,
    });
  }

  /** The editor's text, as Monaco's model holds it. */
  editorText() {
    return this.eval(() => window.monaco.editor.getModels()[0].getValue());
  }

  /** Monaco's language id for the document. */
  editorLanguage() {
    return this.eval(() => window.monaco.editor.getModels()[0].getLanguageId());
  }

  /** Waits until the editor holds exactly `text`. */
  expectText(text, message = `${this.name}'s editor never showed the expected text`) {
    return pollFor(() => this.editorText(), text, { message });
  }

  /** Clicks into the editor and puts the caret at the very 'start' or 'end' of the text. */
  async caretTo(where) {
    await this.driver.findElement(By.css('.monaco-editor .view-lines')).click();
    await this.press(Key.CONTROL, where === 'start' ? Key.HOME : Key.END);
  }

  /** Presses a key chord: modifiers held, the last key pressed and released. */
  async press(...keys) {
    const actions = this.driver.actions();
    const modifiers = keys.slice(0, -1);
    for (const key of modifiers) actions.keyDown(key);
    actions.sendKeys(keys.at(-1));
    for (const key of modifiers.reverse()) actions.keyUp(key);
    await actions.perform();
  }

  /** Types `text` into whatever has focus, as key presses. */
  async type(text) {
    await this.driver.actions().sendKeys(text).perform();
  }

  /** Replaces the editor's text through Monaco's model (the normal edit path; it syncs). */
  setCode(code) {
    return this.eval((c) => window.monaco.editor.getModels()[0].setValue(c), code);
  }

  /** Picks `value` in the <select> `[data-testid=id]`. */
  async select(id, value) {
    await this.byTestId(id).findElement(By.css(`option[value="${value}"]`)).click();
  }

  // --- the run panel ------------------------------------------------------------------------

  /** The output panel's lines as `{ stream, text }`. */
  outputLines() {
    return this.eval(() =>
      [...document.querySelectorAll('[data-testid="output"] .line')].map((el) => ({
        stream: el.getAttribute('data-stream'),
        text: el.textContent,
      })),
    );
  }

  /** Empties the panel, then clicks Run (the status line that appears is this run's). */
  async startRun() {
    await this.byTestId('clear-output').click();
    await poll(() => this.eval(() => !document.querySelector('[data-testid="run-status"]')), {
      message: `${this.name}: Clear left the old run's status`,
    });
    await poll(() => this.byTestId('run-button').isEnabled(), { message: `${this.name}: Run never became clickable` });
    await this.byTestId('run-button').click();
  }

  /** Waits for the run shown on the page to end; returns its status, summary and lines. */
  async runEnded(timeout = RUN_END) {
    const status = await this.waitForAttr('run-status', 'data-status', /^(ok|error|timeout|stopped)$/, {
      timeout,
      message: `${this.name}: the run never ended`,
    });
    return { status, summary: await this.text('run-status'), lines: await this.outputLines() };
  }

  /** Sets the code, runs it and waits for the end. */
  async run(code, timeout = RUN_END) {
    await this.setCode(code);
    await this.startRun();
    return this.runEnded(timeout);
  }
}

/**
 * Runs `body(people)` with one fresh Firefox per name, quits them all afterwards;
 * on failure the error carries every browser's log (and `server`'s log). After a
 * success, a CSP/COEP/CORP block any browser reported fails the test.
 */
export async function withPeople(names, body, { server } = {}) {
  const people = [];
  try {
    // One after the other: two cores, and a slow start should not time out the other.
    for (const name of names) people.push(await Participant.launch(name));
    await body(people);
    const blocked = people.flatMap((p) => p.policyProblems().map((line) => `${p.name}: ${line}`));
    if (blocked.length) throw new Error(`the browser reported blocked content:\n${blocked.join('\n')}`);
  } catch (error) {
    const reports = people.map((p) => p.report()).join('\n');
    const serverLog = server ? `\n--- pairpad log (last 60 lines) ---\n${server.log.slice(-60).join('\n')}` : '';
    error.message += `\n${reports}${serverLog}`;
    throw error;
  } finally {
    await Promise.all(people.map((p) => p.quit()));
  }
}

/**
 * Ada and Bob (a Firefox each) on a new `language` session of `server`, both
 * pages ready and connected: `body(a, b, url)`.
 */
export async function adaAndBobIn(server, language, body) {
  const id = await server.createSession(language);
  const url = `${server.origin}/s/${id}`;
  await withPeople(
    ['Ada', 'Bob'],
    async ([a, b]) => {
      await a.openSession(url);
      await b.openSession(url);
      await body(a, b, url);
    },
    { server },
  );
}
