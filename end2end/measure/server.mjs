// A pairpad server of our own (not the suite's shared webServer), for tests and
// measurements that stop and restart it: the release binary on a free loopback
// port with its own data directory. Used by the Playwright specs that restart a
// server (end2end/support/own-server.mjs), the Firefox suite
// (end2end/firefox/support/server.mjs) and the measurements here.
// Run from the repository root, or pass `repoRoot`; `bin` and `siteRoot` (or
// $PAIRPAD_BIN and $PAIRPAD_SITE_ROOT) point at another build.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Chromium as the suite launches it (Debian's, headless, no sandbox). */
export const CHROMIUM = {
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};

/** A loopback TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every server child still running: killed when this process exits, so none outlives a failed test. */
const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
});

/**
 * The flags of a test server: loopback `port`, its own data directory, the
 * built site, and no create rate limit (tests create many sessions).
 */
export function serverArgs({ port, dataDir, siteRoot, extraArgs = [] }) {
  return ['--addr', `127.0.0.1:${port}`, '--data-dir', dataDir, '--site-root', siteRoot, '--create-limit', '0', ...extraArgs];
}

/**
 * A server that can be started, killed and started again on the same port and
 * data directory. `log` collects its stdout/stderr (for failure reports).
 */
export class OwnServer {
  constructor({
    port,
    dataDir,
    repoRoot = REPO_ROOT,
    bin = process.env.PAIRPAD_BIN,
    siteRoot = process.env.PAIRPAD_SITE_ROOT,
    extraArgs = [],
  } = {}) {
    this.port = port;
    this.dataDir = dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'pairpad-own-'));
    this.ownsDataDir = !dataDir;
    this.repoRoot = repoRoot;
    this.bin = bin ? path.resolve(bin) : path.join(repoRoot, 'target/release/pairpad');
    this.siteRoot = siteRoot ? path.resolve(siteRoot) : path.join(repoRoot, 'target/site');
    this.extraArgs = extraArgs;
    this.child = null;
    this.log = [];
  }

  get origin() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the binary and waits until /api/health answers (retries while the binary is being replaced). */
  async start({ timeoutMs = 60_000 } = {}) {
    if (this.child) throw new Error('already running');
    if (!this.port) this.port = await freePort();
    const deadline = Date.now() + timeoutMs;
    let lastError = '';
    while (Date.now() < deadline) {
      const args = serverArgs({
        port: this.port,
        dataDir: this.dataDir,
        siteRoot: this.siteRoot,
        extraArgs: this.extraArgs,
      });
      let exited = null;
      const child = spawn(this.bin, args, {
        cwd: this.repoRoot,
        env: { ...process.env, NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      running.add(child);
      child.on('error', (e) => {
        running.delete(child);
        exited = `spawn failed: ${e.message}`;
      });
      child.on('exit', (code, signal) => {
        running.delete(child);
        exited = exited ?? `exited with ${code ?? signal}`;
        this.log.push(`[server ${child.pid} ${exited}]`);
      });
      for (const stream of [child.stdout, child.stderr]) this.collectLines(stream);
      this.child = child;
      while (!exited && Date.now() < deadline) {
        try {
          const response = await fetch(`${this.origin}/api/health`);
          if (response.ok) return this;
        } catch {
          // not listening yet
        }
        await sleep(100);
      }
      this.child = null;
      lastError = exited ?? 'no answer from /api/health';
      await sleep(2_000); // e.g. the binary is being rebuilt: try again
    }
    throw new Error(`pairpad did not start on port ${this.port}: ${lastError}\n${this.logText()}`);
  }

  /** Stops the server with `signal` (SIGTERM: graceful; SIGKILL: crash) and waits until it is gone. */
  async stop(signal = 'SIGTERM', { timeoutMs = 15_000 } = {}) {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await gone;
    clearTimeout(timer);
  }

  /** Stops the server and removes the data directory if we made it. */
  async dispose() {
    await this.stop('SIGTERM');
    if (this.ownsDataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Keeps a stream's output in `log`, one entry per line (the last 5,000 lines). */
  collectLines(stream) {
    let partial = '';
    const keep = (line) => {
      // eslint-disable-next-line no-control-regex
      line = line.replace(/\x1b\[[0-9;]*m/g, ''); // colour codes, should NO_COLOR be ignored
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

  logText() {
    return this.log.length ? this.log.join('\n') : '(pairpad printed nothing)';
  }

  /** Panics the server logged (each is a bug even if no test noticed). */
  panics() {
    return this.log.filter((line) => /panicked at /.test(line));
  }

  /** Creates a session; returns its id. */
  async createSession(language) {
    const response = await fetch(`${this.origin}/api/sessions/create`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(language ? { language } : {}),
    });
    if (response.status !== 201) throw new Error(`create: HTTP ${response.status} ${await response.text()}`);
    return (await response.json()).id;
  }
}
