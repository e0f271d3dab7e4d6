// Shared code for the abuse suite (tests/interop/abuse.test.mjs) and the abuse
// benchmark (bench/abuse.mjs): what a hostile participant sends (issue 11), and
// what the suite watches while it does: two stock Yjs typists in a neighbour
// session (relay time of every edit), /api/health polled every 100 ms, and the
// server's VmRSS/VmHWM from /proc/<pid>/status.
//
// Everything here measures and reports; the tests assert and the benchmark
// prints. Only 127.0.0.1 is ever contacted.

import net from 'node:net'
import fs from 'node:fs'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as encoding from 'lib0/encoding'
import { yClient, WebSocket, Y, waitFor, within, WAIT_MS } from './clients.mjs'
import { parseFrame, emptySyncStep1, MSG_AWARENESS } from './protocol.mjs'

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const now = () => performance.now()

// ---- the server binary and its flags ------------------------------------------------------------

const helpCache = new Map()

/**
 * The flags among `args` that `bin --help` does not list. A build without the
 * issue-11 limits rejects their flags at startup (clap), which would fail every
 * test with the same "unexpected argument" line; this names them instead.
 */
export function unknownFlags (bin, args) {
  if (!helpCache.has(bin)) {
    const out = spawnSync(bin, ['--help'], { encoding: 'utf8' })
    helpCache.set(bin, `${out.stdout ?? ''}\n${out.stderr ?? ''}`)
  }
  const help = helpCache.get(bin)
  const flags = args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0])
  return [...new Set(flags)].filter((f) => !new RegExp(`(^|[\\s,])${f}(?![\\w-])`).test(help))
}

/**
 * `args` without the flags in `drop` (each with its value, the next argument
 * unless that is itself a flag or the flag was written `--flag=value`).
 */
export function withoutFlags (args, drop) {
  const out = []
  for (let i = 0; i < args.length; i++) {
    const name = args[i].split('=')[0]
    if (drop.includes(name)) {
      if (!args[i].includes('=') && i + 1 < args.length && !args[i + 1].startsWith('--')) i++
      continue
    }
    out.push(args[i])
  }
  return out
}

// ---- memory ------------------------------------------------------------------------------------

/** VmRSS and VmHWM (KiB) of `pid`. */
export function memKiB (pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name) => Number((new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text) || [])[1])
  return { rss: field('VmRSS'), hwm: field('VmHWM') }
}

export const rssKiB = (pid) => memKiB(pid).rss
export const mib = (kib) => Math.round(kib / 102.4) / 10

/**
 * Samples VmRSS every `intervalMs` from a baseline on, keeping the peak. The
 * sampled peak can miss a spike between samples, so `peakKiB()` also counts
 * VmHWM when it rose after the baseline (VmHWM is the kernel's exact peak since
 * the process started).
 */
export class RssSampler {
  constructor (pid, intervalMs = 100) {
    this.pid = pid
    this.intervalMs = intervalMs
    this.timer = null
    this.rebase()
  }

  rebase () {
    const m = memKiB(this.pid)
    this.baselineKiB = m.rss
    this.baselineHwmKiB = m.hwm
    this.sampledPeakKiB = m.rss
    return this.baselineKiB
  }

  sample () {
    try {
      const m = memKiB(this.pid)
      if (m.rss > this.sampledPeakKiB) this.sampledPeakKiB = m.rss
      this.lastHwmKiB = m.hwm
      return m.rss
    } catch {
      return null // the process is gone; the caller notices elsewhere
    }
  }

  start () {
    this.stop()
    this.timer = setInterval(() => this.sample(), this.intervalMs)
    this.timer.unref()
    return this
  }

