#!/usr/bin/env node
// Load generator: R sessions x C stock Yjs clients (y-websocket WebsocketProvider),
// each making E small edits per second for D seconds against pairpad or the
// reference y-websocket server on 127.0.0.1.
//
// Every edit inserts a unique marker token "[#id] " (or "[#id]\n") at a random token
// boundary of the shared Y.Text "code", and sometimes (--delete-ratio) also deletes,
// in the same transaction, one of the client's own earlier tokens that every peer
// has already received. All clients of a session live in the same thread, so one
// clock (performance.now) times each marker from the local edit to its arrival in
// every other client's document (seen in the doc 'update' events of remote
// transactions, see makeClient).
//
// Reports relay latency percentiles, delivered remote updates per second,
// convergence (all clients of a session end with identical text, and a fresh
// client joining afterwards syncs to the same text), the server's RSS (VmHWM and
// sampled VmRSS) and CPU, and this generator's own CPU and event-loop delay.
//
// --workers N splits the sessions over N worker threads (each session stays in one
// thread); the default, 1, keeps everything in the main thread.
//
// Cluster mode (issue 14): --split-port P2 sends every other client of each
// session to a second pairpad instance on port P2 (sessions are still created
// on --port), so relay latency includes the hop between instances through
// Redis; --watch-pids reports the CPU of more processes (the second instance,
// redis-server) over the edit window.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import {
  parseFlags, targetInfo, createRooms, findListeningPid, ProcSampler, readMem,
  selfCpuMark, selfCpuSince, readMachineBusySeconds, percentiles, round, mib, writeJson, machine, sleep, waitUntil
} from './common.mjs'

const USAGE = `usage: node bench/loadgen.mjs --target pairpad|reference --port PORT [flags]
  --sessions R        sessions (rooms)                          [50]
  --clients C         clients per session (2..30)               [4]
  --rate E            edits per second per client               [5]
  --duration D        seconds of editing                        [20]
  --delete-ratio P    chance an edit also deletes an own token  [0.25]
  --settle S          max seconds to wait for delivery after    [15]
  --connect-batch N   clients connecting at once                [100]
  --workers N         generator threads                         [1]
  --server-pid PID    server process (default: whoever listens on --port)
  --split-port P2     every other client of a session connects to port P2 instead
  --watch-pids LIST   more processes (comma-separated pids) whose CPU is reported
  --label TEXT        scenario name in the output
  --json FILE         write the JSON result here
  --quiet             no progress lines`

