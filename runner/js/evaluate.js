// pairpad: JavaScript runner, the part that must stay JavaScript (one fresh worker per run).
//
// Concatenated by the bundle script into one classic script, inside its strict-mode IIFE:
//   (() => { "use strict"; <wasm-bindgen glue>; <libraries>; <this file>; <tail> })();
// so no import/export, and nothing is assigned to globals except what installGlobals gives
// the user's program. The libraries define `nodeInspect` (module.exports of npm
// node-inspect-extracted) before this file runs.
//
// The Rust side (runner/worker: wasm, through gloo-worker) owns the messages and the lockdown:
// it receives the run, owns the output writer (byte/line caps, SharedArrayBuffer channel or
// batched messages, 'wake' throttle) and posts 'done' with the truncated flag and the
// duration; the tail has it lock the worker down (glue.lockdown) after this file's top level
// has captured what the runner needs, before any user code. This file owns what must run as
// JavaScript around the user's code, and exposes two names:
//   captured    {setTimeout, now, post}, taken before user code: Rust's flush timer, clock and
//               way to post to the page (the lockdown then removes postMessage, so a program
//               can neither post nor, by assigning postMessage, intercept the runner's messages).
//   evaluator   run(code, stdin, write, finish): evaluates `code` once per worker (a second
//               call is ignored). write(stream, text): 1 = stdout, 2 = stderr; the caps are
//               applied by Rust. finish(status, errorType, errorMessage, errorLine, startedAt)
//               is called exactly once: ('ok', null, null, null, t) or ('error', type, message,
//               line|null, t), where t is now() when the program started (null if it never
//               did: the run's duration counts from there); write is never called after it.
// The run ends when the user's top-level code has settled and no timer it started is pending
// (checked one macrotask later, so promise chains run first); an uncaught error or an
// unhandled rejection ends it with status 'error' (like Node). Synchronous infinite loops are
// the page's job: it terminates this worker at the time limit.
//
// Sandbox: before any user code runs, the lockdown deletes network, storage, messaging and
// nested-worker APIs from the global object and its prototype chain (and from navigator);
// the CSP the server sends with the bundle is the second wall. A program can still break
// things inside its own worker (e.g. patch built-ins the runner calls), which harms only its
// own run: the worker is thrown away after it, and the page checks and bounds everything the
// worker says.

const G = self;
// --- capture what the runner itself needs before user code can touch anything ------------
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
const objToString = Object.prototype.toString;
const hasOwn = Object.prototype.hasOwnProperty;
const SOURCE_URL = 'editor.js';

// Handed to Rust by the tail: its flush timer, its clock, and its one way to post to the page.
const captured = { setTimeout: realSetTimeout, now, post: G.postMessage.bind(G) };

// ---------------------------------------------------------------------------------------
// Values printed as Node prints them, by Node's own util.inspect and util.format (npm
// node-inspect-extracted, bundled before this file as `nodeInspect`); a worker without it
// refuses runs.
// ---------------------------------------------------------------------------------------
const formatterMissing = !(
  typeof nodeInspect === 'object' && nodeInspect !== null
  && typeof nodeInspect.inspect === 'function'
  && typeof nodeInspect.formatWithOptions === 'function'
  && typeof nodeInspect.getStringWidth === 'function'
);

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
  return withUserStacks(args, () => apply(nodeInspect.formatWithOptions, nodeInspect, [{}].concat(args)));
}

// One value as util.inspect shows it.
function inspect(value, options) {
  return withUserStacks([value], () => nodeInspect.inspect(value, options));
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
// The run.
// ---------------------------------------------------------------------------------------
let running = null; // { write, report, timers, finished, mainSettled }

function finish(status, error) {
  const r = running;
  if (!r || r.finished) return;
  r.finished = true;
  const startedAt = r.startedAt ?? null;
  if (error) r.report(status, error.type, error.message, error.line, startedAt);
  else r.report(status, null, null, null, startedAt);
}

function uncaught(err, inPromise) {
  const r = running;
  if (!r || r.finished) return;
  const d = describeError(err);
  r.write(2, `Uncaught ${inPromise ? '(in promise) ' : ''}${d.text}\n`);
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
  const write = run.write;
  let groupIndent = '';
  const counts = new Map();
  const timersByLabel = new Map();
  const emit = (stream, args) => {
    let text = formatArgs(args);
    if (groupIndent) text = text.split('\n').map((l) => groupIndent + l).join('\n');
    write(stream, text + '\n');
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
    if (message !== undefined) write(1, String(message));
    return readline();
  };
  const text = (v) => (typeof v === 'string' ? v : ArrayBuffer.isView(v) ? new TextDecoder().decode(v) : String(v));
  G.process = {
    stdout: { write: (v) => { write(1, text(v)); return true; }, isTTY: false },
    stderr: { write: (v) => { write(2, text(v)); return true; }, isTTY: false },
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
  const width = (s) => nodeInspect.getStringWidth(s);
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

async function startRun(code, stdinText, write, report) {
  await offsetReady;
  const r = {
    // Output after the run has finished (e.g. from a listener the program added) is dropped.
    write: (stream, text) => { if (!r.finished) write(stream, text); },
    report, timers: new Map(), finished: false, mainSettled: false,
  };
  running = r;
  const source = `${code}\n//# sourceURL=${SOURCE_URL}`;
  let main;
  try {
    main = new AsyncFunction(source);
  } catch (e) {
    const pos = e instanceof SyntaxError ? await syntaxErrorPosition(source) : { line: null, col: null };
    const d = describeError(e);
    d.line = pos.line;
    const where = pos.line !== null ? `\n    at editor.js:${pos.line}:${pos.col}` : '';
    r.write(2, `Uncaught ${d.type}: ${d.message}${where}\n`);
    finish('error', d);
    return;
  }
  installGlobals(r, stdinText);
  r.startedAt = now();
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

let used = false;
const evaluator = {
  run(code, stdin, write, finish) {
    if (used) return;
    used = true; // one run per worker: the page starts a fresh worker for the next one
    let reported = false;
    const report = (status, type, message, line, startedAt = null) => {
      if (reported) return;
      reported = true;
      finish(status, type, message, line, startedAt);
    };
    if (formatterMissing) {
      report('error', 'SandboxError', 'the output formatter (node-inspect-extracted) is missing from the runner bundle', null);
      return;
    }
    startRun(String(code), typeof stdin === 'string' ? stdin : '', write, report).catch((e) => {
      if (running) running.finished = true;
      report('error', 'InternalError', String(e && e.message), null);
    });
  },
};
