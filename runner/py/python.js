// pairpad: Python runner, the part that must stay JavaScript (one long-lived worker, reused
// until a run leaves something behind).
//
// Concatenated by scripts/runner-bundle.mjs into one script, inside its strict-mode IIFE:
//   (() => { "use strict"; <wasm-bindgen glue>; <this file>; <tail> })();
// so no import/export and nothing assigned to globals. The Rust side (runner/worker, the
// `glue` object; python.rs) owns the messages: the page's start and runs arrive through a
// gloo-worker bridge and reach `pythonRunner` (at the end of this file); loading progress,
// 'tainted', a run's output (held to the caps, written to the shared channel or batched)
// and its end leave through glue.python_status, python_tainted, python_write and
// python_finish. The lockdown is Rust's too (glue.lockdown). This file does what only
// JavaScript can:
//   pythonRunner.begin(tainted)  load Pyodide (restoring the memory snapshot pairpad serves
//       if it can), lock the worker down, guard it, report ready.
//   pythonRunner.run(id, code, stdin, timeLimitMs, tampered)  queues a run; one at a time,
//       in order. `tainted` and `tampered` are replies made in advance (see quit).
//   pythonRunner.attachInterrupt(buffer)  the page's interrupt buffer (comes before begin).
//
// Interrupts: the page writes a reason (1 = time limit, 2 = stop) to interrupt[1] and then
// SIGINT (2) to interrupt[0]; Pyodide raises KeyboardInterrupt in the running code. Without a
// SharedArrayBuffer the worker enforces the time limit itself (same hook, a local deadline).
//
// Isolation between runs: each run gets a fresh __main__ and the interpreter state the runner
// relies on put back; whatever a program hands to JavaScript to call later belongs to its run
// and does nothing after it; between runs any Python that still gets called is interrupted;
// and a run that leaves anything pending or changes what cannot be put back ends with
// restart, so the next run gets a fresh worker (see "Runs own what they schedule").
//
// Sandbox: once Pyodide is loaded, the lockdown deletes network, storage, messaging and
// nested-worker APIs from the global object and its prototype chain (so Python's `js` module
// cannot reach them either), pyodide.http / micropip imports are refused, and the CSP the
// server sends with this file limits fetch/import to the Pyodide directory and forbids eval.

const PYODIDE_VERSION = '314.0.7';
const INDEX_URL = new URL(`../vendor/pyodide-${PYODIDE_VERSION}/`, self.location.href).href;
// Uncompressed sizes of the big files (for the progress percentage when the server sends
// them compressed, so Content-Length is not the number of bytes the body stream yields).
const KNOWN_SIZES = { 'pyodide.asm.wasm': 9598218, 'python_stdlib.zip': 2545637 };
const SIGINT = 2;

// What the runner itself uses, taken before any program can replace it.
const G = self;
const post = G.postMessage.bind(G); // Rust's way to the page (the lockdown removes postMessage)
const listen = G.addEventListener.bind(G);
const realSetTimeout = G.setTimeout.bind(G);
const realClearTimeout = G.clearTimeout.bind(G);
const realSetInterval = G.setInterval.bind(G);
const realQueueMicrotask = G.queueMicrotask.bind(G);
const realFetch = G.fetch.bind(G);
const realClose = G.close.bind(G); // the way out when a run tampered with the runner (quit)
const now = G.performance.now.bind(G.performance);
const hasOwn = Object.prototype.hasOwnProperty;
const promiseThen = Promise.prototype.then;
const apply = Reflect.apply;
const ownKeys = Reflect.ownKeys;
const describe = Reflect.getOwnPropertyDescriptor;
const is = Object.is;
// SharedArrayBuffer is only defined when the page is cross-origin isolated.
const isShared = (v) => typeof SharedArrayBuffer === 'function' && v instanceof SharedArrayBuffer;

// ---------------------------------------------------------------------------------------
// Status / progress
// ---------------------------------------------------------------------------------------
// Loading progress is throttled by Rust, unless `force`d (a new phase).
function status(state, detail, force) {
  glue.python_status(state, detail, !!force);
}

