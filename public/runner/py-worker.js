// pairpad: Python runner (a module Worker running Pyodide; one long-lived worker, reused).
//
// Protocol (the page side is public/js/runner.js):
//   page -> worker  {type:'init', interrupt: SharedArrayBuffer(8) | null}   (first message)
//                   {type:'run', id, code, stdin, maxBytes, maxLines, timeLimitMs, out}
//                   `out` is a SharedArrayBuffer output channel (same layout as the JS
//                   worker's) or null; without one output is posted as {type:'out', id, chunks}.
//   worker -> page  {type:'status', state:'loading'|'ready'|'error', detail}
//                   {type:'started', id}
//                   {type:'wake', id}   (output was written to the channel; at most every 16 ms)
//                   {type:'done', id, status:'ok'|'error'|'interrupted'|'timeout', error,
//                    truncated, durationMs, fatal}   ('timeout': the worker's own deadline,
//                    without SharedArrayBuffer; fatal: Pyodide broke, restart the worker)
// Interrupts: the page writes a reason (1 = time limit, 2 = stop) to interrupt[1] and then
// SIGINT (2) to interrupt[0]; Pyodide raises KeyboardInterrupt in the running code. Without a
// SharedArrayBuffer the worker enforces the time limit itself (same hook, a local deadline).
//
// Sandbox: once Pyodide is loaded, network, storage, messaging and nested-worker APIs are
// deleted from the global object and its prototype chain (so Python's `js` module cannot
// reach them either), pyodide.http / micropip imports are refused, and the CSP the server
// sends with this file limits fetch/import to the Pyodide directory and forbids eval.
'use strict';

const PYODIDE_VERSION = '314.0.7';
const INDEX_URL = new URL(`../vendor/pyodide-${PYODIDE_VERSION}/`, import.meta.url).href;
// Uncompressed sizes of the big files (for the progress percentage when the server sends
// them compressed, so Content-Length is not the number of bytes the body stream yields).
const KNOWN_SIZES = { 'pyodide.asm.wasm': 9598218, 'python_stdlib.zip': 2545637 };

const G = self;
const post = G.postMessage.bind(G);
const listen = G.addEventListener.bind(G);
const realSetTimeout = G.setTimeout.bind(G);
const realClearTimeout = G.clearTimeout.bind(G);
const realFetch = G.fetch.bind(G);
const now = G.performance.now.bind(G.performance);
const hasOwn = Object.prototype.hasOwnProperty;

// ---------------------------------------------------------------------------------------
// Status / progress
// ---------------------------------------------------------------------------------------
let lastStatusAt = 0;
function status(state, detail, force) {
  const t = now();
  if (!force && state === 'loading' && t - lastStatusAt < 100) return;
  lastStatusAt = t;
  post({ type: 'status', state, detail });
}

const downloads = new Map(); // name -> {loaded, total, done}
function reportDownload() {
  let loaded = 0;
  let total = 0;
  let allDone = true;
  for (const name of Object.keys(KNOWN_SIZES)) {
    const d = downloads.get(name);
    if (!d || !d.done) allDone = false;
    loaded += d ? d.loaded : 0;
    total += d ? Math.max(d.total, d.loaded) : KNOWN_SIZES[name];
  }
  if (allDone) status('loading', 'Starting Python…', true);
  else status('loading', `Downloading Python… ${Math.min(99, Math.floor((loaded / total) * 100))}%`);
}

// While Pyodide loads, fetch() is wrapped so the bytes of each file can be counted (on a
// clone of the response: the original goes to Pyodide untouched, so streaming compilation
// and the browser's wasm code cache still apply).
// Pyodide swallows some load failures (a failed wasm fetch or compile only logs a warning and
// then waits forever), so failures seen here end the load at once with a clear message.
let failLoad = () => {};
function countingFetch(input, init) {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  const name = String(url).split('?')[0].split('/').pop();
  return realFetch(input, init).then((resp) => {
    if (!resp.ok) failLoad(new Error(`could not download ${name} (HTTP ${resp.status})`));
    try {
      if (resp.ok && resp.body && hasOwn.call(KNOWN_SIZES, name)) {
        const encoded = resp.headers.get('content-encoding');
        const len = Number(resp.headers.get('content-length'));
        const total = encoded && encoded !== 'identity' ? KNOWN_SIZES[name] : (len > 0 ? len : KNOWN_SIZES[name]);
        const entry = { loaded: 0, total, done: false };
        downloads.set(name, entry);
        const reader = resp.clone().body.getReader();
        const pump = () => reader.read().then(({ done, value }) => {
          if (done) { entry.total = entry.loaded; entry.done = true; reportDownload(); return undefined; }
          entry.loaded += value.byteLength;
          reportDownload();
          return pump();
        });
        pump().catch(() => {});
      }
    } catch (_) { /* progress is best effort */ }
    return resp;
  }, (e) => {
    failLoad(new Error(`could not download ${name}: ${e && e.message ? e.message : e}`));
    throw e;
  });
}

