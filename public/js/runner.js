// pairpad: the page side of the code runners (imported by the Rust front end through
// wasm-bindgen; plain exported class, simple arguments).
//
//   const runner = new CodeRunner(location.origin);
//   runner.preloadPython((state, detail) => …);      // 'loading' | 'ready' | 'error'
//   const json = await runner.run('python', code, stdin, 5000, 65536, 1000, (stream, text) => …);
//   // json: {"status":"ok"|"error"|"timeout"|"stopped","durationMs":12.3,"truncated":false,
//   //        "error":{"type":"ZeroDivisionError","message":"division by zero","line":3}|null}
//
// JavaScript runs in /runner/js-worker.js: a fresh worker per run, always started one run
// ahead so a run does not wait for it; at the time limit (or stop()) the worker is
// terminated. Python runs in /runner/py-worker.js (Pyodide, loaded once and reused while runs
// leave nothing behind): at the time limit or stop() it is interrupted through a
// SharedArrayBuffer (KeyboardInterrupt); if that is not honoured within 500 ms, or there is
// no SharedArrayBuffer, the worker is terminated and Pyodide reloaded in the background
// (preloadPython's onStatus hears about it). It is also replaced when it reports that a run
// left something that could reach a later run; the next run waits for the fresh one.
//
// The time limit counts from the moment a run is handed to its worker, so a worker that is
// busy with something else (and never starts the run) still gets the run stopped, and is
// replaced.
//
// Output: workers write UTF-8 into a SharedArrayBuffer that this side polls every 16 ms (so
// output appears even while the program is busy, and the last lines before an endless loop
// survive the worker's termination); without cross-origin isolation they post batches every
// ~16 ms instead. Both sides enforce maxOutputBytes / maxOutputLines. Everything a worker
// sends is treated as untrusted data: only known message types, ids and string fields are
// used, and onOutput receives plain strings.
//
// Messages this module adds to the output (stream 'stderr', each on its own line):
//   "[output truncated: …]", "[time limit exceeded: …]", "[stopped]".
// Errors are written to stderr by the workers (JS: "Uncaught TypeError: … at editor.js:3:5";
// Python: the traceback); result.error carries {type, message, line} for the editor.
// run() while a run is in progress rejects (the UI should offer stop() instead).

const DEFAULT_TIME_LIMIT_MS = 10000;
const DEFAULT_MAX_BYTES = 1 << 20;
const DEFAULT_MAX_LINES = 10000;
const MAX_CHANNEL_BYTES = 64 << 20;
const POLL_MS = 16;
const POLL_BUDGET_BYTES = 64 * 1024;
const INTERRUPT_GRACE_MS = 500;
const RESIGNAL_MS = 100;
const LOAD_SILENCE_MS = 60000;

const LANGS = { javascript: 'js', js: 'js', python: 'py', py: 'py', python3: 'py' };

function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { n += 4; i++; } else n += 3;
    } else n += 3;
  }
  return n;
}

// Longest prefix of s that fits in `bytes` UTF-8 bytes.
function prefixWithinBytes(s, bytes) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let w = c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
    let step = 1;
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { w = 4; step = 2; }
    }
    if (n + w > bytes) return s.slice(0, i);
    n += w;
    i += step - 1;
  }
  return s;
}

