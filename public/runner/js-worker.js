// pairpad: JavaScript runner (a classic dedicated Worker; one fresh worker per run).
//
// Protocol (the page side is src/interop/runner/, typed in its protocol.rs):
//   page -> worker  {type:'run', id, code, stdin, maxBytes, maxLines, out}
//                   `out` is a SharedArrayBuffer output channel (see writeChannel) or null;
//                   without one, output is posted as {type:'out', id, chunks:[stream, text, ...]}
//                   coalesced per ~16 ms.
//   worker -> page  {type:'wake', id}   (output was written to the channel; at most every 16 ms)
//                   {type:'done', id, status:'ok'|'error', error:{type,message,line}|null,
//                    truncated, durationMs}
// The run ends when the user's top-level code has settled and no timer it started is pending
// (checked one macrotask later, so promise chains run first); an uncaught error or an
// unhandled rejection ends it with status 'error' (like Node). Synchronous infinite loops are
// the page's job: it terminates this worker at the time limit.
//
// Sandbox: before any user code runs, network, storage, messaging and nested-worker APIs are
// deleted from the global object and its prototype chain (and from navigator); the CSP the
// server sends with this file ("default-src 'none'; script-src <host>/vendor/node-inspect-
// extracted-<version>/inspect.js 'unsafe-eval'") is the second wall: no fetch/connect of any
// kind, no script but Node's inspect (loaded before user code runs; importScripts is then
// removed).
'use strict';

