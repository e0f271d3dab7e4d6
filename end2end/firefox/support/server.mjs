// The pairpad release binary for the Firefox suite. The binary
// (target/release/pairpad or $PAIRPAD_BIN) and target/site are copied into a
// temporary directory once per run, so a rebuild during the run cannot pull
// files from under the tests. A server runs on a free loopback port with its
// own data directory and `--create-limit 0`; stop() sends SIGINT (a graceful
// shutdown) and start() brings it back on the same port and data directory.
// Everything started here is killed, and every temporary directory removed,
// when the test process exits.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import { freePort, serverArgs } from '../../measure/server.mjs';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The binary under test. */
export const BIN = process.env.PAIRPAD_BIN
  ? path.resolve(process.env.PAIRPAD_BIN)
  : path.join(REPO_ROOT, 'target', 'release', 'pairpad');

/** The site it serves (cargo-leptos output). */
export const SITE = process.env.PAIRPAD_SITE_ROOT
  ? path.resolve(process.env.PAIRPAD_SITE_ROOT)
  : path.join(REPO_ROOT, 'target', 'site');

/** How long a server may take to answer /api/health. */
const START_TIMEOUT_MS = 30_000;
/** How long a server may take to exit after SIGINT before it is killed. */
const STOP_TIMEOUT_MS = 15_000;

const live = new Set();
const tempDirs = new Set();

function cleanUp() {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
  live.clear();
  for (const dir of tempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {}
  }
  tempDirs.clear();
}
process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    cleanUp();
    process.exit(130);
  });
}

function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

let copied = null;

/**
 * The binary and the site, copied once per run: under `node --test` every test
 * file is a child of the same runner process, so the first file copies into a
 * directory named after the runner (and its start time) and the others use that
 * copy; a detached janitor removes it when the runner has exited. Run any other
 * way, a process copies for itself. Returns the copies' paths.
 */