const LOOP_RES_MS = 10
const MARKER_RE = /\[#([0-9a-z_]+)\]/g
const now = () => performance.now()
process.setMaxListeners(0) // every WebsocketProvider adds a process 'exit' listener

/**
 * One thread's share of the sessions: connects its clients, edits, settles and
 * verifies convergence. Sessions are numbered globally; `rooms[i]` is session
 * `first + i`.
 */
class Shard {
  constructor ({ shard, info, splitWsBase, rooms, first, clients, rate, deleteRatio, connectBatch }) {
    this.shardId = shard
    this.info = info
    this.splitWsBase = splitWsBase
    this.rooms = rooms
    this.first = first
    this.C = clients
    this.E = rate
    this.deleteRatio = deleteRatio
    this.connectBatch = connectBatch
    this.fullMask = (1 << clients) - 1
    /** marker id -> {t0, session (local index), sender, seenMask} */
    this.inflight = new Map()
    this.latencies = []
    this.sentAt = [] // absolute send time (ms since epoch) of each latency sample, for the timeline
    this.nextMarker = 0
    this.editsSent = 0
    this.deletesSent = 0
    this.phase = 'connect' // connect | edit | settle | verify | done
    this.remoteUpdatesInWindow = 0
    this.remoteUpdatesTotal = 0
    this.duplicateArrivals = 0
    this.unknownMarkers = 0
    this.foreignMarkers = 0
    this.events = { connectionClose: [], connectionError: 0, disconnects: 0, reconnects: 0, terminal: [] }
    this.sessions = rooms.map(() => [])
    this.all = []
    this.fresh = []
  }

  makeClient (session, index, { measure = true } = {}) {
    const doc = new Y.Doc()
    const text = doc.getText('code')
    const wsBase = this.splitWsBase && index % 2 === 1 ? this.splitWsBase : this.info.wsBase
    const provider = new WebsocketProvider(wsBase, this.rooms[session], doc, {
      WebSocketPolyfill: WebSocket,
      disableBc: true,
      maxBackoffTime: 1000
    })
    const client = { session, index, doc, text, provider, own: [], timer: null, start: null, syncs: 0 }
    const ev = this.events
    const where = () => ({ phase: this.phase, session: this.first + session, client: index })
    provider.on('synced', (state) => { if (state) client.syncs++ })
    provider.on('connection-close', (event) => {
      if (this.phase === 'done') return
      ev.connectionClose.push({ ...where(), code: event ? event.code : null, reason: event ? String(event.reason || '') : 'closed locally (no-message watchdog)' })
    })
    provider.on('connection-error', () => { if (this.phase !== 'done') ev.connectionError++ })
    provider.on('status', ({ status }) => {
      if (this.phase === 'done') return
      if (status === 'disconnected') ev.disconnects++
      if (status === 'connected' && client.syncs > 0) ev.reconnects++
    })
    provider.on('closed', (e) => { if (this.phase !== 'done') ev.terminal.push({ ...where(), ...e }) })
    if (!measure) return client
    const bit = 1 << index
    // Arrival = the marker's insert was integrated into this client's document: the doc's
    // 'update' event carries exactly the structs a transaction integrated (pending structs
    // with missing dependencies are not in it), and string content is stored verbatim in
    // the v1 update encoding, so the marker can be read straight out of the bytes. This
    // avoids Y.Text observe's delta, which walks the whole text on every event.
    doc.on('update', (update, origin) => {
      if (origin === null || origin === undefined || origin === doc) return // local edit
      const t = now()
      this.remoteUpdatesTotal++
      if (this.phase === 'edit') this.remoteUpdatesInWindow++
      const bytes = Buffer.from(update.buffer, update.byteOffset, update.byteLength).toString('latin1')
      MARKER_RE.lastIndex = 0
      let m
      while ((m = MARKER_RE.exec(bytes)) !== null) {
        const rec = this.inflight.get(m[1])
        if (rec === undefined) { this.unknownMarkers++; continue }
        if (rec.session !== session) { this.foreignMarkers++; continue }
        if (rec.seenMask & bit) { this.duplicateArrivals++; continue }
        rec.seenMask |= bit
        this.latencies.push(t - rec.t0)
        this.sentAt.push(performance.timeOrigin + rec.t0)
        if (rec.seenMask === this.fullMask) {
          this.inflight.delete(m[1])
          this.sessions[rec.session][rec.sender].own.push(m[1])
        }
      }
    })
    return client
  }

  edit (client) {
    const id = `${this.shardId.toString(36)}_${(this.nextMarker++).toString(36)}`
    const token = `[#${id}]` + (Math.random() < 0.1 ? '\n' : ' ')
    client.doc.transact(() => {
      if (client.own.length > 0 && Math.random() < this.deleteRatio) {
        const k = Math.floor(Math.random() * client.own.length)
        const victim = client.own[k]
        client.own[k] = client.own[client.own.length - 1]
        client.own.pop()
        const s = client.text.toString()
        const needle = `[#${victim}]`
        const at = s.indexOf(needle)
        if (at >= 0) {
          client.text.delete(at, needle.length + 1)
          this.deletesSent++
        }
      }
      const s = client.text.toString()
      const pos = snapToBoundary(s, Math.floor(Math.random() * (s.length + 1)))
      this.inflight.set(id, { t0: now(), session: client.session, sender: client.index, seenMask: 1 << client.index })
      client.text.insert(pos, token)
    })
    this.editsSent++
  }

  syncedCount () { return this.all.filter((x) => x.provider.synced).length }

  async connect () {
    const t0 = now()
    for (let s = 0; s < this.rooms.length; s++) {
      for (let c = 0; c < this.C; c++) {
        const client = this.makeClient(s, c)
        this.sessions[s].push(client)
        this.all.push(client)
        if (this.all.length % this.connectBatch === 0) {
          const batch = this.all.slice(-this.connectBatch)
          if (!await waitUntil(() => batch.every((x) => x.provider.synced), 30_000, 20)) this.connectFailed()
        }
      }
    }
    if (!await waitUntil(() => this.all.every((x) => x.provider.synced), 30_000, 20)) this.connectFailed()
    return { connectSeconds: (now() - t0) / 1000 }
  }

  connectFailed () {
    throw new Error(`clients did not sync within 30 s (synced ${this.syncedCount()}/${this.all.length}); closes: ${JSON.stringify(this.events.connectionClose.slice(0, 5))}`)
  }

  /** Edits for `seconds`, each client on its own timer with a random phase. */
  async runEdits (seconds) {
    const loop = monitorEventLoopDelay({ resolution: LOOP_RES_MS })
    loop.enable()
    const periodMs = 1000 / this.E
    this.phase = 'edit'
    const t0 = now()
    for (const client of this.all) {
      client.start = setTimeout(() => {
        client.start = null
        this.edit(client)
        client.timer = setInterval(() => this.edit(client), periodMs)
      }, Math.random() * periodMs)
    }
    await sleep(seconds * 1000)
    for (const client of this.all) {
      if (client.start) clearTimeout(client.start)
      if (client.timer) clearInterval(client.timer)
    }
    const wall = (now() - t0) / 1000
    this.phase = 'settle'
    loop.disable()
    const ms = (x) => round(Math.max(0, x / 1e6 - LOOP_RES_MS), 1) // the histogram includes the timer period
    return {
      editWallSeconds: wall,
      loopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) }
    }
  }

  textsEqual (s) {
    const first = this.sessions[s][0].text.toString()
    return this.sessions[s].every((c) => c.text.toString() === first)
  }

  /** Waits (bounded) for every marker to arrive everywhere and every session's texts to agree. */
  async settle (seconds) {
    const t0 = now()
    const delivered = await waitUntil(() => this.inflight.size === 0, seconds * 1000, 20)
    const settleSeconds = (now() - t0) / 1000
    // Deletes carry no marker: give the last ones a bounded moment to arrive too.
    await waitUntil(() => this.sessions.every((_, s) => this.textsEqual(s)), Math.max(2000, seconds * 1000 - (now() - t0)), 50)
    return { delivered, settleSeconds }
  }

  /** Joins one fresh client per session and compares its synced text with the session's. */
  async verify () {
    this.phase = 'verify'
    const diverged = []
    for (let s = 0; s < this.sessions.length; s++) if (!this.textsEqual(s)) diverged.push(this.first + s)
    for (let s = 0; s < this.sessions.length; s += this.connectBatch) {
      const batch = []
      for (let k = s; k < Math.min(this.sessions.length, s + this.connectBatch); k++) {
        const c = this.makeClient(k, this.C, { measure: false })
        batch.push(c)
        this.fresh.push(c)
      }
      await waitUntil(() => batch.every((c) => c.provider.synced), 20_000, 20)
    }
    let synced = 0
    let matched = 0
    const mismatches = []
    for (const c of this.fresh) {
      if (!c.provider.synced) continue
      synced++
      // synced means the server's SyncStep2 has been applied: compare right away
      const expected = this.sessions[c.session][0].text.toString()
      if (c.text.toString() === expected) matched++
      else if (mismatches.length < 5) mismatches.push({ session: this.first + c.session, freshLength: c.text.length, expectedLength: expected.length })
    }
    const lengths = this.sessions.map((cl) => cl[0].text.length)
    return { diverged, synced, matched, mismatches, textLengthSum: lengths.reduce((a, b) => a + b, 0) }
  }

  stats () {
    return {
      latencies: Float64Array.from(this.latencies),
      sentAt: Float64Array.from(this.sentAt),
      editsSent: this.editsSent,
      deletesSent: this.deletesSent,
      undelivered: this.inflight.size,
      remoteUpdatesInWindow: this.remoteUpdatesInWindow,
      remoteUpdatesTotal: this.remoteUpdatesTotal,
      duplicateArrivals: this.duplicateArrivals,
      unknownMarkers: this.unknownMarkers,
      foreignMarkers: this.foreignMarkers,
      events: this.events
    }
  }

  destroy () {
    this.phase = 'done'
    for (const c of [...this.all, ...this.fresh]) {
      c.provider.destroy()
      c.doc.destroy()
    }
  }
}