// ---------------------------------------------------------------------------------------
// Lockdown (same list as the JS worker, minus what Pyodide itself needs at run time).
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
  'SyncManager', 'PaymentManager', 'MediaSourceHandle',
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
      } catch (_) { /* reported below */ }
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
// Python side of the runner: compiles the editor's code as "<editor>", runs it in a fresh
// __main__, prints tracebacks without the runner's own frames, resets shared state after.
// ---------------------------------------------------------------------------------------
const PY_DRIVER = String.raw`
import sys, io, os, ast, json, types, builtins, linecache, traceback

FILENAME = "<editor>"
CO_COROUTINE = 0x80
_stdout, _stderr, _stdin = sys.stdout, sys.stderr, sys.stdin
_builtins = dict(builtins.__dict__)
_path = list(sys.path)
_recursion = sys.getrecursionlimit()
_cwd = os.getcwd()
_main = sys.modules["__main__"]

class _Blocked:
    NAMES = ("pyodide.http", "micropip", "pyodide_js._module")
    def find_spec(self, name, path=None, target=None):
        if any(name == n or name.startswith(n + ".") for n in self.NAMES):
            raise ImportError(f"{name} is not available in pairpad's sandbox (no network access)", name=name)
        return None

sys.meta_path.insert(0, _Blocked())
for _m in list(sys.modules):
    if any(_m == n or _m.startswith(n + ".") for n in _Blocked.NAMES):
        del sys.modules[_m]

def _reset():
    builtins.__dict__.clear()
    builtins.__dict__.update(_builtins)
    sys.stdout, sys.stderr, sys.stdin = _stdout, _stderr, _stdin
    sys.path[:] = _path
    sys.setrecursionlimit(_recursion)
    sys.modules["__main__"] = _main
    try:
        os.chdir(_cwd)
    except OSError:
        pass
    for s in (sys.stdout, sys.stderr):
        try:
            s.reconfigure(line_buffering=True)
        except Exception:
            pass

def _flush():
    for s in (sys.stdout, sys.stderr, _stdout, _stderr):
        try:
            s.flush()
        except BaseException:
            pass

def _user_tb(tb):
    while tb is not None and tb.tb_frame.f_code.co_filename != FILENAME:
        tb = tb.tb_next
    return tb

def _line_of(e):
    if isinstance(e, SyntaxError) and e.filename == FILENAME:
        return e.lineno
    line = None
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line

def _format(e):
    return "".join(traceback.format_exception(type(e), e, _user_tb(e.__traceback__)))

def _result(status, e=None, message=None):
    _flush()
    err = None
    if e is not None:
        err = {"type": type(e).__name__, "message": message if message is not None else str(e), "line": _line_of(e)}
    return json.dumps({"status": status, "error": err})

def _fail(e):
    _flush()
    if isinstance(e, KeyboardInterrupt):
        _flush()
        return json.dumps({"status": "interrupted", "traceback": _format(e),
                           "error": {"type": "KeyboardInterrupt", "message": str(e), "line": _line_of(e)}})
    if isinstance(e, SystemExit):
        code = e.code
        if code is None or code == 0:
            return _result("ok")
        if isinstance(code, int):
            return _result("error", e, f"exit code {code}")
        try:
            print(code, file=sys.stderr)
        except BaseException:
            pass
        return _result("error", e, str(code))
    try:
        sys.stderr.write(_format(e))
    except BaseException:
        _stderr.write(_format(e))
    return _result("error", e)

async def _run_async(coro):
    try:
        try:
            await coro
        except BaseException as e:
            return _fail(e)
        return _result("ok")
    finally:
        _reset()

def run(code, stdin_text):
    _reset()
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin_text.encode("utf-8")), encoding="utf-8")
    linecache.cache[FILENAME] = (len(code), None, code.splitlines(True), FILENAME)
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    asynchronous = False
    try:
        try:
            co = compile(code, FILENAME, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        except BaseException as e:
            return _fail(e)
        try:
            if co.co_flags & CO_COROUTINE:
                asynchronous = True
                return _run_async(eval(co, main.__dict__))
            exec(co, main.__dict__)
        except BaseException as e:
            return _fail(e)
        return _result("ok")
    finally:
        if not asynchronous:
            _reset()
`;