const downloads = new Map(); // name -> {loaded, total, done}
let startingText = 'Starting Python…'; // or 'Restoring Python…' (from a memory snapshot)
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
  if (allDone) status('loading', startingText, true);
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
  const requested = String(url) === `${INDEX_URL}${name}` ? takeEarly(name) : undefined;
  return (requested || realFetch(input, init)).then((resp) => {
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

// Pyodide fetches its wasm only once it has the memory snapshot (it sizes the
// interpreter's memory from it), so the big files are requested when loading begins,
// beside the snapshot, and countingFetch hands Pyodide these responses (each once; a second
// load in the same worker fetches again, from the HTTP cache).
const early = new Map(); // file name -> Promise<Response>
function fetchEarly() {
  for (const name of Object.keys(KNOWN_SIZES)) {
    const response = realFetch(`${INDEX_URL}${name}`, { credentials: 'same-origin' });
    response.catch(() => {}); // a failure shows when Pyodide takes it
    early.set(name, response);
  }
}
function takeEarly(name) {
  const response = early.get(name);
  early.delete(name);
  return response;
}

// ---------------------------------------------------------------------------------------
// Memory snapshot: Python's memory right after the interpreter's start-up, made when pairpad
// is built (scripts/python-snapshot.mjs) and served beside Pyodide's files (revalidated on
// each load: a new build may make a different one). Restoring it skips the start-up, most
// of Python's load time (about 3 s of one core on a 2-core machine, against half a
// second). Pyodide refuses a snapshot of another build; a snapshot that is missing,
// damaged or refused makes Python start the long way in the same load. Nothing of a
// program is ever in it: each worker restores the one made at build time, and programs run
// only after that.
// ---------------------------------------------------------------------------------------
const SNAPSHOT_URL = `${INDEX_URL}memory-snapshot.bin`;
// Pyodide's snapshot header starts with this number (pyodide.asm.mjs, makeSnapshot); a
// snapshot holds all of Python's memory, so anything under 1 MiB is not one.
const SNAPSHOT_MAGIC = 1886286592;
const SNAPSHOT_MIN_BYTES = 1 << 20;

// The C library reads the time zone once, at start-up, so a restored Python has the build
// machine's (its offset and the names %Z prints), while the local time it computes comes
// from this browser. This writes the browser's zone where the C library keeps it, the way
// Emscripten's own tzset does (offsets from JavaScript's Date, named "UTC-0500" and so on;
// tzset itself cannot be asked again: its "done" flag is in the restored memory);
// PY_DRIVER then computes Python's time.timezone / altzone / daylight / tzname again.
function adoptBrowserTimeZone(module) {
  const year = new Date().getFullYear();
  const winter = new Date(year, 0, 1).getTimezoneOffset(); // minutes west of UTC
  const summer = new Date(year, 6, 1).getTimezoneOffset();
  const named = (minutesWest) => {
    const away = Math.abs(minutesWest);
    const hhmm = `${String(Math.floor(away / 60)).padStart(2, '0')}${String(away % 60).padStart(2, '0')}`;
    return `UTC${minutesWest >= 0 ? '-' : '+'}${hhmm}`;
  };
  const [standard, daylight] = summer < winter ? [winter, summer] : [summer, winter];
  module.HEAPU32[module._timezone >>> 2] = Math.max(winter, summer) * 60;
  module.HEAP32[module._daylight >>> 2] = Number(winter !== summer);
  // tzname[0] and [1] point at the C library's two 17-byte name buffers.
  module.stringToUTF8(named(standard), module.HEAPU32[module._tzname >>> 2], 17);
  module.stringToUTF8(named(daylight), module.HEAPU32[(module._tzname >>> 2) + 1], 17);
}

/** The served snapshot's bytes, or null if there is none that could be one. */
async function fetchSnapshot() {
  try {
    const response = await realFetch(SNAPSHOT_URL);
    if (!response.ok) return null;
    const bytes = new Uint8Array(await response.arrayBuffer());
    const looksRight = bytes.length >= SNAPSHOT_MIN_BYTES
      && new DataView(bytes.buffer).getUint32(0, true) === SNAPSHOT_MAGIC;
    return looksRight ? bytes : null;
  } catch (_) {
    return null; // the long way still works
  }
}

// ---------------------------------------------------------------------------------------
// Python side of the runner: compiles the editor's code as "<editor>", runs it in a fresh
// __main__, prints tracebacks without the runner's own frames, and puts back or checks the
// interpreter state a later run depends on.
// ---------------------------------------------------------------------------------------
const PY_DRIVER = String.raw`
import sys, io, os, ast, gc, json, types, signal, asyncio, builtins, linecache, traceback, warnings

# Pyodide puts "" at the front of sys.path after every start, and a restored memory
# snapshot already has it: keep one, as a start the long way does.
if sys.path[:2] == ["", ""]:
    del sys.path[0]

def _adopt_time_zone():
    # time.timezone / altzone / daylight / tzname were computed when time was imported,
    # in a restored Python on the machine that made the snapshot. Computed again here the
    # way CPython's time module does it (January and July of this year), from the C
    # library's zone, which python.js has set to the browser's.
    import time
    year = (365 * 24 + 6) * 3600
    t = int(time.time()) // year * year
    january, july = time.localtime(t), time.localtime(t + year // 2)
    january_zone, july_zone = -january.tm_gmtoff, -july.tm_gmtoff
    if january_zone < july_zone:  # the southern hemisphere: summer time in January
        time.timezone, time.altzone = july_zone, january_zone
        time.tzname = (july.tm_zone[:9], january.tm_zone[:9])
    else:
        time.timezone, time.altzone = january_zone, july_zone
        time.tzname = (january.tm_zone[:9], july.tm_zone[:9])
    time.daylight = int(january_zone != july_zone)

_adopt_time_zone()

FILENAME = "<editor>"
CO_COROUTINE = 0x80
_stdout, _stderr, _stdin = sys.stdout, sys.stderr, sys.stdin
_builtins = dict(builtins.__dict__)
_path = list(sys.path)
_recursion = sys.getrecursionlimit()
_int_digits = sys.get_int_max_str_digits()
_cwd = os.getcwd()
_main = sys.modules["__main__"]
_loop = asyncio.get_event_loop()
_random = sys.modules.get("random")
# The runner's own tools, taken before any program can replace them.
_dumps = json.dumps
_format_exception = traceback.format_exception

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

# ---- What one run may leave for the next ---------------------------------------------------
# The interpreter is reused, so what a run could change for the next one is put back after
# each run (_reset, _restore) or checked (_restore), and a run that changed what cannot be
# put back gets the next run a fresh worker.

_meta_path = list(sys.meta_path)
_path_hooks = list(sys.path_hooks)
_importer_cache = dict(sys.path_importer_cache)
_gc_callbacks = list(gc.callbacks)
_warning_filters = list(warnings.filters)
_environ = dict(os.environ)
_modules = dict(sys.modules)
_default_sigint = signal.getsignal(signal.SIGINT)
_MISSING = object()

def _fd_identity(fd):
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_rdev)

_fds = [_fd_identity(fd) for fd in (0, 1, 2)]
_tools = [sys.monitoring.get_tool(i) for i in range(6)]

def _watchlist():
    # What a later run reaches through the modules loaded now: the modules, the classes and
    # plain objects they hold, and the functions in either.
    modules, objects, functions, seen = [], [], [], set()

    def add(obj, into):
        if id(obj) not in seen:
            seen.add(id(obj))
            into.append(obj)

    for mod in _modules.values():
        if not isinstance(mod, types.ModuleType):
            continue
        if mod is not builtins:  # put back before every run instead
            add(mod, modules)
        for v in list(vars(mod).values()):
            if isinstance(v, types.FunctionType):
                add(v, functions)
            elif isinstance(v, type):
                add(v, objects)
                for member in list(vars(v).values()):
                    if isinstance(member, types.FunctionType):
                        add(member, functions)
            elif not isinstance(v, types.ModuleType) and isinstance(getattr(v, "__dict__", None), dict):
                add(v, objects)
    return modules, objects, functions

_watched_modules, _watched_objects, _functions = _watchlist()
# Their namespaces, and copies as they are now, compared with == after each run (in C: equal
# when every value is the same object, as it is unless the run put something else there). A
# class's __dict__ is a fresh read-only view each time; the dict behind it is what setattr changes.
_module_dicts = [vars(m) for m in _watched_modules]
_module_copies = [dict(d) for d in _module_dicts]
_object_dicts = [gc.get_referents(vars(o))[0] if isinstance(o, type) else vars(o) for o in _watched_objects]
_object_copies = [dict(d) for d in _object_dicts]
# Setting a function's code or defaults is an audit event (below), so they need no copy. (The
# copies above keep these functions alive, so their ids stay theirs.)
_function_ids = set(map(id, _functions))

# The event loop's bookkeeping changes as tasks run; its settings must not.
_LOOP_BOOKKEEPING = {"_in_progress", "_old_agen_hooks", "_current_handle"}

def _loop_settings():
    return {k: v for k, v in vars(_loop).items() if k not in _LOOP_BOOKKEEPING}

_loop_then = _loop_settings()

# A run that writes files, changes the environment, changes a library function's code or
# reaches into the interpreter's objects (ctypes, gc's object lists) may have changed anything:
# noted by an audit hook (which no later code can remove).
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_TAINTING = {
    "os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.chmod", "os.chown", "os.link",
    "os.symlink", "os.truncate", "os.utime", "os.putenv", "os.unsetenv", "sys.addaudithook",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents",
}
_tainted = []

def _audit(event, args):
    if event == "open":
        mode, flags = args[1], args[2]
        if isinstance(mode, str) and any(c in mode for c in "wax+") or mode is None and flags & _WRITE_FLAGS:
            _tainted.append("wrote a file")
    elif event == "object.__setattr__":
        if id(args[0]) in _function_ids:
            _tainted.append(f"changed {args[1]} of a library function")
    elif event in _TAINTING or event.startswith("ctypes."):
        _tainted.append(event)

sys.addaudithook(_audit)

def _reset():
    builtins.__dict__.clear()
    builtins.__dict__.update(_builtins)
    sys.stdout, sys.stderr, sys.stdin = _stdout, _stderr, _stdin
    sys.path[:] = _path
    sys.meta_path[:] = _meta_path
    sys.path_hooks[:] = _path_hooks
    sys.path_importer_cache.clear()
    sys.path_importer_cache.update(_importer_cache)
    sys.setrecursionlimit(_recursion)
    sys.set_int_max_str_digits(_int_digits)
    sys.settrace(None)
    sys.setprofile(None)
    # The worker stops programs (and anything left running between runs) with SIGINT.
    signal.signal(signal.SIGINT, _default_sigint)
    sys.modules["__main__"] = _main
    # Pyodide notes an exception that escaped into JavaScript here.
    for name in ("last_exc", "last_type", "last_value", "last_traceback"):
        sys.__dict__.pop(name, None)
    try:
        os.chdir(_cwd)
    except OSError:
        pass
    for s in (sys.stdout, sys.stderr):
        try:
            s.reconfigure(line_buffering=True)
        except Exception:
            pass

def _put_back(live, saved):
    for name in [n for n in live if n not in saved]:
        del live[name]
    for name, value in saved.items():
        if live.get(name, _MISSING) is not value:
            live[name] = value

def _restore():
    """Puts back what the run changed in sys.modules and in the modules' namespaces (a
    monkeypatch, or a module's own lazy import); returns what it could not put back, for
    which the next run needs a fresh interpreter (an empty list: it does not)."""
    _put_back(sys.modules, _modules)  # the modules a run imports are imported afresh
    if _module_dicts != _module_copies:
        for live, saved in zip(_module_dicts, _module_copies):
            if live != saved:
                _put_back(live, saved)
    reasons = []
    if _object_dicts != _object_copies:
        reasons.append("changed a library class or object")
    settings = _loop_settings()
    if settings.keys() != _loop_then.keys() or any(settings[k] is not v for k, v in _loop_then.items()):
        reasons.append("changed the event loop")
    if asyncio.all_tasks(_loop):
        reasons.append("left asyncio tasks")
    if gc.callbacks != _gc_callbacks or warnings.filters != _warning_filters or dict(os.environ) != _environ:
        reasons.append("changed gc callbacks, warning filters or the environment")
    if [_fd_identity(fd) for fd in (0, 1, 2)] != _fds:
        reasons.append("changed the standard streams' file descriptors")
    if [sys.monitoring.get_tool(i) for i in range(6)] != _tools:
        reasons.append("registered a sys.monitoring tool")
    reasons.extend(_tainted)
    _tainted.clear()
    return reasons

# ---- The run --------------------------------------------------------------------------------

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
    return "".join(_format_exception(type(e), e, _user_tb(e.__traceback__)))

def _result(status, e=None, message=None):
    _flush()
    err = None
    if e is not None:
        err = {"type": type(e).__name__, "message": message if message is not None else str(e), "line": _line_of(e)}
    return _dumps({"status": status, "error": err})

def _fail(e):
    _flush()
    if isinstance(e, KeyboardInterrupt):
        _flush()
        return _dumps({"status": "interrupted", "traceback": _format(e),
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

def settle():
    """Called before each run: a SIGINT that stopped something between runs is raised here."""

def run(code, stdin_text):
    _reset()
    if _random is not None:
        _random.seed()  # so no run decides the numbers the next one gets
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin_text.encode("utf-8")), encoding="utf-8")
    linecache.cache[FILENAME] = (len(code), None, code.splitlines(True), FILENAME)
    # A fresh namespace each run: nothing one run defines is there for the next.
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
// Runs own what they schedule. The interpreter outlives a run, so every way a program can
// hand JavaScript something to call later (timers, microtasks, promise callbacks, event
// listeners and on* handlers, asyncio's callbacks, finalizers, observers, streams) is wrapped
// before the first run: the callback belongs to the run that scheduled it and does nothing
// once that run has ended, and whatever is still pending when the run ends is counted
// (leftovers()), so the page can start a fresh worker for the next run. Python that gets
// called between runs anyway is stopped by the interrupt gate (see Loading).
// ---------------------------------------------------------------------------------------
let scope = null; // the run in progress: what it scheduled, and whether it has ended

function newScope() {
  return { ended: false, timers: new Set(), callbacks: new Set(), listeners: [], handlers: [], kept: [] };
}

// `fn`, made to do nothing once the run of scope `s` has ended.
function owned(s, fn) {
  if (typeof fn !== 'function') return fn;
  return function (...args) { return s.ended ? undefined : apply(fn, this, args); };
}

// Puts `replacement` where `name` is defined (on `obj` or up its prototype chain), so the
// original cannot be reached through a prototype either.
function replace(obj, name, replacement) {
  let owner = obj;
  while (!hasOwn.call(owner, name)) owner = Object.getPrototypeOf(owner);
  Object.defineProperty(owner, name, { ...describe(owner, name), value: replacement });
}

function guardTimers() {
  replace(G, 'setTimeout', function setTimeout(fn, ms, ...args) {
    const s = scope;
    if (!s || typeof fn !== 'function') return realSetTimeout(fn, ms, ...args);
    const id = realSetTimeout(() => {
      s.timers.delete(id);
      if (!s.ended) fn(...args);
    }, ms);
    s.timers.add(id);
    return id;
  });
  replace(G, 'setInterval', function setInterval(fn, ms, ...args) {
    const s = scope;
    if (!s || typeof fn !== 'function') return realSetInterval(fn, ms, ...args);
    const id = realSetInterval(() => {
      if (s.ended) realClearTimeout(id);
      else fn(...args);
    }, ms);
    s.timers.add(id);
    return id;
  });
  // Timeouts and intervals share one pool of ids (HTML), so either clear function clears both.
  const clear = (id) => {
    if (scope) scope.timers.delete(id);
    realClearTimeout(id);
  };
  replace(G, 'clearTimeout', function clearTimeout(id) { clear(id); });
  replace(G, 'clearInterval', function clearInterval(id) { clear(id); });
  replace(G, 'queueMicrotask', function queueMicrotask(fn) {
    realQueueMicrotask(scope ? owned(scope, fn) : fn);
  });
  // Promise callbacks are not counted (a promise may never settle), only disarmed.
  replace(Promise.prototype, 'then', function then(onFulfilled, onRejected) {
    const s = scope;
    return apply(promiseThen, this, s ? [owned(s, onFulfilled), owned(s, onRejected)] : [onFulfilled, onRejected]);
  });
}

// asyncio reaches the browser through Pyodide's scheduleCallback (a MessageChannel for short
// delays, which the timer wrappers do not see); pyodide.webloop holds its own reference.
function guardScheduleCallback(py) {
  const real = py._api.scheduleCallback;
  const scheduleCallback = function scheduleCallback(fn, ms) {
    const s = scope;
    if (!s) return real(fn, ms);
    const token = {};
    s.callbacks.add(token);
    return real(() => {
      s.callbacks.delete(token);
      if (!s.ended) fn();
    }, ms);
  };
  py._api.scheduleCallback = scheduleCallback;
  const webloop = py.pyimport('pyodide.webloop');
  webloop.scheduleCallback = scheduleCallback;
  webloop.destroy();
}

function guardListeners() {
  const add = EventTarget.prototype.addEventListener;
  const remove = EventTarget.prototype.removeEventListener;
  const captureOf = (options) => (typeof options === 'boolean' ? options : !!(options && options.capture));
  const find = (s, target, type, listener, options) => s.listeners.find((l) => l.live && l.target === target
    && l.type === String(type) && l.listener === listener && l.capture === captureOf(options));
  replace(EventTarget.prototype, 'addEventListener', function addEventListener(type, listener, options) {
    const s = scope;
    if (!s || !listener || (typeof listener !== 'function' && typeof listener !== 'object')) {
      return apply(add, this, [type, listener, options]);
    }
    if (find(s, this, type, listener, options)) return undefined; // already added: one listener
    const once = !!(options && typeof options === 'object' && options.once);
    const entry = { target: this, type: String(type), listener, capture: captureOf(options), live: true };
    entry.wrapped = function (event) {
      if (once) entry.live = false;
      if (s.ended) return undefined;
      return typeof listener === 'function' ? apply(listener, this, [event]) : listener.handleEvent(event);
    };
    s.listeners.push(entry);
    return apply(add, this, [type, entry.wrapped, options]);
  });
  replace(EventTarget.prototype, 'removeEventListener', function removeEventListener(type, listener, options) {
    const entry = scope && find(scope, this, type, listener, options);
    if (!entry) return apply(remove, this, [type, listener, options]);
    entry.live = false;
    return apply(remove, this, [type, entry.wrapped, options]);
  });
}

// Event handler properties (self.onmessage, port.onmessage, signal.onabort, reader.onload, …)
// on every prototype in `protos`. Reading one gives back what the program set.
function guardHandlerProperties(protos) {
  const setByProgram = new WeakMap(); // target -> Map(property -> the program's function)
  for (const proto of protos) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const d = name.startsWith('on') ? describe(proto, name) : null;
      if (!d || !d.get || !d.set || !d.configurable) continue;
      const realGet = d.get;
      const realSet = d.set;
      Object.defineProperty(proto, name, {
        configurable: true,
        enumerable: d.enumerable,
        get() {
          const mine = setByProgram.get(this);
          return mine && mine.has(name) ? mine.get(name) : apply(realGet, this, []);
        },
        set(value) {
          const s = scope;
          let mine = setByProgram.get(this);
          if (!s || typeof value !== 'function') {
            if (mine) mine.delete(name);
            apply(realSet, this, [value]);
            return;
          }
          if (!mine) setByProgram.set(this, (mine = new Map()));
          mine.set(name, value);
          s.handlers.push(() => mine.get(name) === value); // still installed?
          apply(realSet, this, [owned(s, value)]);
        },
      });
    }
  }
}

// Constructors that keep what they are given and call it later: constructing one with
// arguments leaves something behind (and the functions among them belong to the run).
const KEEPERS = [
  'FinalizationRegistry', 'PerformanceObserver', 'ReportingObserver', 'ReadableStream',
  'WritableStream', 'TransformStream', 'AudioDecoder', 'AudioEncoder', 'VideoDecoder', 'VideoEncoder',
];

function guardKeepers() {
  for (const name of KEEPERS) {
    const Base = G[name];
    if (typeof Base !== 'function') continue;
    const Kept = new Proxy(Base, {
      construct(target, args, newTarget) {
        const s = scope;
        if (s && args.length) s.kept.push(`a ${name}`);
        return Reflect.construct(target, s ? args.map((a) => owned(s, a)) : args, newTarget);
      },
    });
    G[name] = Kept;
    Base.prototype.constructor = Kept; // the other way to the original
  }
}

// The global object, every interface object and namespace on it, and their prototypes.
function globalObjects() {
  const objects = new Set();
  const addChain = (o) => {
    for (let p = o; p !== null && !objects.has(p); p = Object.getPrototypeOf(p)) objects.add(p);
  };
  addChain(G);
  for (const key of ownKeys(G)) {
    const v = describe(G, key).value;
    if (v === null || (typeof v !== 'object' && typeof v !== 'function')) continue;
    addChain(v);
    const proto = typeof v === 'function' ? describe(v, 'prototype') : null;
    if (proto && proto.value !== null && typeof proto.value === 'object') addChain(proto.value);
    // A namespace's interfaces too (WebAssembly.Memory, whose buffer getter the runner's
    // glue reads, Intl.*).
    if (typeof v === 'object') {
      for (const inner of ownKeys(v)) {
        const d = describe(v, inner);
        if (!d || typeof d.value !== 'function') continue;
        addChain(d.value);
        const innerProto = describe(d.value, 'prototype');
        if (innerProto && innerProto.value !== null && typeof innerProto.value === 'object') addChain(innerProto.value);
      }
    }
  }
  return objects;
}

// ---------------------------------------------------------------------------------------
// The runner's own way to the page. Its Rust half reaches the page through wasm-bindgen's
// glue, which looks built-ins up when it runs (Function.prototype.call, typed-array methods,
// TextDecoder, the wasm memory's buffer). A program that replaced one could step into that
// path: read or change the runner's memory, or rewrite what it tells the page (a run's end
// saying "reuse this worker" after it planted something for later runs). So what the glue
// uses is made read-only, and fixed in place, before any program runs; and a run that changes
// the JavaScript environment anyway is answered without the glue at all (quit).
// ---------------------------------------------------------------------------------------
const GLUE_USES = () => {
  const typedArray = Object.getPrototypeOf(Uint8Array.prototype);
  return [
    [Function.prototype, ['call', 'apply', 'bind']],
    [typedArray, ['set', 'subarray', 'slice', 'buffer', 'byteLength', 'byteOffset', 'length']],
    [TextDecoder.prototype, ['decode']],
    [TextEncoder.prototype, ['encode', 'encodeInto']],
    [WebAssembly.Memory.prototype, ['buffer']],
    [Atomics, ['store', 'load']],
    [Reflect, ['get', 'set', 'apply', 'construct', 'defineProperty', 'deleteProperty',
      'getOwnPropertyDescriptor', 'getPrototypeOf']],
    [Object, ['getPrototypeOf', 'getOwnPropertyNames']],
    [G, ['Uint8Array', 'Int32Array', 'DataView', 'TextDecoder', 'TextEncoder', 'Atomics',
      'Reflect', 'Object', 'Function', 'Array', 'Error', 'WebAssembly', 'SharedArrayBuffer']],
  ];
};
// Objects that get no new properties: an own property there would shadow a fixed one.
const GLUE_SEALS = () => [
  Function.prototype, Object.getPrototypeOf(Uint8Array.prototype), Uint8Array, Uint8Array.prototype,
  Int32Array, Int32Array.prototype, DataView.prototype, TextDecoder.prototype, TextEncoder.prototype,
  WebAssembly.Memory.prototype,
];

function fixGluePath() {
  for (const [owner, names] of GLUE_USES()) {
    for (const name of names) {
      const d = describe(owner, name);
      if (!d) continue;
      if (hasOwn.call(d, 'value')) d.writable = false;
      d.configurable = false;
      Object.defineProperty(owner, name, d);
    }
  }
  for (const object of GLUE_SEALS()) Object.preventExtensions(object);
}

// The answers sent when a run changed the environment (made by the Rust side before the
// program ran): the run's end (why, on stderr; an error that asks for a fresh worker) and
// 'tainted', so the page replaces this worker even if the program forged an earlier end.
// Posted straight through the captured postMessage (a direct call of a bound function looks
// nothing up; an index loop reads only the array's own properties), then the worker closes.
let taintedReply = null; // from pythonRunner.begin
let quitting = false;
function quit(runReplies) {
  quitting = true;
  if (runReplies) for (let i = 0; i < runReplies.length; i++) post(runReplies[i]);
  if (taintedReply) post(taintedReply);
  realClose();
}

// The JavaScript a later run (and Pyodide, and this file) would find: own properties of
// `objects`.
function snapshotOf(objects) {
  return [...objects].map((object) => ({ object, saved: Object.getOwnPropertyDescriptors(object), count: ownKeys(object).length }));
}

// Uses nothing a program could have replaced (no iterators, no methods looked up on
// prototypes), since that is what it checks.
function changedSince(snapshot) {
  for (let i = 0; i < snapshot.length; i++) {
    const { object, saved, count } = snapshot[i];
    const keys = ownKeys(object);
    if (keys.length !== count) return true;
    for (let k = 0; k < keys.length; k++) {
      const d = describe(object, keys[k]);
      const was = apply(hasOwn, saved, [keys[k]]) ? saved[keys[k]] : null;
      if (!was || !is(d.value, was.value) || d.get !== was.get || d.set !== was.set
        || d.writable !== was.writable) return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------
let pyodide = null; // Pyodide's API functions the runner calls, taken before any run
let driver = null; // the PY_DRIVER functions: run, settle, restore
let environment = null; // snapshotOf() the JavaScript environment once loaded
let interrupt = null; // Int32Array over the page's SharedArrayBuffer: [0] signal, [1] reason
let stdout = null; // the stream handlers given to Pyodide
let stderr = null;
let current = null; // the id of the run in progress (its output goes to Rust)
let deadline = 0; // fallback time limit (no SharedArrayBuffer)
let fallbackInterrupted = false;
let interruptBuffer = null; // from pythonRunner.attachInterrupt
let loaded = null; // the load (begun by pythonRunner.begin)

// What Pyodide polls for interrupts while Python runs. During a program it passes on the
// page's signal (or, without shared memory, the run's own deadline); during the runner's own
// Python, nothing; between runs always SIGINT, so Python that gets called then anyway (a
// callback that got past the wrappers) is stopped at once, and the page told to replace
// this worker.
let mode = 'idle'; // 'idle' | 'program' | 'runner'
let ranBetweenRuns = false;
const interruptGate = {
  get 0() {
    if (mode === 'idle' && !ranBetweenRuns) {
      ranBetweenRuns = true;
      glue.python_tainted();
    }
    if (mode !== 'program') return mode === 'idle' ? SIGINT : 0;
    if (interrupt) return Atomics.load(interrupt, 0);
    if (deadline && now() > deadline) { fallbackInterrupted = true; deadline = 0; return SIGINT; }
    return 0;
  },
  set 0(value) { // Pyodide clears the signal it has taken
    if (interrupt && mode === 'program') Atomics.store(interrupt, 0, value);
  },
};

async function load() {
  status('loading', 'Starting Python…', true);
  // The snapshot and Pyodide's big files download while Pyodide's script loads.
  const snapshotBytes = fetchSnapshot();
  fetchEarly();
  const { loadPyodide } = await import(`${INDEX_URL}pyodide.mjs`);
  const WA = G.WebAssembly;
  const realInstantiateStreaming = WA.instantiateStreaming;
  const realInstantiate = WA.instantiate;
  const watch = (p) => {
    p.catch((e) => failLoad(new Error(`could not compile Python's WebAssembly: ${e && e.message ? e.message : e}`)));
    return p;
  };
  G.fetch = countingFetch;
  WA.instantiateStreaming = function instantiateStreaming(...args) { return watch(realInstantiateStreaming.apply(WA, args)); };
  WA.instantiate = function instantiate(...args) { return watch(realInstantiate.apply(WA, args)); };
  const start = (options) => {
    const failed = new Promise((_, reject) => { failLoad = reject; });
    return Promise.race([failed, loadPyodide({
      indexURL: INDEX_URL,
      // scripts/python-snapshot.mjs makes the served snapshot with this same env. LANG:
      // Emscripten would take it from the browser's language; the same for everyone.
      env: { HOME: '/home/pyodide', NO_COLOR: '1', PYTHON_COLORS: '0', LANG: 'C.UTF-8' },
      stdout: () => {},
      stderr: () => {},
      ...options,
    })]);
  };
  let snapshot = await snapshotBytes;
  let py;
  try {
    if (snapshot) {
      startingText = 'Restoring Python…';
      status('loading', startingText, true);
      try {
        py = await start({ _loadSnapshot: snapshot });
      } catch (_) {
        // Not restorable (e.g. made for another Pyodide build): start the long way.
        snapshot = null;
        startingText = 'Starting Python…';
        status('loading', startingText, true);
        py = await start({});
      }
    } else {
      py = await start({});
    }
  } finally {
    G.fetch = realFetch;
    WA.instantiateStreaming = realInstantiateStreaming;
    WA.instantiate = realInstantiate;
    failLoad = () => {};
  }
  if (snapshot) adoptBrowserTimeZone(py._module);
  const writer = (stream) => ({
    write(buf) {
      if (current !== null) glue.python_write(current, stream, buf);
      return buf.length;
    },
    isatty: false,
  });
  stdout = writer(1);
  stderr = writer(2);
  py.setStdin({ stdin: () => null });
  if (isShared(interruptBuffer)) interrupt = new Int32Array(interruptBuffer);
  const left = glue.lockdown();
  if (left.length) throw new Error(`sandbox: could not remove ${left.join(', ')}`);
  const objects = globalObjects();
  guardTimers();
  guardScheduleCallback(py);
  guardListeners();
  guardHandlerProperties(objects);
  guardKeepers();
  fixGluePath();
  // The driver notes the interpreter state it protects, so it runs once the guards are in.
  const ns = py.globals.get('dict')();
  py.runPython(PY_DRIVER, { globals: ns, filename: '<pairpad-runner>' });
  driver = { run: ns.get('run'), settle: ns.get('settle'), restore: ns.get('_restore') };
  ns.destroy();
  objects.add(py).add(py._api);
  environment = snapshotOf(objects);
  pyodide = {
    setInterruptBuffer: py.setInterruptBuffer.bind(py),
    setStdout: py.setStdout.bind(py),
    setStderr: py.setStderr.bind(py),
  };
  pyodide.setInterruptBuffer(interruptGate);
  status('ready', 'Python ready', true);
}