(() => {
  const G = self;
  // --- capture what the runner itself needs before user code can touch anything ----------
  const post = G.postMessage.bind(G);
  const listen = G.addEventListener.bind(G);
  const unlisten = G.removeEventListener.bind(G);
  const realSetTimeout = G.setTimeout.bind(G);
  const realClearTimeout = G.clearTimeout.bind(G);
  const realSetInterval = G.setInterval.bind(G);
  const realClearInterval = G.clearInterval.bind(G);
  const realQueueMicrotask = G.queueMicrotask.bind(G);
  const now = G.performance.now.bind(G.performance);
  const AsyncFunction = (async function () {}).constructor;
  const promiseThen = Promise.prototype.then;
  const apply = Reflect.apply;
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const objToString = Object.prototype.toString;
  const hasOwn = Object.prototype.hasOwnProperty;
  const SOURCE_URL = 'editor.js';

  // ---------------------------------------------------------------------------------------
  // Lockdown: remove capabilities user code must not have.
  // ---------------------------------------------------------------------------------------
  const BLOCKED_GLOBALS = [
    'fetch', 'XMLHttpRequest', 'XMLHttpRequestUpload', 'XMLHttpRequestEventTarget',
    'WebSocket', 'WebSocketStream', 'WebSocketError', 'EventSource', 'WebTransport',
    'importScripts', 'Worker', 'SharedWorker', 'ServiceWorker', 'ServiceWorkerRegistration',
    'ServiceWorkerContainer', 'indexedDB', 'caches', 'Cache', 'CacheStorage', 'BroadcastChannel',
    'postMessage', 'close', 'Notification', 'requestAnimationFrame', 'cancelAnimationFrame',
    'webkitRequestFileSystem', 'webkitRequestFileSystemSync', 'webkitResolveLocalFileSystemURL',
    'webkitResolveLocalFileSystemSyncURL', 'StorageManager', 'StorageBucket',
    'StorageBucketManager', 'LockManager', 'Lock', 'CookieStore', 'cookieStore', 'scheduler',
    'Scheduler', 'TaskController', 'TaskSignal', 'RTCPeerConnection', 'RTCDataChannel',
    'RTCRtpScriptTransformer', 'PushManager', 'PushSubscription', 'BackgroundFetchManager',
    'SyncManager', 'PaymentManager', 'MediaSourceHandle', 'WebTransportError',
  ];
  const BLOCKED_PREFIXES = ['IDB', 'XMLHttpRequest', 'WebTransport', 'WebSocket', 'FileSystem', 'RTC'];
  const BLOCKED_NAVIGATOR = [
    'storage', 'locks', 'usb', 'hid', 'serial', 'bluetooth', 'storageBuckets', 'serviceWorker',
    'sendBeacon', 'permissions', 'mediaDevices',
  ];

  function chainOf(obj) {
    const chain = [];
    for (let o = obj; o !== null && o !== undefined; o = Object.getPrototypeOf(o)) chain.push(o);
    return chain;
  }
  function removeEverywhere(objs, name) {
    for (const o of objs) {
      if (!hasOwn.call(o, name)) continue;
      if (!Reflect.deleteProperty(o, name)) {
        try {
          Object.defineProperty(o, name, { value: undefined, writable: false, configurable: false });
        } catch (_) { /* reported by the check below */ }
      }
    }
  }
  function lockdown() {
    const chain = chainOf(G);
    const names = new Set(BLOCKED_GLOBALS);
    for (const o of chain) {
      for (const n of Object.getOwnPropertyNames(o)) {
        if (BLOCKED_PREFIXES.some((p) => n.startsWith(p))) names.add(n);
      }
    }
    for (const n of names) removeEverywhere(chain, n);
    const nav = G.navigator;
    if (nav) {
      const navChain = chainOf(nav);
      for (const n of BLOCKED_NAVIGATOR) removeEverywhere(navChain, n);
    }
    const left = [...names].filter((n) => G[n] !== undefined);
    if (nav) for (const n of BLOCKED_NAVIGATOR) if (nav[n] !== undefined) left.push('navigator.' + n);
    return left;
  }

  // ---------------------------------------------------------------------------------------
  // Values printed as Node prints them, by Node's own util.inspect and util.format (npm
  // node-inspect-extracted, served by pairpad; this worker's CSP allows that one file). It is
  // loaded before the lockdown removes importScripts; a worker without it refuses runs.
  // ---------------------------------------------------------------------------------------
  const INSPECT_SCRIPT = '/vendor/node-inspect-extracted-3.3.3/inspect.js';
  let util = null;
  try {
    G.importScripts(INSPECT_SCRIPT);
    util = G.util;
  } catch (_) { /* reported when a run is asked for */ }
  delete G.util;

  function constructorName(obj) {
    let o = obj;
    for (let i = 0; o !== null && i < 1000; i++) {
      const d = Object.getOwnPropertyDescriptor(o, 'constructor');
      if (d && typeof d.value === 'function' && typeof d.value.name === 'string' && d.value.name !== '') {
        return d.value.name;
      }
      o = Object.getPrototypeOf(o);
    }
    return null;
  }

  function isError(v) {
    return v instanceof Error || objToString.call(v) === '[object Error]';
  }

  // An error's name and message, then the user's frames, as V8 writes a stack.
  function errorToString(err) {
    let name = 'Error';
    let message = '';
    try { name = String(err.name); } catch (_) { /* ignore */ }
    try { message = String(err.message); } catch (_) { /* ignore */ }
    const head = message ? `${name}: ${message}` : name;
    const frames = userFrames(err);
    return frames.length ? head + '\n' + frames.map((f) => '    at ' + f.text).join('\n') : head;
  }

  // Errors print with their stacks cut to the user's frames in editor lines, as uncaught ones
  // do: while `format` runs, each error among `values` (and its causes) has that as its own
  // `stack`; afterwards the original is put back.
  function withUserStacks(values, format) {
    const swapped = [];
    const swap = (err, depth) => {
      if (depth > 16 || err === null || typeof err !== 'object' || !isError(err)) return;
      if (swapped.some((s) => s.err === err)) return;
      try {
        const own = Object.getOwnPropertyDescriptor(err, 'stack');
        if (own && !own.configurable) return;
        const stack = errorToString(err);
        Object.defineProperty(err, 'stack', { value: stack, configurable: true, writable: true });
        swapped.push({ err, own });
        swap(err.cause, depth + 1);
        if (Array.isArray(err.errors)) err.errors.forEach((e) => swap(e, depth + 1));
      } catch (_) { /* a proxy or a getter that throws: printed as it is */ }
    };
    values.forEach((v) => swap(v, 0));
    try {
      return format();
    } catch (e) {
      return `[value could not be inspected: ${e && e.message ? e.message : e}]`;
    } finally {
      for (const { err, own } of swapped.reverse()) {
        try {
          if (own) Object.defineProperty(err, 'stack', own);
          else delete err.stack;
        } catch (_) { /* left as printed */ }
      }
    }
  }

  // console.log's formatting: util.format (%s %d %i %f %j %o %O %c %%).
  function formatArgs(args) {
    return withUserStacks(args, () => apply(util.formatWithOptions, util, [{}].concat(args)));
  }

  // One value as util.inspect shows it.
  function inspect(value, options) {
    return withUserStacks([value], () => util.inspect(value, options));
  }

  // ---------------------------------------------------------------------------------------
  // Stack traces: keep only frames in the user's code, renumbered to editor lines.
  // ---------------------------------------------------------------------------------------
  let lineOffset = 2; // lines the AsyncFunction constructor adds above the body; measured below
  const FRAME_RE = /editor\.js:(\d+):(\d+)/;

  function userFrames(err) {
    let stack = '';
    try { stack = String(err.stack || ''); } catch (_) { return []; }
    const lines = stack.split('\n');
    const frames = [];
    let lastUser = -1;
    for (const raw of lines) {
      const l = raw.trim();
      if (!l.startsWith('at ') && !/@/.test(l)) continue;
      const m = FRAME_RE.exec(l);
      if (m) {
        const line = Number(m[1]) - lineOffset;
        const col = Number(m[2]);
        let fn = l.replace(/^at\s+/, '').replace(/\s*\(.*$/, '').replace(/@.*$/, '');
        const where = `editor.js:${line}:${col}`;
        let text;
        if (fn.startsWith('editor.js') || fn === 'eval' || fn === 'anonymous' || fn === '') text = where;
        else if (fn === 'async eval' || fn === 'async anonymous' || fn.startsWith('async editor.js')) text = `async ${where}`;
        else text = `${fn} (${where})`;
        frames.push({ line, col, text });
        lastUser = frames.length;
      } else if (/\(<anonymous>\)|\(native\)|\[native code\]/.test(l)) {
        frames.push({ line: null, col: null, text: l.replace(/^at\s+/, '') });
      }
    }
    return frames.slice(0, Math.max(lastUser, 0)).filter((f, i, all) => f.line !== null || i < lastUser);
  }

  function describeError(err) {
    if (err !== null && typeof err === 'object' && (isError(err) || 'stack' in err)) {
      let type = 'Error';
      let message = '';
      try { type = String(err.name || constructorName(err) || 'Error'); } catch (_) { /* ignore */ }
      try { message = String(err.message); } catch (_) { /* ignore */ }
      const frames = userFrames(err);
      const first = frames.find((f) => f.line !== null);
      return { type, message, line: first ? first.line : null, text: errorToString(err) };
    }
    const text = inspect(err);
    return { type: 'Uncaught', message: text, line: null, text };
  }

  async function measureLineOffset() {
    try {
      await new AsyncFunction(`throw new Error('probe')\n//# sourceURL=${SOURCE_URL}`)();
    } catch (e) {
      const m = FRAME_RE.exec(String(e && e.stack));
      if (m) lineOffset = Number(m[1]) - 1;
    }
  }
  const offsetReady = measureLineOffset();

  // Syntax errors thrown by the Function constructor carry no position; an *uncaught*
  // SyntaxError does, in the worker's ErrorEvent. Compile once more outside any try block.
  let probing = false;
  function syntaxErrorPosition(source) {
    probing = true;
    return new Promise((resolve) => {
      let settled = false;
      const onError = (ev) => {
        if (settled) return;
        settled = true;
        probing = false;
        ev.preventDefault();
        unlisten('error', onError);
        resolve({ line: ev.lineno ? ev.lineno - lineOffset : null, col: ev.colno || null });
      };
      listen('error', onError);
      realSetTimeout(() => { new AsyncFunction(source); }, 0);
      realSetTimeout(() => {
        if (!settled) { settled = true; probing = false; unlisten('error', onError); resolve({ line: null, col: null }); }
      }, 200);
    });
  }

  // ---------------------------------------------------------------------------------------
  // Output: a SharedArrayBuffer channel (preferred) or postMessage batches.
  // Channel layout: Int32 header [0] = bytes committed, [1] = 1 when the worker truncated;
  // data from byte 16: UTF-8 text; a 0xFE byte switches to stdout, 0xFF to stderr (neither
  // byte occurs in UTF-8). The page polls it, so output shows even while code is busy.
  // ---------------------------------------------------------------------------------------
  function makeOutput(id, sab, maxBytes, maxLines) {
    const st = { bytes: 0, lines: 0, truncated: false, stream: 0 };
    let hdr = null;
    let data = null;
    let pos = 0;
    if (sab) {
      hdr = new Int32Array(sab, 0, 4);
      data = new Uint8Array(sab, 16);
    }
    let pending = [];
    let lastPost = 0;
    let lastWake = -Infinity;
    let flushTimer = 0;

    function flush() {
      if (flushTimer) { realClearTimeout(flushTimer); flushTimer = 0; }
      if (pending.length === 0) return;
      const chunks = pending;
      pending = [];
      lastPost = now();
      post({ type: 'out', id, chunks });
    }

    // Applies the caps to a UTF-8 chunk; returns the part that may be written.
    function capped(bytes) {
      if (st.truncated) return null;
      let end = bytes.length;
      let cut = false;
      if (st.bytes + end > maxBytes) {
        end = Math.max(0, maxBytes - st.bytes);
        while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
        cut = true;
      }
      let nl = 0;
      for (let i = 0; i < end; i++) {
        if (bytes[i] === 10) {
          nl++;
          if (st.lines + nl >= maxLines) {
            if (bytes.length > i + 1) cut = true;
            end = i + 1;
            break;
          }
        }
      }
      if (st.lines >= maxLines && end > 0) { end = 0; cut = true; }
      st.bytes += end;
      st.lines += nl;
      if (cut) {
        st.truncated = true;
        if (hdr) Atomics.store(hdr, 1, 1);
      }
      return end === bytes.length ? bytes : bytes.subarray(0, end);
    }

    function write(stream, text) {
      if (st.truncated || text.length === 0) return;
      const bytes = capped(encoder.encode(text));
      if (!bytes || bytes.length === 0) { if (!hdr) flushSoon(); return; }
      if (hdr) {
        const need = bytes.length + (st.stream === stream ? 0 : 1);
        if (pos + need > data.length) { st.truncated = true; Atomics.store(hdr, 1, 1); return; }
        if (st.stream !== stream) { data[pos++] = stream === 1 ? 0xfe : 0xff; st.stream = stream; }
        data.set(bytes, pos);
        pos += bytes.length;
        Atomics.store(hdr, 0, pos);
        // Nudge the page (at most every 16 ms) so output shows without waiting for its poll.
        const t = now();
        if (t - lastWake >= 16) { lastWake = t; post({ type: 'wake', id }); }
      } else {
        const s = decoder.decode(bytes); // whole characters: the caps cut on boundaries
        const n = pending.length;
        if (n && pending[n - 2] === stream) pending[n - 1] += s;
        else pending.push(stream, s);
        flushSoon();
      }
    }

    function flushSoon() {
      if (now() - lastPost >= 16) flush();
      else if (!flushTimer) flushTimer = realSetTimeout(flush, 16);
    }

    return { write, flush, state: st };
  }

  // ---------------------------------------------------------------------------------------
  // The run.
  // ---------------------------------------------------------------------------------------
  let running = null; // { id, out, started, pending, finished, mainSettled }

  function finish(status, error) {
    const r = running;
    if (!r || r.finished) return;
    r.finished = true;
    r.out.flush();
    post({
      type: 'done', id: r.id, status,
      error: error ? { type: error.type, message: error.message, line: error.line } : null,
      truncated: r.out.state.truncated,
      durationMs: Math.round((now() - r.started) * 10) / 10,
    });
  }

  function uncaught(err, inPromise) {
    const r = running;
    if (!r || r.finished) return;
    const d = describeError(err);
    r.out.write(2, `Uncaught ${inPromise ? '(in promise) ' : ''}${d.text}\n`);
    finish('error', d);
  }

  function maybeFinish() {
    const r = running;
    if (!r || r.finished || !r.mainSettled || r.timers.size > 0) return;
    // Two task hops: promise jobs run first, and the browser's "unhandledrejection" task
    // (queued after the microtask checkpoint) gets its turn before we call the run done.
    const idle = () => running === r && !r.finished && r.mainSettled && r.timers.size === 0;
    realSetTimeout(() => {
      if (idle()) realSetTimeout(() => { if (idle()) finish('ok', null); }, 0);
    }, 0);
  }

  function installGlobals(run, stdinText) {
    const out = run.out;
    let groupIndent = '';
    const counts = new Map();
    const timersByLabel = new Map();
    const emit = (stream, args) => {
      let text = formatArgs(args);
      if (groupIndent) text = text.split('\n').map((l) => groupIndent + l).join('\n');
      out.write(stream, text + '\n');
    };
    const con = {
      log: (...a) => emit(1, a),
      info: (...a) => emit(1, a),
      debug: (...a) => emit(1, a),
      warn: (...a) => emit(2, a),
      error: (...a) => emit(2, a),
      trace: (...a) => {
        const frames = userFrames(new Error()).map((f) => '    at ' + f.text);
        emit(2, [['Trace' + (a.length ? ': ' + formatArgs(a) : ''), ...frames].join('\n')]);
      },
      dir: (v, options) => emit(1, [inspect(v, { customInspect: false, ...options })]),
      dirxml: (...a) => emit(1, a),
      assert: (cond, ...a) => {
        if (cond) return;
        a[0] = `Assertion failed${a.length === 0 ? '' : `: ${a[0]}`}`;
        emit(2, a);
      },
      count: (label = 'default') => {
        const n = (counts.get(String(label)) || 0) + 1;
        counts.set(String(label), n);
        emit(1, [`${label}: ${n}`]);
      },
      countReset: (label = 'default') => { counts.delete(String(label)); },
      time: (label = 'default') => { timersByLabel.set(String(label), now()); },
      timeLog: (label = 'default', ...a) => {
        const t = timersByLabel.get(String(label));
        if (t === undefined) emit(2, [`Warning: No such label '${label}' for console.timeLog()`]);
        else emit(1, [`${label}: ${(now() - t).toFixed(3)}ms`, ...a]);
      },
      timeEnd: (label = 'default') => {
        const t = timersByLabel.get(String(label));
        if (t === undefined) { emit(2, [`Warning: No such label '${label}' for console.timeEnd()`]); return; }
        timersByLabel.delete(String(label));
        emit(1, [`${label}: ${(now() - t).toFixed(3)}ms`]);
      },
      group: (...a) => { if (a.length) emit(1, a); groupIndent += '  '; },
      groupCollapsed: (...a) => { if (a.length) emit(1, a); groupIndent += '  '; },
      groupEnd: () => { groupIndent = groupIndent.slice(2); },
      table: (data, properties) => emit(1, [table(data, properties)]),
      clear: () => {},
    };
    G.console = con;

    // Timers are tracked so the run can end when nothing is left to do.
    const timers = run.timers;
    const call = (fn, args) => {
      try { fn(...args); } catch (e) { uncaught(e, false); }
    };
    G.setTimeout = function setTimeout(fn, ms, ...args) {
      if (typeof fn !== 'function') throw new TypeError('setTimeout: the callback must be a function');
      const id = realSetTimeout(() => {
        timers.delete(id);
        if (run.finished) return;
        call(fn, args);
        maybeFinish();
      }, ms);
      timers.set(id, 't');
      return id;
    };
    G.setInterval = function setInterval(fn, ms, ...args) {
      if (typeof fn !== 'function') throw new TypeError('setInterval: the callback must be a function');
      const id = realSetInterval(() => {
        if (run.finished) { realClearInterval(id); return; }
        call(fn, args);
      }, ms);
      timers.set(id, 'i');
      return id;
    };
    const clear = (id) => {
      const kind = timers.get(id);
      if (kind === undefined) return;
      timers.delete(id);
      if (kind === 'i') realClearInterval(id); else realClearTimeout(id);
      maybeFinish();
    };
    G.clearTimeout = function clearTimeout(id) { clear(id); };
    G.clearInterval = function clearInterval(id) { clear(id); };
    G.queueMicrotask = function queueMicrotask(fn) {
      if (typeof fn !== 'function') throw new TypeError('queueMicrotask: the callback must be a function');
      realQueueMicrotask(() => { if (!run.finished) call(fn, []); });
    };

    // stdin: readline()/prompt() return the next line of the run's input (null at its end);
    // process.stdout.write / process.stderr.write write without a newline.
    const lines = stdinText === '' ? [] : stdinText.replace(/\n$/, '').split('\n');
    let next = 0;
    const readline = function readline() {
      return next < lines.length ? lines[next++].replace(/\r$/, '') : null;
    };
    G.readline = readline;
    G.prompt = function prompt(message) {
      if (message !== undefined) out.write(1, String(message));
      return readline();
    };
    const text = (v) => (typeof v === 'string' ? v : ArrayBuffer.isView(v) ? new TextDecoder().decode(v) : String(v));
    G.process = {
      stdout: { write: (v) => { out.write(1, text(v)); return true; }, isTTY: false },
      stderr: { write: (v) => { out.write(2, text(v)); return true; }, isTTY: false },
      stdin: { read: () => { const rest = lines.slice(next).join('\n'); next = lines.length; return rest; } },
      argv: ['node', 'editor.js'],
      env: {},
      platform: 'browser',
      exit: () => { throw new Error('process.exit() is not supported here'); },
      nextTick: (fn, ...args) => G.queueMicrotask(() => fn(...args)),
    };
  }

  // console.table as Node's console does it (lib/internal/console/constructor.js and
  // cli_table.js): the same columns, cell formatting and alignment. Iterators are not
  // previewed (browsers have no way to): they print as objects.
  function table(data, properties) {
    if (data === null || typeof data !== 'object') return formatArgs([data]);
    const cell = (v) => {
      const depth = v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 2 ? -1 : 0;
      return inspect(v, { depth, maxArrayLength: 3, breakLength: Infinity });
    };
    const indices = (length) => Array.from({ length }, (_, i) => cell(i));
    if (data instanceof Map) {
      const keys = [];
      const values = [];
      for (const [k, v] of data) { keys.push(cell(k)); values.push(cell(v)); }
      return renderTable(['(iteration index)', 'Key', 'Values'], [indices(keys.length), keys, values]);
    }
    if (data instanceof Set) {
      const values = [...data].map(cell);
      return renderTable(['(iteration index)', 'Values'], [indices(values.length), values]);
    }
    const columns = new Map();
    let hasPrimitives = false;
    const primitives = [];
    const rowKeys = Object.keys(data);
    rowKeys.forEach((rowKey, i) => {
      const item = data[rowKey];
      const primitive = item === null || (typeof item !== 'function' && typeof item !== 'object');
      if (properties === undefined && primitive) {
        hasPrimitives = true;
        primitives[i] = cell(item);
        return;
      }
      for (const key of properties || Object.keys(item)) {
        if (!columns.has(key)) columns.set(key, []);
        columns.get(key)[i] = (primitive && properties) || !hasOwn.call(item, key) ? '' : cell(item[key]);
      }
    });
    const head = ['(index)', ...columns.keys()];
    const values = [rowKeys, ...columns.values()];
    if (hasPrimitives) { head.push('Values'); values.push(primitives); }
    return renderTable(head, values);
  }

  function renderTable(head, columns) {
    const width = (s) => util.getStringWidth(s);
    const widths = head.map(width);
    const longest = Math.max(...columns.map((c) => c.length));
    const rows = [];
    head.forEach((_, i) => {
      for (let j = 0; j < longest; j++) {
        rows[j] = rows[j] || [];
        const value = hasOwn.call(columns[i], j) ? columns[i][j] : '';
        rows[j][i] = value;
        widths[i] = Math.max(widths[i], width(value));
      }
    });
    const divider = widths.map((w) => '─'.repeat(w + 2));
    // Cells are left-aligned, as current Node releases print them (older ones centred them).
    const row = (cells) => '│ ' + cells.map((c, i) => c + ' '.repeat(widths[i] - width(c))).join(' │ ') + ' │';
    return [
      '┌' + divider.join('┬') + '┐', row(head), '├' + divider.join('┼') + '┤',
      ...rows.map(row), '└' + divider.join('┴') + '┘',
    ].join('\n');
  }

  async function run(msg) {
    await offsetReady;
    const id = msg.id;
    const maxBytes = Number.isFinite(msg.maxBytes) && msg.maxBytes > 0 ? msg.maxBytes : 1 << 20;
    const maxLines = Number.isFinite(msg.maxLines) && msg.maxLines > 0 ? msg.maxLines : 10000;
    const shared = typeof SharedArrayBuffer === 'function' && msg.out instanceof SharedArrayBuffer;
    const out = makeOutput(id, shared ? msg.out : null, maxBytes, maxLines);
    const r = { id, out, started: now(), timers: new Map(), finished: false, mainSettled: false };
    running = r;
    const code = String(msg.code);
    const source = `${code}\n//# sourceURL=${SOURCE_URL}`;
    let main;
    try {
      main = new AsyncFunction(source);
    } catch (e) {
      const pos = e instanceof SyntaxError ? await syntaxErrorPosition(source) : { line: null, col: null };
      const d = describeError(e);
      d.line = pos.line;
      const where = pos.line !== null ? `\n    at editor.js:${pos.line}:${pos.col}` : '';
      out.write(2, `Uncaught ${d.type}: ${d.message}${where}\n`);
      finish('error', d);
      return;
    }
    installGlobals(r, typeof msg.stdin === 'string' ? msg.stdin : '');
    r.started = now();
    let p;
    try {
      p = main.call(undefined);
    } catch (e) {
      uncaught(e, false);
      return;
    }
    // The program may have replaced Promise.prototype.then by now: use the original.
    apply(promiseThen, p, [() => { r.mainSettled = true; maybeFinish(); }, (e) => { r.mainSettled = true; uncaught(e, false); }]);
  }

  listen('unhandledrejection', (ev) => {
    ev.preventDefault();
    uncaught(ev.reason, true);
  });
  listen('error', (ev) => {
    // Errors thrown from callbacks we do not wrap (e.g. event listeners the code added).
    if (probing || !running || running.finished) return;
    ev.preventDefault();
    uncaught(ev.error !== undefined ? ev.error : new Error(ev.message), false);
  });

  const left = lockdown();
  let used = false;
  listen('message', (ev) => {
    const msg = ev.data;
    if (used || !msg || msg.type !== 'run') return;
    used = true; // one run per worker: the page starts a fresh worker for the next one
    if (left.length || !util) {
      const message = left.length ? `could not remove: ${left.join(', ')}`
        : `could not load the output formatter ${INSPECT_SCRIPT}`;
      post({ type: 'done', id: msg.id, status: 'error', truncated: false, durationMs: 0,
        error: { type: 'SandboxError', message, line: null } });
      return;
    }
    run(msg).catch((e) => {
      post({ type: 'done', id: msg.id, status: 'error', truncated: false, durationMs: 0,
        error: { type: 'InternalError', message: String(e && e.message), line: null } });
    });
  });
})();