// ---------------------------------------------------------------------------------------
// Output (same SharedArrayBuffer layout as the JS worker; bytes arrive as UTF-8 already).
// ---------------------------------------------------------------------------------------
function makeOutput(id, sab, maxBytes, maxLines) {
  const st = { bytes: 0, lines: 0, truncated: false, stream: 0 };
  const hdr = sab ? new Int32Array(sab, 0, 4) : null;
  const data = sab ? new Uint8Array(sab, 16) : null;
  let pos = 0;
  let pending = [];
  let lastPost = 0;
  let lastWake = -Infinity;
  let flushTimer = 0;
  const decoders = { 1: new TextDecoder(), 2: new TextDecoder() };

  function flush() {
    if (flushTimer) { realClearTimeout(flushTimer); flushTimer = 0; }
    if (pending.length === 0) return;
    const chunks = pending;
    pending = [];
    lastPost = now();
    post({ type: 'out', id, chunks });
  }
  function flushSoon() {
    if (now() - lastPost >= 16) flush();
    else if (!flushTimer) flushTimer = realSetTimeout(flush, 16);
  }
  function markTruncated() {
    st.truncated = true;
    if (hdr) Atomics.store(hdr, 1, 1);
  }
  function write(stream, bytes) {
    if (st.truncated || bytes.length === 0) return;
    let end = bytes.length;
    let cut = false;
    if (st.bytes + end > maxBytes) {
      end = Math.max(0, maxBytes - st.bytes);
      while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
      cut = true;
    }
    let nl = 0;
    if (st.lines >= maxLines) { end = 0; cut = true; }
    for (let i = 0; i < end; i++) {
      if (bytes[i] === 10 && st.lines + ++nl >= maxLines) {
        if (bytes.length > i + 1) cut = true;
        end = i + 1;
        break;
      }
    }
    st.bytes += end;
    st.lines += nl;
    const part = bytes.subarray(0, end);
    if (part.length) {
      if (hdr) {
        const need = part.length + (st.stream === stream ? 0 : 1);
        if (pos + need > data.length) { markTruncated(); return; }
        if (st.stream !== stream) { data[pos++] = stream === 1 ? 0xfe : 0xff; st.stream = stream; }
        data.set(part, pos);
        // 0xFE/0xFF are stream markers; invalid UTF-8 from bytes writes must not look like one.
        for (let i = pos, e = pos + part.length; i < e; i++) if (data[i] >= 0xfe) data[i] = 0x3f;
        pos += part.length;
        Atomics.store(hdr, 0, pos);
        // Nudge the page (at most every 16 ms) so output shows without waiting for its poll.
        const t = now();
        if (t - lastWake >= 16) { lastWake = t; post({ type: 'wake', id }); }
      } else {
        const s = decoders[stream].decode(part, { stream: true });
        const n = pending.length;
        if (n && pending[n - 2] === stream) pending[n - 1] += s;
        else pending.push(stream, s);
        flushSoon();
      }
    }
    if (cut) markTruncated();
  }
  function writeText(stream, text) { write(stream, new TextEncoder().encode(text)); }
  return { write, writeText, flush, state: st };
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------
let pyodide = null;
let runFn = null;
let interrupt = null; // Int32Array over the page's SharedArrayBuffer: [0] signal, [1] reason
let interruptBuffer = null; // what Pyodide polls: `interrupt`, or the deadline hook below
let stdout = null; // the stream handlers given to Pyodide
let stderr = null;
let current = null; // the output of the run in progress
let deadline = 0; // fallback time limit (no SharedArrayBuffer)
let fallbackInterrupted = false;
let initMsg = null;
let resolveInit;
const initReceived = new Promise((r) => { resolveInit = r; });

async function load() {
  status('loading', 'Starting Python…', true);
  await initReceived;
  const { loadPyodide } = await import(`${INDEX_URL}pyodide.mjs`);
  const WA = G.WebAssembly;
  const realInstantiateStreaming = WA.instantiateStreaming;
  const realInstantiate = WA.instantiate;
  const failed = new Promise((_, reject) => { failLoad = reject; });
  const watch = (p) => {
    p.catch((e) => failLoad(new Error(`could not compile Python's WebAssembly: ${e && e.message ? e.message : e}`)));
    return p;
  };
  G.fetch = countingFetch;
  WA.instantiateStreaming = function instantiateStreaming(...args) { return watch(realInstantiateStreaming.apply(WA, args)); };
  WA.instantiate = function instantiate(...args) { return watch(realInstantiate.apply(WA, args)); };
  let py;
  try {
    py = await Promise.race([failed, loadPyodide({
      indexURL: INDEX_URL,
      env: { HOME: '/home/pyodide', NO_COLOR: '1', PYTHON_COLORS: '0' },
      stdout: () => {},
      stderr: () => {},
    })]);
  } finally {
    G.fetch = realFetch;
    WA.instantiateStreaming = realInstantiateStreaming;
    WA.instantiate = realInstantiate;
    failLoad = () => {};
  }
  status('loading', 'Starting Python…', true);
  const writer = (stream) => ({
    write(buf) {
      if (current) current.write(stream, buf);
      return buf.length;
    },
    isatty: false,
  });
  stdout = writer(1);
  stderr = writer(2);
  py.setStdin({ stdin: () => null });
  if (initMsg && initMsg.interrupt instanceof SharedArrayBuffer) {
    interrupt = new Int32Array(initMsg.interrupt);
    interruptBuffer = interrupt;
  } else {
    // No shared memory: the interrupt hook itself checks a local deadline.
    interruptBuffer = {
      get 0() {
        if (deadline && now() > deadline) { fallbackInterrupted = true; deadline = 0; return 2; }
        return 0;
      },
      set 0(_) { /* cleared by Pyodide after reading */ },
    };
  }
  py.setInterruptBuffer(interruptBuffer);
  const ns = py.globals.get('dict')();
  py.runPython(PY_DRIVER, { globals: ns, filename: '<pairpad-runner>' });
  runFn = ns.get('run');
  ns.destroy();
  const left = lockdown();
  if (left.length) throw new Error(`sandbox: could not remove ${left.join(', ')}`);
  pyodide = py;
  status('ready', 'Python ready', true);
}

const loaded = load().catch((e) => {
  status('error', `Python failed to load: ${e && e.message ? e.message : e}`, true);
  throw e;
});
loaded.catch(() => {});

// ---------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------
let queue = Promise.resolve();

async function run(msg) {
  const id = msg.id;
  try {
    await loaded;
  } catch (e) {
    post({ type: 'done', id, status: 'error', truncated: false, durationMs: 0, fatal: true,
      error: { type: 'PythonLoadError', message: String(e && e.message ? e.message : e), line: null } });
    return;
  }
  const maxBytes = Number.isFinite(msg.maxBytes) && msg.maxBytes > 0 ? msg.maxBytes : 1 << 20;
  const maxLines = Number.isFinite(msg.maxLines) && msg.maxLines > 0 ? msg.maxLines : 10000;
  const out = makeOutput(id, msg.out instanceof SharedArrayBuffer ? msg.out : null, maxBytes, maxLines);
  current = out;
  if (interrupt) { Atomics.store(interrupt, 0, 0); Atomics.store(interrupt, 1, 0); }
  // Re-armed every run, in case the previous program changed them through pyodide_js.
  pyodide.setInterruptBuffer(interruptBuffer);
  pyodide.setStdout(stdout);
  pyodide.setStderr(stderr);
  fallbackInterrupted = false;
  deadline = !interrupt && msg.timeLimitMs > 0 ? now() + msg.timeLimitMs : 0;
  post({ type: 'started', id });
  const t0 = now();
  let res;
  let fatal = false;
  try {
    let r = runFn(String(msg.code), typeof msg.stdin === 'string' ? msg.stdin : '');
    if (r && typeof r === 'object' && typeof r.then === 'function') {
      const awaitable = r;
      r = await awaitable;
      if (typeof awaitable.destroy === 'function') awaitable.destroy();
    }
    res = JSON.parse(String(r));
  } catch (e) {
    if (e && e.type === 'KeyboardInterrupt') {
      res = { status: 'interrupted', traceback: '', error: { type: 'KeyboardInterrupt', message: '', line: null } };
    } else {
      // Not a Python exception of the user's program: Pyodide itself failed (e.g. a fatal
      // error after a JS stack overflow). The page restarts the worker.
      fatal = true;
      const message = String(e && e.message ? e.message : e);
      out.writeText(2, `Python runtime error: ${message}\n`);
      res = { status: 'error', error: { type: 'InternalError', message, line: null } };
    }
  }
  const durationMs = Math.round((now() - t0) * 10) / 10;
  deadline = 0;
  let st = res.status;
  if (st === 'interrupted') {
    const reason = interrupt ? Atomics.load(interrupt, 1) : (fallbackInterrupted ? 1 : 0);
    if (!reason) {
      // A KeyboardInterrupt the program raised itself: an ordinary error.
      if (res.traceback) out.writeText(2, res.traceback);
      st = 'error';
    } else if (!interrupt) {
      st = 'timeout';
    }
  }
  out.flush();
  current = null;
  post({ type: 'done', id, status: st, error: res.error || null, truncated: out.state.truncated, durationMs, fatal });
}

listen('message', (ev) => {
  const msg = ev.data;
  if (!msg || typeof msg !== 'object') return;
  if (msg.type === 'init' && !initMsg) {
    initMsg = msg;
    resolveInit();
  } else if (msg.type === 'run') {
    queue = queue.then(() => run(msg));
  }
});