  stop () {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  /** Peak RSS since the baseline (KiB). */
  peakKiB () {
    this.sample()
    const hwm = this.lastHwmKiB ?? 0
    return Math.max(this.sampledPeakKiB, hwm > this.baselineHwmKiB ? hwm : 0)
  }
}

// ---- /api/health -------------------------------------------------------------------------------

/**
 * GETs /api/health every `intervalMs` (one request at a time, so a stalled
 * server shows up as one slow answer, not a pile of them) and records how long
 * each answer took. A request gets at most `timeoutMs`.
 */
export class HealthPoller {
  constructor (baseUrl, { intervalMs = 100, timeoutMs = 10_000 } = {}) {
    this.url = `${baseUrl}/api/health`
    this.intervalMs = intervalMs
    this.timeoutMs = timeoutMs
    this.answers = [] // {at, ms, status}
    this.failures = [] // {at, ms, error}
    this.running = false
    this.inflightSince = null
    this.loop = null
  }

  start () {
    this.running = true
    this.loop = (async () => {
      while (this.running) {
        const t0 = now()
        this.inflightSince = t0
        try {
          const res = await fetch(this.url, { signal: AbortSignal.timeout(this.timeoutMs) })
          await res.arrayBuffer()
          const ms = now() - t0
          if (res.status === 200) this.answers.push({ at: t0, ms, status: res.status })
          else this.failures.push({ at: t0, ms, error: `status ${res.status}` })
        } catch (err) {
          this.failures.push({ at: t0, ms: now() - t0, error: err.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : err.message })
        }
        this.inflightSince = null
        if (this.running) await sleep(this.intervalMs)
      }
    })()
    return this
  }

  /**
   * Slowest answer (ms) among requests that overlapped [from, to]
   * (performance.now() times), plus the first one started after `to` (so a
   * window shorter than the poll interval still has an answer), counting a
   * request still unanswered with its age.
   */
  slowestMs (from = 0, to = Infinity) {
    let worst = 0
    let firstAfter = null
    for (const a of [...this.answers, ...this.failures]) {
      if (a.at <= to && a.at + a.ms >= from) worst = Math.max(worst, a.ms)
      else if (a.at > to && (firstAfter === null || a.at < firstAfter.at)) firstAfter = a
    }
    if (firstAfter) worst = Math.max(worst, firstAfter.ms)
    if (this.inflightSince !== null && (this.inflightSince <= to || !firstAfter)) worst = Math.max(worst, now() - this.inflightSince)
    return worst
  }

  /** Stops polling without waiting for a request in flight. */
  stop () {
    this.running = false
    return { answered: this.answers.length, failures: this.failures, slowestMs: this.slowestMs() }
  }
}

/** One GET /api/health, bounded; returns {status, body, ms}. */
export async function healthOnce (baseUrl, timeoutMs = 10_000) {
  const t0 = now()
  const res = await fetch(`${baseUrl}/api/health`, { signal: AbortSignal.timeout(timeoutMs) })
  const text = await res.text()
  let body
  try { body = JSON.parse(text) } catch { body = text }
  return { status: res.status, body, ms: now() - t0 }
}

// ---- the neighbour session: two stock typists ------------------------------------------------

const TOKEN_RE = /\[([ab])(\d+)\]/g

/**
 * Two stock Yjs clients (y-websocket WebsocketProvider) in their own session,
 * taking turns to type a unique token "[a17]" at the end of the code every
 * `intervalMs`. Each token's relay time runs from the local insert to the
 * moment it is integrated into the other client's document (its doc 'update'
 * event of a remote transaction; string content is stored verbatim in the v1
 * update encoding, so the token is read straight out of the bytes).
 */
export class Neighbours {
  static async start (server, { intervalMs = 50, sessionId = null } = {}) {
    const n = new Neighbours(server, intervalMs)
    n.sessionId = sessionId ?? (await server.createSession()).id
    n.a = yClient(server, n.sessionId, { name: 'neighbour A' })
    n.b = yClient(server, n.sessionId, { name: 'neighbour B' })
    await Promise.all([n.a.synced(), n.b.synced()])
    n.listen(n.a, 'a')
    n.listen(n.b, 'b')
    n.resume()
    return n
  }

  constructor (server, intervalMs) {
    this.server = server
    this.intervalMs = intervalMs
    this.sent = new Map() // token -> {t0, from}
    this.relays = [] // {t0, ms}
    this.next = 0
    this.timer = null
  }