/** Index right after the token that contains position p (tokens end in ' ' or '\n'). */
function snapToBoundary (s, p) {
  if (p <= 0) return 0
  if (p >= s.length) return s.length
  const prev = s.charCodeAt(p - 1)
  if (prev === 32 || prev === 10) return p
  let q = p
  while (q < s.length) {
    const c = s.charCodeAt(q++)
    if (c === 32 || c === 10) return q
  }
  return s.length
}

// ---- worker thread: drive a Shard on the main thread's commands --------------------------------
if (!isMainThread) {
  const shard = new Shard(workerData)
  const reply = (msg) => parentPort.postMessage(msg)
  parentPort.on('message', async (cmd) => {
    try {
      if (cmd.op === 'connect') reply({ op: 'connect', ...(await shard.connect()) })
      else if (cmd.op === 'edit') reply({ op: 'edit', ...(await shard.runEdits(cmd.seconds)) })
      else if (cmd.op === 'settle') reply({ op: 'settle', ...(await shard.settle(cmd.seconds)) })
      else if (cmd.op === 'verify') reply({ op: 'verify', ...(await shard.verify()) })
      else if (cmd.op === 'progress') reply({ op: 'progress', edits: shard.editsSent, delivered: shard.latencies.length, inflight: shard.inflight.size })
      else if (cmd.op === 'finish') {
        const stats = shard.stats()
        shard.destroy()
        parentPort.postMessage({ op: 'finish', ...stats }, [stats.latencies.buffer, stats.sentAt.buffer])
        setTimeout(() => process.exit(0), 100).unref()
      }
    } catch (err) {
      reply({ op: 'error', message: err.stack || String(err) })
    }
  })
} else {
  await main()
}