async function installedCopy() {
  if (copied) return copied;
  const runner = process.env.NODE_TEST_CONTEXT ? runnerKey() : null;
  let dir;
  if (!runner) {
    dir = tempDir('pairpad-firefox-');
    await copyInto(dir);
  } else {
    dir = path.join(os.tmpdir(), `pairpad-firefox-run-${runner}`);
    let mine = false;
    try {
      fs.mkdirSync(dir);
      mine = true;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    if (mine) {
      const janitor = spawn(
        'sh',
        ['-c', 'while kill -0 "$1" 2>/dev/null; do sleep 2; done; rm -rf "$2"', 'janitor', String(process.ppid), dir],
        { detached: true, stdio: 'ignore' },
      );
      janitor.unref();
      try {
        await copyInto(dir);
      } catch (error) {
        fs.writeFileSync(path.join(dir, 'failed'), error.message);
        throw error;
      }
    } else {
      const deadline = Date.now() + 90_000;
      while (!fs.existsSync(path.join(dir, 'ready'))) {
        if (fs.existsSync(path.join(dir, 'failed'))) throw new Error(fs.readFileSync(path.join(dir, 'failed'), 'utf8'));
        if (Date.now() > deadline) throw new Error(`the copy of pairpad in ${dir} never became ready`);
        await sleep(200);
      }
    }
  }
  copied = { bin: path.join(dir, 'pairpad'), site: path.join(dir, 'site') };
  return copied;
}

/** The test runner (this process's parent) as `<pid>-<start time>`, or null off Linux. */
function runnerKey() {
  try {
    // Field 22 of /proc/<pid>/stat (after the parenthesised command name) is the start time.
    const stat = fs.readFileSync(`/proc/${process.ppid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return `${process.ppid}-${start}`;
  } catch {
    return null;
  }
}

/** The build's parts (waiting a while for them: they may be being rebuilt). */
async function copyInto(dir) {
  const needed = [
    ['the pairpad binary', BIN],
    ['the built site', path.join(SITE, 'pkg', 'pairpad.wasm')],
  ];
  const deadline = Date.now() + 30_000;
  for (;;) {
    const missing = needed.filter(([, file]) => !fs.existsSync(file));
    if (!missing.length) break;
    if (Date.now() > deadline) {
      const [what, file] = missing[0];
      throw new Error(`${what} is missing at ${file}: build it with \`cargo leptos build --release\` (or set PAIRPAD_BIN)`);
    }
    await sleep(1_000);
  }
  fs.copyFileSync(BIN, path.join(dir, 'pairpad'));
  fs.chmodSync(path.join(dir, 'pairpad'), 0o755);
  fs.cpSync(SITE, path.join(dir, 'site'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'ready'), '');
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A pairpad server: `await new Pairpad({ extraArgs }).start()`; `stop()` and
 * `start()` again keep the port and the data directory.
 */
export class Pairpad {
  constructor({ extraArgs = [] } = {}) {
    this.extraArgs = extraArgs;
    this.port = null;
    this.dataDir = tempDir('pairpad-firefox-data-');
    this.child = null;
    this.exited = null;
    /** Everything the server printed (all of its runs). */
    this.log = [];
  }

  get origin() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the binary and resolves once /api/health answers. */
  async start() {
    if (this.child) throw new Error('pairpad is already running');
    const { bin, site } = await installedCopy();
    this.port ??= await freePort();
    const args = serverArgs({ port: this.port, dataDir: this.dataDir, siteRoot: site, extraArgs: this.extraArgs });
    const child = spawn(bin, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    this.child = child;
    let exitReason = null;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        exitReason = `exited with ${signal ?? `code ${code}`}`;
        this.log.push(`[pairpad ${child.pid} ${exitReason}]`);
        resolve({ code, signal });
      });
      // Not started at all (no 'exit' follows).
      child.once('error', (error) => {
        live.delete(child);
        exitReason = `could not start: ${error.message}`;
        resolve({ code: null, signal: null });
      });
    });
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      const keep = (line) => {
        // Colour codes off (NO_COLOR should already have done it).
        // eslint-disable-next-line no-control-regex
        line = line.replace(/\x1b\[[0-9;]*m/g, '');
        if (line.trim()) this.log.push(line);
        if (this.log.length > 5000) this.log.splice(0, this.log.length - 5000);
      };
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop();
        lines.forEach(keep);
      });
      stream.on('end', () => keep(partial));
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exitReason) break;
      try {
        const response = await fetch(`${this.origin}/api/health`);
        if (response.ok) return this;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    await this.stop('SIGKILL');
    throw new Error(
      `pairpad did not answer /api/health on port ${this.port} (${exitReason ?? `not within ${START_TIMEOUT_MS} ms`})\n` +
        this.logText(),
    );
  }

  /** Stops the server (SIGINT: the graceful shutdown, as Ctrl+C) and waits until it is gone. */
  async stop(signal = 'SIGINT') {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (live.has(child) && child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const timer = setTimeout(() => {
        this.log.push(`[pairpad ${child.pid} did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}: SIGKILL]`);
        child.kill('SIGKILL');
      }, STOP_TIMEOUT_MS);
      await this.exited;
      clearTimeout(timer);
    }
  }

  /** Stops the server and deletes its data. */
  async dispose() {
    await this.stop('SIGINT');
    fs.rmSync(this.dataDir, { recursive: true, force: true });
    tempDirs.delete(this.dataDir);
  }

  logText() {
    return this.log.length ? this.log.join('\n') : '(pairpad printed nothing)';
  }

  /** Panics the server logged (each is a bug even if no test noticed). */
  panics() {
    return this.log.filter((line) => /panicked at /.test(line));
  }

  /** POST /api/sessions/create; returns `{ id, url, language, ... }`. */
  async createSession(language) {
    const response = await fetch(`${this.origin}/api/sessions/create`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(language ? { language } : {}),
    });
    const text = await response.text();
    if (response.status !== 201) throw new Error(`POST /api/sessions/create answered ${response.status}: ${text}`);
    return JSON.parse(text);
  }
}

/**
 * Registers node:test hooks giving the calling test file one server: started
 * before its tests, stopped (SIGINT) after them; the file fails if the server
 * panicked at any point. Returns a holder whose `server` is that server.
 */
export function serverForFile({ extraArgs = [] } = {}) {
  const holder = { server: null };
  before(async () => {
    holder.server = await new Pairpad({ extraArgs }).start();
  });
  after(async () => {
    const server = holder.server;
    if (!server) return;
    await server.dispose();
    const panics = server.panics();
    if (panics.length) {
      throw new Error(`pairpad panicked during this file's tests:\n${panics.join('\n')}\n--- log ---\n${server.logText()}`);
    }
  });
  return holder;
}