  listen (client, me) {
    client.doc.on('update', (update, origin) => {
      if (origin === null || origin === undefined) return // a local edit
      const t = now()
      const text = Buffer.from(update.buffer, update.byteOffset, update.byteLength).toString('latin1')
      TOKEN_RE.lastIndex = 0
      let m
      while ((m = TOKEN_RE.exec(text)) !== null) {
        const token = m[0]
        const rec = this.sent.get(token)
        if (!rec || rec.from === me) continue
        this.sent.delete(token)
        this.relays.push({ t0: rec.t0, ms: t - rec.t0 })
      }
    })
  }

  type () {
    const from = this.next % 2 === 0 ? 'a' : 'b'
    const client = from === 'a' ? this.a : this.b
    const token = `[${from}${this.next++}]`
    this.sent.set(token, { t0: now(), from })
    client.text.insert(client.text.length, token)
  }

  resume () {
    if (!this.timer) this.timer = setInterval(() => this.type(), this.intervalMs)
  }

  pause () {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  /** Tokens typed but not yet seen by the other client. */
  get pending () { return this.sent.size }

  /** Worst relay time (ms) of tokens typed in [from, to]; a token still undelivered counts with its age. */
  worstRelayMs (from = 0, to = Infinity) {
    let worst = 0
    for (const r of this.relays) if (r.t0 >= from && r.t0 <= to && r.ms > worst) worst = r.ms
    const t = now()
    for (const rec of this.sent.values()) if (rec.t0 >= from && rec.t0 <= to) worst = Math.max(worst, t - rec.t0)
    return worst
  }

  /** Closes either typist has received from the server. */
  get closes () {
    return [...this.a.closes.map((c) => ({ client: 'A', ...c })), ...this.b.closes.map((c) => ({ client: 'B', ...c }))]
  }

  /**
   * Stops typing, waits (bounded) for every token to reach the other side and
   * for both texts to be equal; then one more edit each way. Throws with a
   * description when they do not converge. Typing resumes afterwards.
   */
  async converge (label = 'neighbours', timeout = 15_000) {
    this.pause()
    await waitFor(() => this.pending === 0, {
      timeout,
      message: () => `${label}: every token the neighbours typed to reach the other one; ${this.pending} still undelivered (${[...this.sent.keys()].slice(0, 5).join(' ')} ...); closes: ${JSON.stringify(this.closes)}`
    })
    await waitFor(() => this.a.text.toString() === this.b.text.toString(), {
      timeout,
      message: () => `${label}: the neighbours' texts to be equal (lengths ${this.a.text.length} and ${this.b.text.length})`
    })
    this.type()
    this.type()
    await waitFor(() => this.pending === 0 && this.a.text.toString() === this.b.text.toString(), {
      timeout,
      message: () => `${label}: a last edit each way to reach the other neighbour`
    })
    this.resume()
    return this.a.text.length
  }

  destroy () {
    this.pause()
    this.a?.destroy()
    this.b?.destroy()
  }
}

// ---- raw WebSocket clients ---------------------------------------------------------------------

/**
 * A raw `ws` client (like clients.mjs rawClient) that takes `ws` options
 * (headers, autoPong, ...), keeps the newest received frames (at most
 * `maxFrames` and `maxBytes`: a server that answers a flood must not make the
 * test process run out of memory), counts everything, and records pings and
 * the close.
 */
export function raw (url, options = {}, { maxFrames = 5_000, maxBytes = 32 * 1024 * 1024 } = {}) {
  const ws = new WebSocket(url, { maxPayload: 256 * 1024 * 1024, ...options })
  ws.binaryType = 'nodebuffer'
  const frames = []
  const errors = []
  const stats = { frames: 0, bytes: 0, pings: 0, syncStep2: 0 }
  let keptBytes = 0
  ws.on('message', (data) => {
    const buf = Buffer.from(data)
    stats.frames++
    stats.bytes += buf.length
    if (buf[0] === 0 && buf[1] === 1) stats.syncStep2++
    frames.push(buf)
    keptBytes += buf.length
    while (frames.length > 1 && (frames.length > maxFrames || keptBytes > maxBytes)) keptBytes -= frames.shift().length
  })
  ws.on('ping', () => { stats.pings++ })
  ws.on('error', (err) => errors.push(err))
  const opened = new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('close', () => reject(new Error('closed before opening')))
  })
  opened.catch(() => {})
  let closeInfo = null
  const closed = new Promise((resolve) => {
    ws.once('close', (code, reason) => {
      closeInfo = { code, reason: reason.toString('utf8') }
      resolve(closeInfo)
    })
  })
  const client = {
    url,
    ws,
    frames,
    errors,
    stats,
    closed,
    get close () { return closeInfo },
    get isOpen () { return ws.readyState === WebSocket.OPEN },
    open (timeout = WAIT_MS) { return within(opened, { timeout, message: `WebSocket ${url} to open` }) },
    /** Sends one binary frame; resolves once written (rejects if the socket is gone). */
    send (data) {
      return new Promise((resolve, reject) => {
        if (ws.readyState !== WebSocket.OPEN) return reject(new Error('socket not open'))
        ws.send(data, { binary: true }, (err) => (err ? reject(err) : resolve()))
      })
    },
    /** Sends and forgets (a closed socket is the point of most attacks). */
    fire (data) { client.send(data).catch(() => {}) },
    closeInfo (timeout = WAIT_MS, what = 'the server to close the connection') {
      return within(closed, {
        timeout,
        message: `${what} (${url}; ${stats.frames} frame(s) received; errors: ${errors.map((e) => e.message).join('; ') || 'none'})`
      })
    },
    waitFrame (predicate, timeout = WAIT_MS, what = 'a matching frame') {
      return waitFor(() => frames.find((f) => predicate(f)), { timeout, message: what })
    },
    terminate () { try { ws.terminate() } catch {} }
  }
  return client
}