/** A shard behind the same async interface, in this thread or in a worker. */
function localShard (data) {
  const shard = new Shard(data)
  let stats = null
  return {
    connect: () => shard.connect(),
    edit: (seconds) => shard.runEdits(seconds),
    settle: (seconds) => shard.settle(seconds),
    verify: () => shard.verify(),
    progress: async () => ({ edits: shard.editsSent, delivered: shard.latencies.length, inflight: shard.inflight.size }),
    finish: async () => { stats = shard.stats(); shard.destroy(); return stats }
  }
}

function workerShard (data) {
  const worker = new Worker(new URL(import.meta.url), { workerData: data })
  const waiting = new Map()
  worker.on('message', (msg) => {
    if (msg.op === 'error') {
      for (const [, w] of waiting) w.reject(new Error(`worker ${data.shard}: ${msg.message}`))
      waiting.clear()
      return
    }
    const w = waiting.get(msg.op)
    if (w) { waiting.delete(msg.op); w.resolve(msg) }
  })
  worker.on('error', (err) => { for (const [, w] of waiting) w.reject(err); waiting.clear() })
  const call = (op, extra = {}) => new Promise((resolve, reject) => {
    waiting.set(op, { resolve, reject })
    worker.postMessage({ op, ...extra })
  })
  return {
    connect: () => call('connect'),
    edit: (seconds) => call('edit', { seconds }),
    settle: (seconds) => call('settle', { seconds }),
    verify: () => call('verify'),
    progress: () => call('progress'),
    finish: () => call('finish')
  }
}

