// pairpad: JavaScript runner (a classic dedicated Worker; one fresh worker per run).
//
// Protocol (the page side is public/js/runner.js):
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
// server sends with this file ("default-src 'none'; script-src 'unsafe-eval'") is the second
// wall: no fetch/connect of any kind, no importScripts, no import().
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
  const fnToString = Function.prototype.toString;
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
  // inspect(): a compact re-implementation of Node's util.inspect defaults
  // (depth 2, breakLength 80, compact 3, maxArrayLength 100, single-quoted strings).
  // ---------------------------------------------------------------------------------------
  const MAX_ARRAY = 100;
  const MAX_STRING = 10000;
  const BREAK = 80;
  const DEPTH = 2;
  const IDENT = /^[a-zA-Z_][a-zA-Z_0-9]*$/;
  const TypedArrayProto = Object.getPrototypeOf(Uint8Array.prototype);
  const typedArrayTag = Object.getOwnPropertyDescriptor(TypedArrayProto, Symbol.toStringTag).get;

  function strEscape(s) {
    let quote = "'";
    if (s.includes("'")) {
      if (!s.includes('"')) quote = '"';
      else if (!s.includes('`') && !s.includes('${')) quote = '`';
    }
    let out = '';
    for (let i = 0; i < s.length; i++) {
      const c = s[i];
      const code = s.charCodeAt(i);
      if (c === quote || c === '\\') out += '\\' + c;
      else if (c === '\n') out += '\\n';
      else if (c === '\t') out += '\\t';
      else if (c === '\r') out += '\\r';
      else if (c === '\b') out += '\\b';
      else if (c === '\f') out += '\\f';
      else if (c === '\v') out += '\\v';
      else if (code < 0x20 || code === 0x7f) out += '\\x' + code.toString(16).padStart(2, '0').toUpperCase();
      else out += c;
    }
    return quote + out + quote;
  }

  function formatPrimitive(v, nested) {
    switch (typeof v) {
      case 'string': {
        if (!nested) return v;
        let trailer = '';
        if (v.length > MAX_STRING) {
          trailer = `... ${v.length - MAX_STRING} more character${v.length - MAX_STRING > 1 ? 's' : ''}`;
          v = v.slice(0, MAX_STRING);
        }
        return strEscape(v) + trailer;
      }
      case 'number': return Object.is(v, -0) ? '-0' : String(v);
      case 'bigint': return `${v}n`;
      case 'boolean': return String(v);
      case 'undefined': return 'undefined';
      case 'symbol': return v.toString();
      default: return v === null ? 'null' : String(v);
    }
  }

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

  function formatFunctionBase(fn) {
    let src = '';
    try { src = fnToString.call(fn); } catch (_) { /* proxy */ }
    const name = typeof fn.name === 'string' ? fn.name : '';
    if (src.startsWith('class') && /^class\b/.test(src)) {
      let s = `[class ${name || '(anonymous)'}`;
      const sup = Object.getPrototypeOf(fn);
      if (sup && sup !== Function.prototype && sup.name) s += ` extends ${sup.name}`;
      return s + ']';
    }
    let type = 'Function';
    const tag = fn[Symbol.toStringTag];
    if (tag === 'AsyncFunction' || tag === 'GeneratorFunction' || tag === 'AsyncGeneratorFunction') type = tag;
    return name ? `[${type}: ${name}]` : `[${type} (anonymous)]`;
  }

  function formatKey(key) {
    if (typeof key === 'symbol') return `[${key.toString()}]`;
    return IDENT.test(key) ? key : strEscape(key);
  }

  function isError(v) {
    return v instanceof Error || objToString.call(v) === '[object Error]';
  }

  function ownKeys(obj, skipIndices) {
    const keys = [];
    for (const k of Object.keys(obj)) {
      if (skipIndices && /^(0|[1-9][0-9]*)$/.test(k)) continue;
      keys.push(k);
    }
    for (const s of Object.getOwnPropertySymbols(obj)) {
      const d = Object.getOwnPropertyDescriptor(obj, s);
      if (d && d.enumerable) keys.push(s);
    }
    return keys;
  }

  function formatProperty(ctx, obj, key, depth, arrayEntry) {
    const d = Object.getOwnPropertyDescriptor(obj, key);
    let str;
    if (!d) str = 'undefined';
    else if (hasOwn.call(d, 'value')) {
      ctx.indent += 2;
      str = formatValue(ctx, d.value, depth + 1, true);
      ctx.indent -= 2;
    } else if (d.get) str = d.set ? '[Getter/Setter]' : '[Getter]';
    else str = d.set ? '[Setter]' : 'undefined';
    return arrayEntry ? str : `${formatKey(key)}: ${str}`;
  }

  function isBelowBreakLength(ctx, output, start, base) {
    let total = output.length + start;
    if (total + output.length > BREAK) return false;
    for (const s of output) {
      total += s.length;
      if (total > BREAK) return false;
    }
    return base === '' || !base.includes('\n');
  }

  function groupArrayElements(ctx, output, value, more) {
    let totalLength = 0;
    let maxLength = 0;
    let outputLength = output.length;
    if (more) outputLength--;
    const sep = 2;
    const dataLen = new Array(outputLength);
    for (let i = 0; i < outputLength; i++) {
      const len = output[i].length;
      dataLen[i] = len;
      totalLength += len + sep;
      if (maxLength < len) maxLength = len;
    }
    const actualMax = maxLength + sep;
    if (actualMax * 3 + ctx.indent < BREAK && (totalLength / actualMax > 5 || maxLength <= 6)) {
      const averageBias = Math.sqrt(actualMax - totalLength / output.length);
      const biasedMax = Math.max(actualMax - 3 - averageBias, 1);
      const columns = Math.min(
        Math.round(Math.sqrt(2.5 * biasedMax * outputLength) / biasedMax),
        Math.floor((BREAK - ctx.indent) / actualMax),
        3 * 4,
        15,
      );
      if (columns <= 1) return output;
      const tmp = [];
      const maxLineLength = [];
      for (let i = 0; i < columns; i++) {
        let lineLength = 0;
        for (let j = i; j < outputLength; j += columns) if (dataLen[j] > lineLength) lineLength = dataLen[j];
        maxLineLength.push(lineLength + sep);
      }
      let padStart = true;
      if (value !== undefined) {
        for (let i = 0; i < outputLength; i++) {
          if (typeof value[i] !== 'number' && typeof value[i] !== 'bigint') { padStart = false; break; }
        }
      }
      for (let i = 0; i < outputLength; i += columns) {
        const max = Math.min(i + columns, outputLength);
        let str = '';
        let j = i;
        for (; j < max - 1; j++) {
          const cell = `${output[j]}, `;
          str += padStart ? cell.padStart(maxLineLength[j - i], ' ') : cell.padEnd(maxLineLength[j - i], ' ');
        }
        str += padStart ? output[j].padStart(maxLineLength[j - i] - sep, ' ') : output[j];
        tmp.push(str);
      }
      if (more) tmp.push(output[outputLength]);
      return tmp;
    }
    return output;
  }

  function reduceToSingleString(ctx, output, base, braces, isArrayLike, depth, value, more) {
    const entries = output.length;
    if (isArrayLike && entries > 6) output = groupArrayElements(ctx, output, value, more);
    if (ctx.currentDepth - depth < 3 && entries === output.length) {
      const start = output.length + ctx.indent + braces[0].length + base.length + 10;
      if (isBelowBreakLength(ctx, output, start, base)) {
        const joined = output.join(', ');
        if (!joined.includes('\n')) return `${base ? `${base} ` : ''}${braces[0]} ${joined} ${braces[1]}`;
      }
    }
    const ind = '\n' + ' '.repeat(ctx.indent);
    return `${base ? `${base} ` : ''}${braces[0]}${ind}  ${output.join(`,${ind}  `)}${ind}${braces[1]}`;
  }

  function errorToString(err, nested) {
    let name = 'Error';
    let message = '';
    try { name = String(err.name); } catch (_) { /* ignore */ }
    try { message = String(err.message); } catch (_) { /* ignore */ }
    const head = message ? `${name}: ${message}` : name;
    if (nested) return `[${head}]`;
    const frames = userFrames(err);
    return frames.length ? head + '\n' + frames.map((f) => '    at ' + f.text).join('\n') : head;
  }

  function formatValue(ctx, value, depth, nested) {
    if (value === null || (typeof value !== 'object' && typeof value !== 'function')) {
      return formatPrimitive(value, nested);
    }
    const seenAt = ctx.seen.indexOf(value);
    if (seenAt !== -1) {
      let idx = ctx.circular.get(value);
      if (idx === undefined) {
        idx = ctx.circular.size + 1;
        ctx.circular.set(value, idx);
      }
      return `[Circular *${idx}]`;
    }
    return formatRaw(ctx, value, depth, nested);
  }

  function formatRaw(ctx, value, depth, nested) {
    let ctor = null;
    try { ctor = constructorName(value); } catch (_) { /* proxy trap */ }
    let tag = '';
    try { tag = objToString.call(value).slice(8, -1); } catch (_) { /* ignore */ }
    let base = '';
    let braces;
    let output = [];
    let isArrayLike = false;
    let more = false;
    let keys;
    const prefix = (fallback, size) => {
      const name = ctor === null ? `[${fallback}: null prototype]` : ctor;
      return size === undefined ? `${name} ` : `${name}(${size}) `;
    };

    if (depth > DEPTH && typeof value !== 'function' && !isError(value)) {
      if (Array.isArray(value)) return '[Array]';
      return `[${ctor || tag || 'Object'}]`;
    }

    ctx.seen.push(value);
    ctx.currentDepth = depth;
    try {
      if (Array.isArray(value)) {
        isArrayLike = true;
        const p = ctor === 'Array' ? '' : prefix('Array', value.length);
        braces = [`${p}[`, ']'];
        more = formatArrayEntries(ctx, value, depth, output);
        keys = ownKeys(value, true);
      } else if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
        isArrayLike = true;
        const name = typedArrayTag.call(value) || ctor;
        braces = [`${name}(${value.length}) [`, ']'];
        const n = Math.min(value.length, MAX_ARRAY);
        for (let i = 0; i < n; i++) output.push(formatPrimitive(value[i], true));
        if (value.length > n) { output.push(`... ${value.length - n} more item${value.length - n > 1 ? 's' : ''}`); more = true; }
        keys = ownKeys(value, true);
      } else if (value instanceof Map) {
        braces = [`${prefix('Map', value.size)}{`, '}'];
        ctx.indent += 2;
        let i = 0;
        for (const [k, v] of value) {
          if (i++ >= MAX_ARRAY) { output.push(`... ${value.size - MAX_ARRAY} more items`); break; }
          output.push(`${formatValue(ctx, k, depth + 1, true)} => ${formatValue(ctx, v, depth + 1, true)}`);
        }
        ctx.indent -= 2;
        keys = ownKeys(value);
      } else if (value instanceof Set) {
        braces = [`${prefix('Set', value.size)}{`, '}'];
        ctx.indent += 2;
        let i = 0;
        for (const v of value) {
          if (i++ >= MAX_ARRAY) { output.push(`... ${value.size - MAX_ARRAY} more items`); break; }
          output.push(formatValue(ctx, v, depth + 1, true));
        }
        ctx.indent -= 2;
        keys = ownKeys(value);
      } else {
        keys = ownKeys(value);
        braces = ['{', '}'];
        if (typeof value === 'function') {
          base = formatFunctionBase(value);
          if (keys.length === 0) return base;
        } else if (isError(value)) {
          base = errorToString(value, nested);
          keys = keys.filter((k) => k !== 'stack' && k !== 'message');
          if (keys.length === 0) return base;
        } else if (value instanceof RegExp) {
          base = RegExp.prototype.toString.call(value);
          if (keys.length === 0) return base;
        } else if (value instanceof Date) {
          base = Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
          if (keys.length === 0) return base;
        } else if (value instanceof Promise) {
          braces = [`${prefix('Promise')}{`, '}'];
          output.push('<state unknown>');
        } else if (value instanceof WeakMap || value instanceof WeakSet) {
          braces = [`${prefix(tag)}{`, '}'];
          output.push('<items unknown>');
        } else if (value instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer)) {
          braces = [`${prefix(tag)}{`, '}'];
          const bytes = new Uint8Array(value, 0, Math.min(value.byteLength, 50));
          let hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
          if (value.byteLength > 50) hex += ` ... ${value.byteLength - 50} more bytes`;
          output.push(`[Uint8Contents]: <${hex}>`, `byteLength: ${value.byteLength}`);
        } else if (value instanceof Number || value instanceof String || value instanceof Boolean ||
                   value instanceof Symbol || value instanceof BigInt) {
          const prim = value.valueOf();
          const t = value instanceof Number ? 'Number' : value instanceof String ? 'String'
            : value instanceof Boolean ? 'Boolean' : value instanceof Symbol ? 'Symbol' : 'BigInt';
          base = `[${t}: ${formatPrimitive(prim, true)}]`;
          if (value instanceof String) keys = keys.filter((k) => !/^(0|[1-9][0-9]*)$/.test(String(k)));
          if (keys.length === 0) return base;
        } else if (ctor === 'Object') {
          if (tag === 'Arguments') braces = ['[Arguments] [', ']'];
          else if (tag !== 'Object' && tag) braces = [`Object [${tag}] {`, '}'];
        } else {
          let name = ctor === null ? '[Object: null prototype]' : ctor;
          if (tag && tag !== 'Object' && tag !== ctor) name += ` [${tag}]`;
          braces = [`${name} {`, '}'];
        }
      }
      for (const k of keys) output.push(formatProperty(ctx, value, k, depth));
    } finally {
      ctx.seen.pop();
    }

    if (braces[0].endsWith('{') && output.length === 0 && base === '') {
      const res = `${braces[0]}}`;
      return withRef(ctx, value, res);
    }
    if (output.length === 0 && isArrayLike) return withRef(ctx, value, `${braces[0]}]`);
    const res = reduceToSingleString(ctx, output, base, braces, isArrayLike, depth, isArrayLike ? value : undefined, more);
    return withRef(ctx, value, res);
  }

  function withRef(ctx, value, res) {
    const idx = ctx.circular.get(value);
    return idx === undefined ? res : `<ref *${idx}> ${res}`;
  }

  function formatArrayEntries(ctx, arr, depth, output) {
    const len = arr.length;
    let holes = 0;
    let shown = 0;
    for (let i = 0; i < len && shown < MAX_ARRAY; i++) {
      if (!hasOwn.call(arr, i)) { holes++; continue; }
      if (holes) { output.push(`<${holes} empty item${holes > 1 ? 's' : ''}>`); shown++; holes = 0; }
      if (shown >= MAX_ARRAY) break;
      output.push(formatProperty(ctx, arr, String(i), depth, true));
      shown++;
    }
    if (holes && shown < MAX_ARRAY) { output.push(`<${holes} empty item${holes > 1 ? 's' : ''}>`); shown++; holes = 0; }
    let counted = 0;
    for (const s of output) {
      const m = /^<(\d+) empty items?>$/.exec(s);
      counted += m ? Number(m[1]) : 1;
    }
    if (counted < len) {
      output.push(`... ${len - counted} more item${len - counted > 1 ? 's' : ''}`);
      return true;
    }
    return false;
  }

  function inspect(value, nested) {
    const ctx = { seen: [], circular: new Map(), indent: 0, currentDepth: 0 };
    try {
      return formatValue(ctx, value, 0, nested);
    } catch (e) {
      return `[value could not be inspected: ${e && e.message ? e.message : e}]`;
    }
  }

  // console.log-style formatting with %s %d %i %f %j %o %O %c %%.
  function formatArgs(args) {
    let out = '';
    let a = 0;
    if (typeof args[0] === 'string' && args.length > 1 && args[0].includes('%')) {
      const f = args[0];
      a = 1;
      let last = 0;
      for (let i = 0; i < f.length - 1; i++) {
        if (f[i] !== '%') continue;
        const c = f[i + 1];
        let rep;
        if (c === '%') { out += f.slice(last, i) + '%'; last = i + 2; i++; continue; }
        if (a >= args.length) continue;
        const v = args[a];
        switch (c) {
          case 's':
            rep = typeof v === 'string' ? v : typeof v === 'bigint' ? `${v}n`
              : (typeof v === 'object' && v !== null) ? inspect(v, true) : formatPrimitive(v, false);
            break;
          case 'd': case 'i':
            if (typeof v === 'bigint') rep = `${v}n`;
            else if (typeof v === 'symbol' || (typeof v === 'object' && v !== null)) rep = 'NaN';
            else rep = formatPrimitive(c === 'i' ? parseInt(v, 10) : Number(v), false);
            break;
          case 'f': rep = typeof v === 'symbol' ? 'NaN' : formatPrimitive(parseFloat(v), false); break;
          case 'j':
            try { rep = JSON.stringify(v); } catch (_) { rep = '[Circular]'; }
            break;
          case 'o': case 'O': rep = inspect(v, true); break;
          case 'c': rep = ''; break;
          default: continue;
        }
        out += f.slice(last, i) + rep;
        last = i + 2;
        i++;
        a++;
      }
      out += f.slice(last);
      if (a < args.length) out += ' ';
    }
    for (let i = a; i < args.length; i++) {
      if (i > a) out += ' ';
      out += typeof args[i] === 'string' ? args[i] : inspect(args[i], false);
    }
    return out;
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
      return { type, message, line: first ? first.line : null, text: errorToString(err, false) };
    }
    const text = inspect(err, true);
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
      dir: (v) => emit(1, [inspect(v, true)]),
      dirxml: (...a) => emit(1, a),
      assert: (cond, ...a) => {
        if (!cond) emit(2, a.length ? ['Assertion failed:', ...a] : ['Assertion failed']);
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
      table: (data) => emit(1, [table(data)]),
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

  // console.table for arrays / objects of rows, in Node's box style.
  function table(data) {
    if (data === null || typeof data !== 'object') return formatArgs([data]);
    const rowKeys = data instanceof Map ? [...data.keys()] : Object.keys(data);
    const rows = data instanceof Map ? [...data.values()] : rowKeys.map((k) => data[k]);
    const cols = [];
    let hasValues = false;
    for (const r of rows) {
      if (r !== null && typeof r === 'object') {
        for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
      } else hasValues = true;
    }
    const header = ['(index)', ...cols, ...(hasValues ? ['Values'] : [])];
    const body = rows.map((r, i) => {
      const cells = [String(rowKeys[i])];
      for (const c of cols) {
        cells.push(r !== null && typeof r === 'object' && hasOwn.call(r, c) ? inspect(r[c], true) : '');
      }
      if (hasValues) cells.push(r !== null && typeof r === 'object' ? '' : inspect(r, true));
      return cells;
    });
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)) + 2);
    const center = (s, w) => {
      const left = Math.floor((w - s.length) / 2);
      return ' '.repeat(left) + s + ' '.repeat(w - s.length - left);
    };
    const line = (l, m, r) => l + widths.map((w) => '─'.repeat(w)).join(m) + r;
    const row = (cells) => '│' + cells.map((c, i) => center(c, widths[i])).join('│') + '│';
    return [line('┌', '┬', '┐'), row(header), line('├', '┼', '┤'), ...body.map(row), line('└', '┴', '┘')].join('\n');
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
    if (left.length) {
      post({ type: 'done', id: msg.id, status: 'error', truncated: false, durationMs: 0,
        error: { type: 'SandboxError', message: `could not remove: ${left.join(', ')}`, line: null } });
      return;
    }
    run(msg).catch((e) => {
      post({ type: 'done', id: msg.id, status: 'error', truncated: false, durationMs: 0,
        error: { type: 'InternalError', message: String(e && e.message), line: null } });
    });
  });
})();