/** Opens a raw client and waits until it has joined (the server's SyncStep1 arrived). */
export async function joinRaw (server, sessionId, options = {}, what = 'raw client') {
  const r = raw(server.wsUrl(sessionId), options)
  await r.open()
  await r.waitFrame((d) => d[0] === 0 && d[1] === 0, WAIT_MS, `${what} to receive the server's SyncStep1`)
  return r
}

/** True if `frame` is an awareness frame with an entry for `clientID` (whose state passes `test`, if given). */
export function hasAwarenessFor (frame, clientID, test = () => true) {
  if (frame[0] !== MSG_AWARENESS) return false
  try {
    return parseFrame(frame).some((m) => m.type === 'awareness' &&
      m.entries.some((e) => e.clientID === clientID && test(e.json === 'null' ? null : JSON.parse(e.json))))
  } catch {
    return false
  }
}

// ---- frames ------------------------------------------------------------------------------------

/**
 * One awareness message with many entries: [{id, clock, state}] where state is
 * an object, null (removal) or a raw JSON string.
 */
export function awarenessMessage (entries) {
  const inner = encoding.createEncoder()
  encoding.writeVarUint(inner, entries.length)
  for (const { id, clock, state } of entries) {
    encoding.writeVarUint(inner, id)
    encoding.writeVarUint(inner, clock)
    encoding.writeVarString(inner, typeof state === 'string' ? state : JSON.stringify(state))
  }
  const outer = encoding.createEncoder()
  encoding.writeVarUint(outer, MSG_AWARENESS)
  encoding.writeVarUint8Array(outer, encoding.toUint8Array(inner))
  return Buffer.from(encoding.toUint8Array(outer))
}

/** `count` SyncStep1 messages with an empty state vector (00 00 01 00 each) in one frame. */
export function syncStep1Flood (count) {
  const buf = Buffer.alloc(count * 4)
  for (let i = 0; i < count; i++) buf[i * 4 + 2] = 1
  return buf
}

/** `count` awareness queries (message type 3, no payload) in one frame. */
export const awarenessQueries = (count) => Buffer.alloc(count, 3)

/** A JSON state of exactly `bytes` bytes: {"pad":"xxx..."} (plus `extra` fields). */
export function stateOfBytes (bytes, extra = {}) {
  const head = JSON.stringify({ ...extra, pad: '' })
  const pad = bytes - Buffer.byteLength(head)
  if (pad < 0) throw new Error(`a state of ${bytes} bytes cannot hold ${head}`)
  return JSON.stringify({ ...extra, pad: 'x'.repeat(pad) })
}