async function main () {
  const flags = parseFlags(process.argv.slice(2), {
    target: '',
    port: 0,
    sessions: 50,
    clients: 4,
    rate: 5,
    duration: 20,
    deleteRatio: 0.25,
    settle: 15,
    connectBatch: 100,
    workers: 1,
    serverPid: 0,
    splitPort: 0,
    watchPids: '',
    label: '',
    json: '',
    quiet: false
  }, USAGE)
  if (!flags.port) throw new Error('--port is required\n' + USAGE)
  if (flags.clients < 2 || flags.clients > 30) throw new Error('--clients must be 2..30 (latency is measured between clients; a 32-bit mask tracks receivers)')
  if (!(flags.rate > 0 && flags.duration > 0 && flags.sessions >= 1)) throw new Error('--rate, --duration and --sessions must be positive')
  const info = targetInfo(flags.target, flags.port)
  const log = (...args) => { if (!flags.quiet) console.error(`[loadgen ${flags.target}]`, ...args) }
  const R = flags.sessions
  const C = flags.clients
  const E = flags.rate
  const D = flags.duration
  const W = Math.max(1, Math.min(flags.workers, R))

  // ---- server process ----
  const serverPid = flags.serverPid || findListeningPid(flags.port)
  if (!serverPid) throw new Error(`no process found listening on port ${flags.port}; pass --server-pid`)
  const baseline = readMem(serverPid)
  const sampler = new ProcSampler(serverPid, 250).start()
  const watched = String(flags.watchPids).split(',').filter(Boolean).map((pid) => new ProcSampler(Number(pid), 1000).start())
  log(`server pid ${serverPid}, RSS before load ${mib(baseline.rssKiB)} MiB`)

  // ---- connect ----
  const t0 = now()
  const rooms = await createRooms(info, R, { prefix: 'load' })
  log(`${R} rooms ready in ${round((now() - t0) / 1000, 1)} s`)
  const shards = []
  for (let k = 0; k < W; k++) {
    const first = Math.floor(k * R / W)
    const last = Math.floor((k + 1) * R / W)
    const splitWsBase = flags.splitPort ? targetInfo(flags.target, flags.splitPort).wsBase : null
    const data = { shard: k, info, splitWsBase, rooms: rooms.slice(first, last), first, clients: C, rate: E, deleteRatio: flags.deleteRatio, connectBatch: Math.max(1, Math.floor(flags.connectBatch / W)) }
    shards.push(W === 1 ? localShard(data) : workerShard(data))
  }
  await Promise.all(shards.map((s) => s.connect()))
  const connectSeconds = round((now() - t0) / 1000, 2)
  log(`${R * C} clients synced in ${connectSeconds} s; settling 2 s`)
  await sleep(2000) // let awareness greetings die down
  const memAfterConnect = readMem(serverPid)

  // ---- edit ----
  const genCpu = selfCpuMark()
  const machineBusy0 = readMachineBusySeconds()
  sampler.markCpu()
  for (const w of watched) w.markCpu()
  let progressTimer = null
  const editStart = now()
  if (!flags.quiet) {
    progressTimer = setInterval(async () => {
      const p = W === 1 ? [await shards[0].progress()] : [] // workers are busy; keep it cheap
      if (p.length) log(`t=${round((now() - editStart) / 1000, 0)} s edits=${p[0].edits} delivered=${p[0].delivered} inflight=${p[0].inflight}`)
      else log(`t=${round((now() - editStart) / 1000, 0)} s`)
    }, 5000)
  }
  const editResults = await Promise.all(shards.map((s) => s.edit(D)))
  const serverCpu = sampler.cpuSinceMark()
  const watchedCpu = watched.map((w) => ({ pid: w.pid, cpu: w.cpuSinceMark() }))
  for (const w of watched) w.stop()
  const generatorCpu = selfCpuSince(genCpu)
  const machineBusyPercent = round(100 * (readMachineBusySeconds() - machineBusy0) / generatorCpu.wallSeconds, 1)
  if (progressTimer) clearInterval(progressTimer)
  const memAtEnd = readMem(serverPid)
  const editWall = Math.max(...editResults.map((r) => r.editWallSeconds))
  log(`editing done; waiting up to ${flags.settle} s for delivery`)

  // ---- settle + convergence ----
  const settles = await Promise.all(shards.map((s) => s.settle(flags.settle)))
  const verifies = await Promise.all(shards.map((s) => s.verify()))
  const serverMem = sampler.stop()
  const finalMem = readMem(serverPid)
  const stats = await Promise.all(shards.map((s) => s.finish()))

  // ---- aggregate ----
  const sum = (xs, f) => xs.reduce((a, x) => a + f(x), 0)
  const allLat = new Float64Array(sum(stats, (s) => s.latencies.length))
  let off = 0
  for (const s of stats) { allLat.set(s.latencies, off); off += s.latencies.length }
  const lat = percentiles(allLat)
  // Latency by the second in which the edit was made: shows stalls and their period.
  const editStartAbs = performance.timeOrigin + editStart
  const buckets = Array.from({ length: Math.max(1, Math.round(editWall)) }, () => [])
  for (const s of stats) {
    for (let i = 0; i < s.latencies.length; i++) {
      const b = Math.floor((s.sentAt[i] - editStartAbs) / 1000)
      buckets[Math.max(0, Math.min(buckets.length - 1, b))].push(s.latencies[i])
    }
  }
  const timeline = buckets.map((b, second) => ({ second, ...percentiles(b) }))
  const editsSent = sum(stats, (s) => s.editsSent)
  const expectedEdits = R * C * E * D
  const undelivered = sum(stats, (s) => s.undelivered)
  const diverged = verifies.flatMap((v) => v.diverged)
  const freshSynced = sum(verifies, (v) => v.synced)
  const freshMatched = sum(verifies, (v) => v.matched)
  const closes = stats.flatMap((s) => s.events.connectionClose)
  const countBy = (list, key) => {
    const out = {}
    for (const x of list) out[key(x)] = (out[key(x)] || 0) + 1
    return out
  }
  const result = {
    label: flags.label || `${R}x${C}x${E}/s ${D}s`,
    target: flags.target,
    time: new Date().toISOString(),
    machine: machine(),
    config: { sessions: R, clients: C, connections: R * C, ratePerClient: E, durationSeconds: D, deleteRatio: flags.deleteRatio, offeredEditsPerSecond: R * C * E, generatorThreads: W, splitPort: flags.splitPort || null },
    watched: watchedCpu,
    connect: { seconds: connectSeconds },
    edits: {
      sent: editsSent,
      offered: expectedEdits,
      achievedPercent: round(100 * editsSent / expectedEdits, 1),
      deletes: sum(stats, (s) => s.deletesSent),
      editWallSeconds: round(editWall, 2),
      perSecond: round(editsSent / editWall, 1)
    },
    latencyMs: lat,
    latencyTimeline: timeline.map(({ second, count, p50, p99, max }) => ({ second, count, p50, p99, max })),
    delivery: {
      expectedArrivals: editsSent * (C - 1),
      arrivals: allLat.length,
      undeliveredMarkers: undelivered,
      allDelivered: undelivered === 0,
      settleSeconds: round(Math.max(...settles.map((s) => s.settleSeconds)), 2),
      duplicateArrivals: sum(stats, (s) => s.duplicateArrivals),
      unknownMarkers: sum(stats, (s) => s.unknownMarkers),
      foreignMarkers: sum(stats, (s) => s.foreignMarkers),
      remoteUpdatesPerSecond: round(sum(stats, (s) => s.remoteUpdatesInWindow) / editWall, 1),
      remoteUpdatesTotal: sum(stats, (s) => s.remoteUpdatesTotal)
    },
    convergence: {
      converged: diverged.length === 0 && undelivered === 0 && freshMatched === R,
      sessionsIdentical: R - diverged.length,
      divergedSessions: diverged.slice(0, 10),
      freshClientsSynced: freshSynced,
      freshClientsMatched: freshMatched,
      freshMismatches: verifies.flatMap((v) => v.mismatches).slice(0, 5),
      sessions: R,
      meanTextLength: round(sum(verifies, (v) => v.textLengthSum) / R, 0)
    },
    connectionEvents: {
      closes: closes.length,
      closeCodes: countBy(closes, (e) => String(e.code)),
      closeSamples: closes.slice(0, 10),
      errors: sum(stats, (s) => s.events.connectionError),
      disconnects: sum(stats, (s) => s.events.disconnects),
      reconnects: sum(stats, (s) => s.events.reconnects),
      terminal: stats.flatMap((s) => s.events.terminal).slice(0, 10)
    },
    server: {
      pid: serverPid,
      rssBeforeMiB: mib(baseline.rssKiB),
      rssAfterConnectMiB: mib(memAfterConnect.rssKiB),
      rssEndOfEditsMiB: mib(memAtEnd.rssKiB),
      rssFinalMiB: mib(finalMem.rssKiB),
      peakSampledRssMiB: mib(serverMem.maxSampledRssKiB),
      peakRssVmHWMMiB: mib(finalMem.hwmKiB),
      threads: finalMem.threads,
      cpu: serverCpu,
      samplerError: sampler.error
    },
    generator: {
      cpu: generatorCpu,
      eventLoopDelayMs: {
        p50: Math.max(...editResults.map((r) => r.loopDelayMs.p50)),
        p99: Math.max(...editResults.map((r) => r.loopDelayMs.p99)),
        max: Math.max(...editResults.map((r) => r.loopDelayMs.max))
      },
      rssMiB: round(process.memoryUsage().rss / 1048576, 1)
    },
    // all cores, % of one core; "others" is what neither the server nor this generator used
    machineCpu: {
      busyPercent: machineBusyPercent,
      // approximate (tick granularity, slightly different windows): clamped at 0
      othersPercent: Math.max(0, round(machineBusyPercent - serverCpu.cpuPercent - generatorCpu.cpuPercent, 1)),
      cores: machine().cpus
    }
  }
  writeJson(flags.json, result)
  printSummary(result)
  // destroy() cleared the providers' timers; exit explicitly anyway so a stray socket
  // can never keep the process alive.
  setTimeout(() => process.exit(0), 200).unref()
}