function positiveNumber(v, fallback) {
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

export class CodeRunner {
  constructor(origin) {
    const o = typeof origin === 'string' && origin ? origin : globalThis.location.origin;
    this._origin = o.replace(/\/+$/, '');
    this._shared = typeof SharedArrayBuffer === 'function' && globalThis.crossOriginIsolated === true;
    this._nextId = 1;
    this._run = null;
    this._disposed = false;
    this._jsSpare = null;
    this._py = null;
    this._pyStatus = { state: 'idle', detail: '' };
    this._onPyStatus = null;
    this._spawnJs();
  }

  // ---- public API ----------------------------------------------------------------------

  preloadPython(onStatus) {
    if (this._disposed) return;
    if (typeof onStatus === 'function') this._onPyStatus = onStatus;
    if (this._py) {
      const s = this._pyStatus;
      this._emitStatus(s.state, s.detail);
    } else {
      this._ensurePy(); // reports 'loading' itself
    }
  }

  run(language, code, stdin, timeLimitMs, maxOutputBytes, maxOutputLines, onOutput) {
    if (this._disposed) return Promise.reject(new Error('CodeRunner: disposed'));
    if (this._run) return Promise.reject(new Error('CodeRunner: a run is already in progress'));
    const lang = LANGS[String(language).toLowerCase()];
    if (!lang) return Promise.reject(new Error(`CodeRunner: unsupported language '${language}'`));
    return new Promise((resolve) => {
      const maxBytes = Math.floor(positiveNumber(maxOutputBytes, DEFAULT_MAX_BYTES));
      const run = {
        id: this._nextId++,
        lang,
        resolve,
        onOutput: typeof onOutput === 'function' ? onOutput : () => {},
        timeLimitMs: positiveNumber(timeLimitMs, DEFAULT_TIME_LIMIT_MS),
        maxBytes,
        maxLines: Math.floor(positiveNumber(maxOutputLines, DEFAULT_MAX_LINES)),
        bytes: 0,
        lines: 0,
        truncated: false,
        lastChar: '\n',
        phase: 'waiting', // waiting -> running -> (ending) -> done
        ending: null,
        startedAt: 0,
        timers: [],
        pollTimer: 0,
        channel: null,
        worker: null,
      };
      if (this._shared) run.channel = this._makeChannel(maxBytes);
      this._run = run;
      const src = typeof code === 'string' ? code : String(code ?? '');
      const input = typeof stdin === 'string' ? stdin : String(stdin ?? '');
      if (lang === 'js') this._runJs(run, src, input);
      else this._runPy(run, src, input);
    });
  }

  stop() {
    const run = this._run;
    if (!run) return;
    this._halt(run, 'stopped');
  }

  isRunning() {
    return this._run !== null;
  }

  dispose() {
    if (this._disposed) return;
    this._disposed = true;
    const run = this._run;
    if (run) this._finish(run, 'stopped', null, null);
    if (this._jsSpare) { this._jsSpare.terminate(); this._jsSpare = null; }
    if (this._py) {
      if (this._py.worker) this._py.worker.terminate();
      if (this._py.watchdog) clearTimeout(this._py.watchdog);
      this._py = null;
    }
    this._onPyStatus = null;
  }

  // ---- JavaScript ----------------------------------------------------------------------

  _spawnJs() {
    if (this._disposed) return;
    try {
      const w = new Worker(`${this._origin}/runner/js-worker.js`, { name: 'pairpad-js' });
      // A worker that cannot start (404, CSP, COEP) fires 'error' on the Worker object,
      // possibly before it is used: remember it.
      w.onerror = (ev) => { ev.preventDefault(); w.pairpadFailed = true; };
      this._jsSpare = w;
    } catch (_) {
      this._jsSpare = null;
    }
  }

  _runJs(run, code, stdin) {
    let w = this._jsSpare;
    this._jsSpare = null;
    if (!w) {
      this._spawnJs();
      w = this._jsSpare;
      this._jsSpare = null;
    }
    if (w && w.pairpadFailed) {
      w.terminate();
      this._spawnJs(); // retry once, now
      w = this._jsSpare;
      this._jsSpare = null;
    }
    if (!w || w.pairpadFailed) {
      if (w) w.terminate();
      this._fail(run, 'InternalError', 'the JavaScript worker could not be started');
      return;
    }
    run.worker = w;
    this._spawnJs(); // the next run's worker starts now, in the background
    w.onmessage = (ev) => this._onWorkerMessage(run, ev.data);
    w.onerror = (ev) => {
      ev.preventDefault();
      if (this._run === run) this._fail(run, 'InternalError', 'the JavaScript worker failed');
    };
    w.postMessage({
      type: 'run', id: run.id, code, stdin, maxBytes: run.maxBytes, maxLines: run.maxLines,
      out: run.channel ? run.channel.sab : null,
    });
    this._markRunning(run);
  }

  // ---- Python --------------------------------------------------------------------------

  _ensurePy(detail = 'Starting Python…') {
    if (this._py || this._disposed) return this._py;
    const py = { worker: null, interrupt: null, ready: false, failed: null, waiters: [], watchdog: 0 };
    this._py = py;
    this._setPyStatus('loading', detail);
    let w;
    try {
      w = new Worker(`${this._origin}/runner/py-worker.js`, { type: 'module', name: 'pairpad-python' });
    } catch (e) {
      this._pyFailed(py, `could not start the Python worker: ${e && e.message ? e.message : e}`);
      return py;
    }
    py.worker = w;
    if (this._shared) py.interrupt = new Int32Array(new SharedArrayBuffer(8));
    w.onmessage = (ev) => this._onPyMessage(py, ev.data);
    w.onerror = (ev) => {
      ev.preventDefault();
      if (this._py === py && !py.ready) this._pyFailed(py, 'the Python worker failed to start');
    };
    w.postMessage({ type: 'init', interrupt: py.interrupt ? py.interrupt.buffer : null });
    this._armLoadWatchdog(py);
    return py;
  }

  _onPyMessage(py, msg) {
    if (this._py !== py || !msg || typeof msg !== 'object') return;
    if (msg.type === 'status') {
      const detail = typeof msg.detail === 'string' ? msg.detail.slice(0, 200) : '';
      if (py.watchdog) clearTimeout(py.watchdog);
      py.watchdog = 0;
      if (msg.state === 'loading' && !py.ready) this._armLoadWatchdog(py);
      if (msg.state === 'ready') {
        py.ready = true;
        this._setPyStatus('ready', detail || 'Python ready');
        const waiters = py.waiters;
        py.waiters = [];
        for (const w of waiters) w(null);
      } else if (msg.state === 'error') {
        this._pyFailed(py, detail || 'Python failed to load');
      } else if (msg.state === 'loading' && !py.ready) {
        this._setPyStatus('loading', detail);
      }
      return;
    }
    const run = this._run;
    const busy = run && run.lang === 'py' && run.worker === py.worker;
    if (msg.type === 'tainted') {
      // Python ran between runs. A run in this worker ends with a restart anyway.
      if (!busy) this._restartPy();
      return;
    }
    if (busy) this._onWorkerMessage(run, msg);
  }

  _pyFailed(py, message) {
    py.failed = message;
    if (py.watchdog) clearTimeout(py.watchdog);
    if (py.worker) py.worker.terminate();
    if (this._py === py) this._py = null; // the next preload/run tries again
    this._setPyStatus('error', message);
    const waiters = py.waiters;
    py.waiters = [];
    for (const w of waiters) w(message);
  }

  _restartPy() {
    const py = this._py;
    if (py) {
      if (py.worker) py.worker.terminate();
      if (py.watchdog) clearTimeout(py.watchdog);
      const waiters = py.waiters;
      py.waiters = [];
      this._py = null;
      for (const w of waiters) w('Python was restarted');
    }
    if (!this._disposed) this._ensurePy('Restarting Python…');
  }

  _runPy(run, code, stdin) {
    const py = this._ensurePy();
    const go = (failure) => {
      if (this._run !== run || run.phase !== 'waiting') return;
      if (failure || !py.worker || this._py !== py) {
        this._fail(run, 'PythonLoadError', failure || 'Python is not available');
        return;
      }
      run.worker = py.worker;
      py.worker.postMessage({
        type: 'run', id: run.id, code, stdin, maxBytes: run.maxBytes, maxLines: run.maxLines,
        timeLimitMs: run.timeLimitMs, out: run.channel ? run.channel.sab : null,
      });
      this._markRunning(run); // not while loading, but whether or not the worker answers
    };
    if (!py) go('Python is not available');
    else if (py.failed) go(py.failed);
    else if (py.ready) go(null);
    else py.waiters.push(go);
  }

  _setPyStatus(state, detail) {
    const prev = this._pyStatus;
    if (prev.state === state && prev.detail === detail) return;
    this._pyStatus = { state, detail };
    this._emitStatus(state, detail);
  }

  // Loading that goes quiet for too long (no progress, no ready) is reported as an error.
  _armLoadWatchdog(py) {
    if (py.watchdog) clearTimeout(py.watchdog);
    py.watchdog = setTimeout(() => {
      if (this._py === py && !py.ready) this._pyFailed(py, 'Python did not finish loading (no progress for 60 s)');
    }, LOAD_SILENCE_MS);
  }

  _emitStatus(state, detail) {
    const cb = this._onPyStatus;
    if (!cb) return;
    try { cb(state, detail); } catch (e) { console.error('CodeRunner onStatus callback failed', e); }
  }

  // ---- shared run machinery -------------------------------------------------------------

  _markRunning(run) {
    if (run.phase !== 'waiting') return;
    run.phase = 'running';
    run.startedAt = performance.now();
    // Without an interrupt buffer the Python worker enforces the limit itself; this timer is
    // then the backstop that restarts it.
    const selfEnforced = run.lang === 'py' && !(this._py && this._py.interrupt);
    const limit = run.timeLimitMs + (selfEnforced ? INTERRUPT_GRACE_MS : 0);
    run.timers.push(setTimeout(() => this._halt(run, 'timeout'), limit));
    if (run.channel) this._schedulePoll(run);
  }

  _onWorkerMessage(run, msg) {
    if (this._run !== run || !msg || typeof msg !== 'object' || msg.id !== run.id) return;
    switch (msg.type) {
      case 'wake':
        if (run.phase === 'running') this._drain(run, POLL_BUDGET_BYTES);
        break;
      case 'out': {
        const chunks = Array.isArray(msg.chunks) ? msg.chunks : [];
        for (let i = 0; i + 1 < chunks.length; i += 2) {
          const stream = chunks[i] === 2 ? 'stderr' : 'stdout';
          if (typeof chunks[i + 1] === 'string') this._deliver(run, stream, chunks[i + 1]);
        }
        break;
      }
      case 'done': {
        this._drain(run);
        if (msg.truncated === true) this._truncated(run, null);
        const e = msg.error && typeof msg.error === 'object' ? msg.error : null;
        const error = e ? {
          type: typeof e.type === 'string' ? e.type.slice(0, 200) : 'Error',
          message: typeof e.message === 'string' ? e.message.slice(0, 10000) : '',
          line: Number.isInteger(e.line) && e.line > 0 ? e.line : null,
        } : null;
        const duration = Number.isFinite(msg.durationMs) && msg.durationMs >= 0 ? msg.durationMs : null;
        if (run.lang === 'py' && msg.restart === true) this._restartPy();
        if (run.ending) {
          // We asked for the interrupt: report it as the timeout/stop it was.
          this._finish(run, run.ending, null, duration);
        } else if (msg.status === 'interrupted' || msg.status === 'timeout') {
          this._notice(run, `[time limit exceeded: the program was stopped after ${run.timeLimitMs} ms]`);
          this._finish(run, 'timeout', null, duration);
        } else {
          this._finish(run, msg.status === 'ok' ? 'ok' : 'error', msg.status === 'ok' ? null : error, duration);
        }
        break;
      }
      default:
        break;
    }
  }

  // Time limit or stop(): JS workers are terminated; Python is interrupted first.
  _halt(run, reason) {
    if (this._run !== run || run.ending) return;
    run.ending = reason;
    this._drain(run);
    this._notice(run, reason === 'timeout'
      ? `[time limit exceeded: the program was stopped after ${run.timeLimitMs} ms]`
      : '[stopped]');
    if (run.phase === 'waiting') {
      // Still waiting for Python to load: nothing runs yet, loading carries on.
      this._finish(run, reason, null, 0);
      return;
    }
    if (run.lang === 'js') {
      this._finish(run, reason, null, null);
      return;
    }
    const py = this._py;
    const ia = py && py.worker === run.worker ? py.interrupt : null;
    if (!ia) {
      this._restartPy();
      this._finish(run, reason, null, null);
      return;
    }
    const signal = () => {
      Atomics.store(ia, 1, reason === 'timeout' ? 1 : 2);
      Atomics.store(ia, 0, 2);
    };
    signal();
    // Code that catches KeyboardInterrupt gets it again until the grace period ends.
    run.timers.push(setInterval(signal, RESIGNAL_MS));
    run.timers.push(setTimeout(() => {
      if (this._run !== run) return;
      this._restartPy();
      this._finish(run, reason, null, null);
    }, INTERRUPT_GRACE_MS));
  }

  _fail(run, type, message) {
    this._deliver(run, 'stderr', `${type}: ${message}\n`);
    this._finish(run, 'error', { type, message, line: null }, 0);
  }

  _finish(run, status, error, durationMs) {
    if (this._run !== run) return;
    this._drain(run);
    for (const t of run.timers) { clearTimeout(t); clearInterval(t); }
    run.timers = [];
    if (run.pollTimer) { clearTimeout(run.pollTimer); run.pollTimer = 0; }
    if (run.lang === 'js' && run.worker) run.worker.terminate();
    run.phase = 'done';
    this._run = null;
    const elapsed = run.startedAt ? performance.now() - run.startedAt : 0;
    const duration = durationMs === null || durationMs === undefined ? elapsed : durationMs;
    run.resolve(JSON.stringify({
      status,
      durationMs: Math.round(duration * 10) / 10,
      truncated: run.truncated,
      error: error || null,
    }));
  }

  // ---- output --------------------------------------------------------------------------

  _makeChannel(maxBytes) {
    // Worst case: a stream-switch byte before every payload byte.
    const size = Math.min(16 + 2 * maxBytes + 64, MAX_CHANNEL_BYTES);
    const sab = new SharedArrayBuffer(size);
    return {
      sab,
      hdr: new Int32Array(sab, 0, 4),
      data: new Uint8Array(sab, 16),
      read: 0,
      stream: 'stdout',
      decoders: { stdout: new TextDecoder(), stderr: new TextDecoder() },
    };
  }

  _schedulePoll(run) {
    run.pollTimer = setTimeout(() => {
      run.pollTimer = 0;
      if (this._run !== run) return;
      this._drain(run, POLL_BUDGET_BYTES);
      this._schedulePoll(run);
    }, POLL_MS);
  }

  // Reads what the worker wrote since the last call; at most `budget` bytes (polls use a
  // budget so a flood of output is spread over frames; the final drain takes the rest).
  _drain(run, budget = Infinity) {
    const ch = run.channel;
    if (!ch) return;
    // The worker writes its data before raising the truncated flag, so read the
    // flag first: everything written before it is then visible below. (Reading
    // it after the data could see a flag whose data this call did not read yet,
    // and drop lines that were within the cap.)
    const flagged = Atomics.load(ch.hdr, 1) === 1;
    const written = Atomics.load(ch.hdr, 0);
    const end = Math.min(written, ch.data.length, ch.read + budget);
    if (end > ch.read) {
      const bytes = ch.data.slice(ch.read, end); // a private (unshared) copy
      ch.read = end;
      let start = 0;
      const emit = (to) => {
        if (to > start) {
          const text = ch.decoders[ch.stream].decode(bytes.subarray(start, to), { stream: true });
          if (text) this._deliver(run, ch.stream, text);
        }
      };
      for (let i = 0; i < bytes.length; i++) {
        const b = bytes[i];
        if (b === 0xfe || b === 0xff) {
          emit(i);
          ch.stream = b === 0xfe ? 'stdout' : 'stderr';
          start = i + 1;
        }
      }
      emit(bytes.length);
    }
    if (flagged && ch.read >= Math.min(written, ch.data.length)) this._truncated(run, null);
  }

  // Page-side cap (the workers enforce the same limits; this is the second wall).
  _deliver(run, stream, text) {
    if (run.truncated || !text) return;
    let part = text;
    let cut = false;
    const room = run.maxBytes - run.bytes;
    const len = utf8Length(part);
    if (len > room) {
      part = prefixWithinBytes(part, Math.max(0, room));
      cut = true;
    }
    let nl = 0;
    let idx = -1;
    while ((idx = part.indexOf('\n', idx + 1)) !== -1) {
      nl++;
      if (run.lines + nl >= run.maxLines) {
        if (idx + 1 < text.length) cut = true;
        part = part.slice(0, idx + 1);
        break;
      }
    }
    if (run.lines >= run.maxLines) { part = ''; cut = true; }
    run.bytes += utf8Length(part);
    run.lines += nl;
    if (part) this._emit(run, stream, part);
    if (cut) this._truncated(run);
  }

  _emit(run, stream, text) {
    run.lastChar = text[text.length - 1];
    try {
      run.onOutput(stream, text);
    } catch (e) {
      console.error('CodeRunner onOutput callback failed', e);
    }
  }

  _truncated(run) {
    if (run.truncated) return;
    run.truncated = true;
    this._notice(run, run.lines >= run.maxLines
      ? `[output truncated: more than ${run.maxLines} lines]`
      : `[output truncated: more than ${run.maxBytes} bytes]`);
  }

  _notice(run, text) {
    const prefix = run.lastChar === '\n' ? '' : '\n';
    this._emit(run, 'stderr', `${prefix}${text}\n`);
  }
}

export default CodeRunner;