/** Text that looks like code, `bytes` long (ASCII). */
export function codeText (bytes, seed = 0) {
  const lines = []
  let size = 0
  for (let i = seed; size < bytes; i++) {
    const line = `def f${i}(x):  # line ${i}\n    return [v * ${i % 97} for v in range(x) if v % 7 != ${i % 7}]\n`
    lines.push(line)
    size += line.length
  }
  return lines.join('').slice(0, bytes)
}

/** Random-looking ASCII of `bytes` bytes (nothing a codec could shrink). */
export const junkText = (bytes) => randomBytes(Math.ceil(bytes * 3 / 4)).toString('base64').slice(0, bytes)

// ---- setup -------------------------------------------------------------------------------------

/**
 * Makes a session's code `bytes` long, as a participant pasting chunks would:
 * a stock client inserts `chunk` bytes at a time and waits until a second one
 * has each chunk (this paces it under the rate limits). Returns the length.
 */
export async function fillCode (server, sessionId, bytes, { chunk = 100_000 } = {}) {
  const writer = yClient(server, sessionId, { name: 'code writer' })
  const watcher = yClient(server, sessionId, { name: 'code watcher' })
  try {
    await Promise.all([writer.synced(), watcher.synced()])
    const start = watcher.text.length
    for (let written = 0; written < bytes;) {
      const n = Math.min(chunk, bytes - written)
      writer.text.insert(writer.text.length, codeText(n, written))
      written += n
      await waitFor(() => watcher.text.length >= start + written || writer.closes.length > 0, {
        timeout: 30_000,
        message: () => `the code watcher to receive ${written} bytes of code (it has ${watcher.text.length - start})`
      })
      if (writer.closes.length > 0) throw new Error(`filling the code closed the writer: ${JSON.stringify(writer.closes)}`)
    }
    return watcher.text.length
  } finally {
    writer.destroy()
    watcher.destroy()
  }
}

// ---- the attacks ------------------------------------------------------------------------------
// Each returns what happened, including the attacker's close ({code, reason})
// or null when the server did not close it within `capMs`.

async function closeOrNull (client, capMs) {
  return Promise.race([client.closed, sleep(capMs).then(() => null)])
}

/**
 * (a) One frame of `count` SyncStep1 messages (~800 KB for 200,000). Returns
 * the close and how many SyncStep2 answers the attacker got before it.
 */
export async function syncStep1FloodAttack (server, sessionId, { count = 200_000, capMs = 20_000 } = {}) {
  const attacker = await joinRaw(server, sessionId, {}, 'SyncStep1 flooder')
  const frame = syncStep1Flood(count)
  const before = attacker.stats.syncStep2
  attacker.fire(frame)
  const close = await closeOrNull(attacker, capMs)
  const answers = attacker.stats.syncStep2 - before
  attacker.terminate()
  return { close, frameBytes: frame.length, syncStep2Answers: answers }
}

/**
 * (b) One frame announcing `ids` client ids ({} each), then `nullFrames`
 * frames of `nullsPerFrame` null states for ids nobody owns. The attacker first
 * announces one id of its own (`ownId`) on its own; after the flood it updates
 * that id with {marker} so an observer can tell when the server has been
 * through everything before it.
 */