// ---------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------
const waiting = []; // runs not started yet: {id, code, stdin, timeLimitMs, tamperedReplies}
let draining = false;

// Why the next run needs a fresh worker (an empty list: it does not). Puts back what it can.
function leftovers(s) {
  // First: the checks below use the JavaScript built-ins this one finds unchanged.
  if (changedSince(environment)) return ['changed JavaScript globals'];
  const reasons = [...s.kept];
  if (s.timers.size) reasons.push('timers');
  if (s.callbacks.size) reasons.push('asyncio callbacks');
  if (s.listeners.some((l) => l.live)) reasons.push('event listeners');
  if (s.handlers.some((installed) => installed())) reasons.push('event handlers');
  if (ranBetweenRuns) reasons.push('Python ran between runs');
  try {
    const python = driver.restore();
    reasons.push(...python.toJs());
    python.destroy();
  } catch (e) {
    reasons.push(`could not check the interpreter: ${e && e.message ? e.message : e}`);
  }
  return reasons;
}

const errorText = (e) => String(e && e.message ? e.message : e);

async function run(msg) {
  const id = msg.id;
  try {
    if (!loaded) throw new Error('this worker was not started');
    await loaded;
  } catch (e) {
    glue.python_finish(id, 'error', 'PythonLoadError', errorText(e), null, 0, true);
    return;
  }
  current = id;
  if (interrupt) { Atomics.store(interrupt, 0, 0); Atomics.store(interrupt, 1, 0); }
  // Re-armed every run, in case the previous program changed them through pyodide_js.
  pyodide.setInterruptBuffer(interruptGate);
  pyodide.setStdout(stdout);
  pyodide.setStderr(stderr);
  mode = 'runner';
  try {
    driver.settle();
  } catch (_) { /* the KeyboardInterrupt the gate gave Python between runs */ }
  fallbackInterrupted = false;
  deadline = !interrupt && msg.timeLimitMs > 0 ? now() + msg.timeLimitMs : 0;
  const s = newScope();
  scope = s;
  mode = 'program';
  const t0 = now();
  let res;
  let restart = false;
  let runtimeError = null; // Pyodide itself failed: said on stderr once the check below passed
  try {
    let r = driver.run(msg.code, msg.stdin);
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
      restart = true;
      runtimeError = errorText(e);
      res = { status: 'error', error: { type: 'InternalError', message: runtimeError, line: null } };
    }
  }
  // First, before anything a program could have replaced runs: did it change the
  // JavaScript environment? Then nothing this worker says can be trusted any more.
  if (changedSince(environment)) return quit(msg.tamperedReplies);
  if (runtimeError !== null) glue.python_write(id, 2, `Python runtime error: ${runtimeError}\n`);
  const durationMs = Math.round((now() - t0) * 10) / 10;
  deadline = 0;
  mode = 'runner';
  if (!restart) restart = leftovers(s).length > 0;
  s.ended = true;
  scope = null;
  mode = 'idle';
  pyodide.setInterruptBuffer(interruptGate);
  let st = res.status;
  if (st === 'interrupted') {
    const reason = interrupt ? Atomics.load(interrupt, 1) : (fallbackInterrupted ? 1 : 0);
    if (!reason) {
      // A KeyboardInterrupt the program raised itself: an ordinary error.
      if (res.traceback) glue.python_write(id, 2, res.traceback);
      st = 'error';
    } else if (!interrupt) {
      st = 'timeout';
    }
  }
  current = null;
  const error = res.error || {};
  glue.python_finish(id, st, error.type ?? null, error.message ?? null, error.line ?? null, durationMs, restart);
}

// One run at a time. (A plain await: chaining with then() during an async run would hand
// the chain to that run, and it would stop when the run ends.)
async function drain() {
  if (draining) return;
  draining = true;
  while (waiting.length && !quitting) {
    const msg = waiting.shift();
    try {
      await run(msg);
    } catch (e) {
      // (What the program left could have thrown: check it before the glue is used.)
      if (environment && changedSince(environment)) {
        quit(msg.tamperedReplies);
        break;
      }
      current = null;
      glue.python_finish(msg.id, 'error', 'InternalError', errorText(e), null, 0, true);
    }
  }
  draining = false;
}

// What the Rust side calls (python.rs); see the top of this file.
const pythonRunner = {
  attachInterrupt(buffer) {
    if (!loaded && isShared(buffer)) interruptBuffer = buffer;
  },
  begin(tainted) {
    if (loaded) return;
    taintedReply = tainted;
    loaded = load().catch((e) => {
      status('error', `Python failed to load: ${errorText(e)}`, true);
      throw e;
    });
    loaded.catch(() => {});
  },
  run(id, code, stdin, timeLimitMs, tamperedReplies) {
    if (quitting) return;
    waiting.push({ id, code, stdin, timeLimitMs, tamperedReplies });
    drain();
  },
};