function printSummary (r) {
  const l = r.latencyMs
  const lines = [
    `== loadgen ${r.target}: ${r.label} (${r.config.connections} connections, ${r.config.offeredEditsPerSecond} edits/s offered, ${r.config.generatorThreads} generator thread(s)) ==`,
    `edits sent        ${r.edits.sent} (${r.edits.achievedPercent}% of offered, ${r.edits.perSecond}/s), deletes ${r.edits.deletes}`,
    `relay latency ms  p50 ${l.p50}  p95 ${l.p95}  p99 ${l.p99}  max ${l.max}  (mean ${l.mean}, n=${l.count})`,
    `p99 by second     ${r.latencyTimeline.map((b) => b.p99 == null ? '-' : Math.round(b.p99)).join(' ')}`,
    `delivered         ${r.delivery.arrivals}/${r.delivery.expectedArrivals} marker arrivals, undelivered ${r.delivery.undeliveredMarkers}, remote updates ${r.delivery.remoteUpdatesPerSecond}/s`,
    `convergence       ${r.convergence.converged ? 'OK' : 'FAILED'}: ${r.convergence.sessionsIdentical}/${r.convergence.sessions} sessions identical, fresh clients ${r.convergence.freshClientsMatched}/${r.convergence.sessions} matched (${r.convergence.freshClientsSynced} synced), mean text ${r.convergence.meanTextLength} chars`,
    `connections       closes ${r.connectionEvents.closes} ${JSON.stringify(r.connectionEvents.closeCodes)}, errors ${r.connectionEvents.errors}, reconnects ${r.connectionEvents.reconnects}`,
    `server            CPU ${r.server.cpu.cpuPercent}% of a core, disk writes ${r.server.cpu.diskWrittenMiB} MiB; RSS before ${r.server.rssBeforeMiB} MiB, after connect ${r.server.rssAfterConnectMiB}, end ${r.server.rssEndOfEditsMiB}, peak sampled ${r.server.peakSampledRssMiB}, VmHWM ${r.server.peakRssVmHWMMiB} MiB`,
    ...r.watched.map((w) => `pid ${w.pid}         CPU ${w.cpu?.cpuPercent}% of a core`),
    `generator         CPU ${r.generator.cpu.cpuPercent}% of a core, event-loop delay p99 ${r.generator.eventLoopDelayMs.p99} ms (max ${r.generator.eventLoopDelayMs.max})`,
    `machine           ${r.machineCpu.busyPercent}% busy of ${r.machineCpu.cores * 100}% (other processes ${r.machineCpu.othersPercent}%)`
  ]
  console.log(lines.join('\n'))
}