export async function awarenessIdFloodAttack (server, sessionId, {
  ids = 100_000, nullFrames = 4, nullsPerFrame = 50_000, ownId = 999, capMs = 20_000, marker = 'flood done', observer = null
} = {}) {
  const attacker = await joinRaw(server, sessionId, {}, 'awareness flooder')
  await attacker.send(awarenessMessage([{ id: ownId, clock: 1, state: { user: { name: 'flooder' } } }]))
  const base = 1_000_000
  const announce = awarenessMessage(Array.from({ length: ids }, (_, i) => ({ id: base + i, clock: 1, state: '{}' })))
  let sentBytes = announce.length
  attacker.fire(announce)
  for (let f = 0; f < nullFrames && attacker.isOpen; f++) {
    const first = 5_000_000 + f * nullsPerFrame
    const nulls = awarenessMessage(Array.from({ length: nullsPerFrame }, (_, i) => ({ id: first + i, clock: 2, state: 'null' })))
    sentBytes += nulls.length
    attacker.fire(nulls)
  }
  attacker.fire(awarenessMessage([{ id: ownId, clock: 2, state: { user: { name: 'flooder' }, marker } }]))
  // Done when the server closes the flooder, or when its marker comes back
  // (echoed to it, or seen by `observer`, a stock client in the session).
  const markerSeen = () => attacker.frames.some((d) => hasAwarenessFor(d, ownId, (s) => s?.marker === marker)) ||
    observer?.awareness.getStates().get(ownId)?.marker === marker
  const outcome = await Promise.race([
    attacker.closed.then(() => 'closed'),
    waitFor(markerSeen, { timeout: capMs, interval: 20 }).then(() => 'marker', () => 'cap')
  ])
  const close = outcome === 'closed' ? attacker.close : null
  return { attacker, close, markerSeen: outcome === 'marker', sentBytes, ownId, base, ids }
}

/**
 * (c) A stock client writing `valueBytes` values into doc.getMap(`mapName`),
 * each in its own transaction, until the server closes it or `maxValues` are
 * written. `watcher` (a synced stock client in the session, optional) paces it:
 * each value must reach it before the next is written. Returns the close and
 * which keys the watcher received.
 */
export async function bigValuesAttack (server, sessionId, {
  mapName = 'junk', valueBytes = 500_000, maxValues = 10, watcher = null, capMs = 20_000, paceMs = 0
} = {}) {
  const writer = yClient(server, sessionId, { name: `${mapName} writer` })
  await writer.synced()
  const map = writer.doc.getMap(mapName)
  const written = []
  for (let i = 0; i < maxValues && writer.closes.length === 0; i++) {
    const key = `${mapName}-${i}`
    map.set(key, junkText(valueBytes))
    written.push(key)
    if (watcher) {
      await waitFor(() => watcher.doc.getMap(mapName).has(key) || writer.closes.length > 0, { timeout: capMs, message: `${key} to reach the watcher or the writer to be closed` })
        .catch(() => {})
    }
    if (paceMs) await sleep(paceMs)
  }
  await waitFor(() => writer.closes.length > 0, { timeout: capMs }).catch(() => {})
  const close = writer.closes[0] ?? null
  writer.destroy()
  return { close, written, received: watcher ? written.filter((k) => watcher.doc.getMap(mapName).has(k)) : null }
}

/**
 * (d) A WebSocket that completes the upgrade and then never reads (a raw TCP
 * socket, paused), while `streamer` (a raw client that reads) sends awareness
 * states of `stateBytes` at `perSecond`. Streams until the server closes the
 * reader's socket (its server-side TCP socket leaves ESTABLISHED) or `capMs`.
 * Then the reader reads again, to see what the server ended with.
 */
export async function neverReaderAttack (server, sessionId, {
  stateBytes = 4000, perSecond = 180, capMs = 60_000, streamerId = 777, onTick = null
} = {}) {
  const reader = await neverReadingSocket(server.port, new URL(server.wsUrl(sessionId)).pathname)
  const streamer = await joinRaw(server, sessionId, {}, 'presence streamer')
  const t0 = now()
  let sent = 0
  let clock = 1
  let readerClosedAt = null
  const tickMs = 20
  while (now() - t0 < capMs && streamer.isOpen) {
    // Paced by the clock, not by the timer: exactly `perSecond` on average
    // however late the ticks run.
    const due = Math.floor((now() - t0) * perSecond / 1000) + 1
    for (; sent < due; sent++) {
      streamer.fire(awarenessMessage([{ id: streamerId, clock: clock++, state: stateOfBytes(stateBytes, { n: clock }) }]))
    }
    if (serverSideState(server.port, reader.localPort) !== 'ESTABLISHED') {
      readerClosedAt = now() - t0
      break
    }
    if (onTick) onTick()
    await sleep(tickMs)
  }
  const streamedBytes = sent * stateBytes
  const ending = await reader.readToEnd(readerClosedAt === null ? 2_000 : 15_000)
  return { reader, streamer, readerClosedAfterMs: readerClosedAt, streamedBytes, statesSent: sent, ending }
}

/** (e) `count` SyncStep1 messages, one per frame, as fast as the socket takes them. */
export async function syncRequestsAttack (server, sessionId, { count = 200, capMs = 20_000 } = {}) {
  const attacker = await joinRaw(server, sessionId, {}, 'sync requester')
  const before = attacker.stats.syncStep2
  for (let i = 0; i < count && attacker.isOpen; i++) attacker.fire(emptySyncStep1())
  const close = await closeOrNull(attacker, capMs)
  const answers = attacker.stats.syncStep2 - before
  attacker.terminate()
  return { close, answers }
}

/** (f) One frame of `count` awareness queries. */
export async function messagesPerFrameAttack (server, sessionId, { count = 65, capMs = 10_000 } = {}) {
  const attacker = await joinRaw(server, sessionId, {}, 'many-message frame sender')
  attacker.fire(awarenessQueries(count))
  const close = await closeOrNull(attacker, capMs)
  attacker.terminate()
  return { close }
}

/** (g) `count` connections to one session from this address; returns each one's close (null = still open). */
export async function sessionIpAttack (server, sessionId, { count = 9, capMs = 5_000 } = {}) {
  const clients = []
  for (let i = 0; i < count; i++) {
    const c = raw(server.wsUrl(sessionId))
    clients.push(c)
    // One at a time, so "the 9th" is well defined.
    await Promise.race([c.waitFrame((d) => d[0] === 0, capMs).catch(() => {}), c.closed])
  }
  await sleep(200)
  return { clients, closes: clients.map((c) => c.close) }
}

/**
 * (h) `sockets` TCP connections that each send the start of an HTTP request
 * and nothing more. Returns, per socket, when (ms) the server closed it
 * (null = still open after `capMs`).
 */
export async function slowlorisAttack (port, { sockets = 50, capMs = 30_000, trickle = false } = {}) {
  const t0 = now()
  const conns = await Promise.all(Array.from({ length: sockets }, () => openHttp(port)))
  for (const c of conns) {
    c.socket.write(`GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: slowloris\r\n${trickle ? 'X-Slow: ' : ''}`)
  }
  let trickler = null
  if (trickle) {
    // One more byte of a header value every 200 ms: the classic slowloris,
    // which a per-read idle timeout would never end.
    trickler = setInterval(() => { for (const c of conns) if (!c.ended) c.socket.write('a') }, 200)
  }
  await waitFor(() => conns.every((c) => c.ended), { timeout: capMs }).catch(() => {})
  if (trickler) clearInterval(trickler)
  const result = conns.map((c) => (c.endedAt === null ? null : c.endedAt - t0))
  for (const c of conns) c.socket.destroy()
  return { closedAfterMs: result, responses: conns.map((c) => c.data.toString('latin1').split('\r\n')[0]) }
}

/** (i) A raw client that answers no ping; returns its close, pings seen, and how long it lived. */
export async function noPongAttack (server, sessionId, { capMs = 60_000 } = {}) {
  const attacker = raw(server.wsUrl(sessionId), { autoPong: false })
  await attacker.open()
  const t0 = now()
  const close = await closeOrNull(attacker, capMs)
  attacker.terminate()
  return { close, pings: attacker.stats.pings, livedMs: now() - t0 }
}

// ---- raw TCP ----------------------------------------------------------------------------------

/** A TCP connection that records what it receives and when the server ends it. */
export function openHttp (port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const conn = { socket, data: Buffer.alloc(0), ended: false, endedAt: null, error: null }
    const end = () => { if (!conn.ended) { conn.ended = true; conn.endedAt = now() } }
    socket.on('data', (d) => { conn.data = Buffer.concat([conn.data, d]) })
    socket.on('end', end)
    socket.on('close', end)
    socket.on('error', (err) => { conn.error = err; end() })
    socket.once('connect', () => resolve(conn))
    socket.once('error', reject)
  })
}

/**
 * Sends `request` (a string or Buffer) on a fresh connection and waits (bounded)
 * for the response headers or the server closing. Returns {status, head, closed}.
 */
export async function rawHttp (port, request, { timeout = 10_000 } = {}) {
  const conn = await openHttp(port)
  conn.socket.write(request)
  await waitFor(() => conn.ended || conn.data.includes('\r\n\r\n'), { timeout, message: 'an HTTP response or the server closing the connection' })
  const head = conn.data.toString('latin1').split('\r\n\r\n')[0]
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head)
  conn.socket.destroy()
  return { status: m ? Number(m[1]) : null, head, closed: conn.ended }
}

/**
 * The state of the server's side of a TCP connection between 127.0.0.1:serverPort
 * and 127.0.0.1:clientPort, from /proc/net/tcp: 'ESTABLISHED', another state
 * name, or 'gone'. The server closing a socket whose peer does not read shows
 * up here (FIN_WAIT1, or gone) even though the peer never sees the FIN.
 */
export function serverSideState (serverPort, clientPort) {
  const names = { '01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0A': 'LISTEN', '0B': 'CLOSING' }
  const local = `0100007F:${serverPort.toString(16).toUpperCase().padStart(4, '0')}`
  const remote = `0100007F:${clientPort.toString(16).toUpperCase().padStart(4, '0')}`
  const text = fs.readFileSync('/proc/net/tcp', 'utf8')
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/)
    if (cols[1] === local && cols[2] === remote) return names[cols[3]] ?? cols[3]
  }
  return 'gone'
}

/**
 * Opens a WebSocket to `path` by hand over TCP, checks the 101, and then stops
 * reading (the socket is paused: the kernel's buffers fill and the server's
 * writes block). `readToEnd(timeout)` starts reading again and returns the
 * close frame the server sent, if any, and whether the socket ended.
 */
export function neverReadingSocket (port, path) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const key = randomBytes(16).toString('base64')
    let head = Buffer.alloc(0)
    let ended = false
    socket.on('end', () => { ended = true })
    socket.on('close', () => { ended = true })
    socket.on('error', () => { ended = true })
    socket.once('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
    })
    const onHead = (chunk) => {
      head = Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) return
      socket.off('data', onHead)
      socket.pause()
      const status = head.subarray(0, end).toString('latin1').split('\r\n')[0]
      if (!/^HTTP\/1\.1 101/.test(status)) {
        socket.destroy()
        return reject(new Error(`WebSocket upgrade refused: ${status}`))
      }
      const reader = {
        socket,
        localPort: socket.localPort,
        get ended () { return ended },
        async readToEnd (timeout) {
          let data = head.subarray(end + 4)
          let total = data.length
          const frames = new WsFrameScanner()
          frames.push(data)
          data = null
          socket.on('data', (d) => { total += d.length; frames.push(d) })
          socket.resume()
          await waitFor(() => ended, { timeout }).catch(() => {})
          socket.destroy()
          return { ended, bytesRead: total, close: frames.close, frames: frames.count }
        }
      }
      resolve(reader)
    }
    socket.on('data', onHead)
    socket.once('error', reject)
  })
}

/** Scans a server-to-client WebSocket byte stream (unmasked frames) for frame count and the close frame. */
class WsFrameScanner {
  constructor () {
    this.buf = Buffer.alloc(0)
    this.count = 0
    this.close = null
  }

  push (chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk
    for (;;) {
      const b = this.buf
      if (b.length < 2) return
      let len = b[1] & 0x7f
      let at = 2
      if (len === 126) {
        if (b.length < 4) return
        len = b.readUInt16BE(2)
        at = 4
      } else if (len === 127) {
        if (b.length < 10) return
        len = Number(b.readBigUInt64BE(2))
        at = 10
      }
      if (b.length < at + len) return
      const opcode = b[0] & 0x0f
      if (opcode === 0x8) {
        const payload = b.subarray(at, at + len)
        this.close = payload.length >= 2
          ? { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString('utf8') }
          : { code: 1005, reason: '' }
      }
      this.count++
      this.buf = b.subarray(at + len)
    }
  }
}

export { Y, yClient, waitFor }
