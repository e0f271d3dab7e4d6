#!/usr/bin/env node
// Idle-connection memory benchmark: opens N = sessions x clients idle, synced
// y-websocket connections to pairpad or the reference server on 127.0.0.1 and
// reports the server's RSS once all are synced and settled (plus the peak).
//
// Clients are lightweight (raw `ws` sockets speaking the y-websocket sync and
// awareness messages, no Y.Doc kept per connection), because this process holds
// all N sockets too. Per session:
//   1. the first client (the writer) sends its document, a few lines of code in
//      Y.Text "code", as a sync Update, then SyncStep1; the server's SyncStep2 reply
//      completes its sync (messages on a connection are handled in order, so the
//      content is on the server by then). It answers the server's SyncStep1 with a
//      SyncStep2 as a stock client would;
//   2. once every writer has synced, the other clients join with an empty
//      SyncStep1; each must receive a SyncStep2 that decodes to exactly the
//      writer's text (checked in a throw-away Y.Doc).
// Every client then announces itself once through awareness (user name and
// colour) like an editor tab would, and stays idle. Connections open in batches.

import * as Y from 'yjs'
import WebSocket from 'ws'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import {
  parseFlags, targetInfo, createRooms, findListeningPid, ProcSampler, readMem,
  selfCpuMark, selfCpuSince, percentiles, round, mib, writeJson, machine, sleep
} from './common.mjs'

const USAGE = `usage: node bench/idle.mjs --target pairpad|reference --port PORT [flags]
  --sessions R       sessions                                     [2500]
  --clients C        connections per session (first one writes)   [4]
  --lines L          lines of code per document                   [6]
  --batch N          connections opened at once                   [250]
  --settle S         seconds to wait after the last sync          [15]
  --timeout T        seconds one connection may take to sync      [30]
  --no-awareness     skip the awareness announcement
  --server-pid PID   server process (default: whoever listens on --port)
  --label TEXT       scenario name in the output
  --json FILE        write the JSON result here
  --quiet            no progress lines`

const flags = parseFlags(process.argv.slice(2).map((a) => a === '--no-awareness' ? '--awareness=false' : a), {
  target: '',
  port: 0,
  sessions: 2500,
  clients: 4,
  lines: 6,
  batch: 250,
  settle: 15,
  timeout: 30,
  awareness: true,
  serverPid: 0,
  label: '',
  json: '',
  quiet: false
}, USAGE)
if (!flags.port) throw new Error('--port is required\n' + USAGE)
if (flags.clients < 1 || flags.sessions < 1) throw new Error('--sessions and --clients must be at least 1')
const info = targetInfo(flags.target, flags.port)
const log = (...args) => { if (!flags.quiet) console.error(`[idle ${flags.target}]`, ...args) }
const R = flags.sessions
const C = flags.clients
const N = R * C

const MSG_SYNC = 0
const MSG_AWARENESS = 1
const SYNC_STEP1 = 0
const SYNC_STEP2 = 1
const SYNC_UPDATE = 2

const frame = (write) => {
  const e = encoding.createEncoder()
  write(e)
  return encoding.toUint8Array(e)
}
const syncFrame = (kind, payload) => frame((e) => {
  encoding.writeVarUint(e, MSG_SYNC)
  encoding.writeVarUint(e, kind)
  encoding.writeVarUint8Array(e, payload)
})
const EMPTY_SV = Y.encodeStateVector(new Y.Doc())
const EMPTY_UPDATE = Y.encodeStateAsUpdate(new Y.Doc())
const STEP1_EMPTY = syncFrame(SYNC_STEP1, EMPTY_SV)
const STEP2_EMPTY = syncFrame(SYNC_STEP2, EMPTY_UPDATE)

function awarenessFrame (clientId, name) {
  const state = JSON.stringify({ user: { name, color: '#' + (clientId & 0xffffff).toString(16).padStart(6, '0') } })
  const update = frame((e) => {
    encoding.writeVarUint(e, 1)
    encoding.writeVarUint(e, clientId)
    encoding.writeVarUint(e, 1) // clock
    encoding.writeVarString(e, state)
  })
  return frame((e) => {
    encoding.writeVarUint(e, MSG_AWARENESS)
    encoding.writeVarUint8Array(e, update)
  })
}

/** The document the first client of session `s` writes: a few lines of code. */
function sessionDocument (s) {
  const doc = new Y.Doc()
  const lines = [`// session ${s}: idle benchmark`, `function f${s} (x) {`]
  for (let i = 2; i < flags.lines - 2; i++) lines.push(`  x = x * ${i} + ${s % 97} // line ${i}`)
  lines.push('  return x', '}')
  const text = lines.slice(0, Math.max(1, flags.lines)).join('\n') + '\n'
  doc.getText('code').insert(0, text)
  const update = Y.encodeStateAsUpdate(doc)
  const sv = Y.encodeStateVector(doc)
  doc.destroy()
  return { text, update, sv }
}

const failures = []
const stats = { synced: 0, verified: 0, closedAfterSync: 0, closeCodes: {} }
/** Per connection: ms from starting the WebSocket to receiving the server's SyncStep2. */
const syncMs = { writers: [], readers: [] }
const conns = []

/**
 * Opens one lightweight client; resolves when its sync completes (true) or it
 * fails (false, recorded in `failures`).
 */
function openClient (s, c, room, docInfo) {
  return new Promise((resolve) => {
    const started = performance.now()
    const ws = new WebSocket(`${info.wsBase}/${room}`, { perMessageDeflate: false })
    ws.binaryType = 'nodebuffer'
    const conn = { ws, s, c, synced: false, closed: null }
    conns.push(conn)
    const writer = c === 0
    let done = false
    const finish = (ok, why) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (!ok) failures.push({ session: s, client: c, why })
      resolve(ok)
    }
    const timer = setTimeout(() => finish(false, `no sync within ${flags.timeout} s`), flags.timeout * 1000)
    ws.on('open', () => {
      if (writer) {
        ws.send(syncFrame(SYNC_UPDATE, docInfo.update))
        ws.send(syncFrame(SYNC_STEP1, docInfo.sv))
      } else {
        ws.send(STEP1_EMPTY)
      }
    })
    ws.on('message', (data) => {
      const decoder = decoding.createDecoder(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
      try {
        while (decoding.hasContent(decoder)) {
          const type = decoding.readVarUint(decoder)
          if (type === MSG_AWARENESS) {
            decoding.readVarUint8Array(decoder)
            continue
          }
          if (type !== MSG_SYNC) return // unknown message type: ignore the rest of the frame
          const kind = decoding.readVarUint(decoder)
          const payload = decoding.readVarUint8Array(decoder)
          if (kind === SYNC_STEP1) {
            ws.send(writer ? syncFrame(SYNC_STEP2, docInfo.update) : STEP2_EMPTY)
          } else if (kind === SYNC_STEP2 && !conn.synced) {
            if (!writer) {
              const doc = new Y.Doc()
              Y.applyUpdate(doc, payload)
              const got = doc.getText('code').toString()
              doc.destroy()
              if (got !== docInfo.text) {
                finish(false, `synced text differs: ${got.length} chars, expected ${docInfo.text.length}`)
                return
              }
              stats.verified++
            }
            conn.synced = true
            stats.synced++
            syncMs[writer ? 'writers' : 'readers'].push(performance.now() - started)
            if (flags.awareness) ws.send(awarenessFrame((Math.random() * 0xffffffff) >>> 0, `user-${s}-${c}`))
            finish(true)
          }
        }
      } catch (err) {
        finish(false, `bad frame from server: ${err.message}`)
      }
    })
    ws.on('error', (err) => { conn.error = err.message })
    ws.on('close', (code, reason) => {
      conn.closed = { code, reason: reason.toString('utf8') }
      if (conn.synced) stats.closedAfterSync++
      stats.closeCodes[code] = (stats.closeCodes[code] || 0) + 1
      finish(false, `closed before sync: ${code} ${reason.toString('utf8')}${conn.error ? ' (' + conn.error + ')' : ''}`)
    })
  })
}

async function openAll (jobs, what) {
  const t0 = performance.now()
  let ok = 0
  for (let i = 0; i < jobs.length; i += flags.batch) {
    const results = await Promise.all(jobs.slice(i, i + flags.batch).map((job) => job()))
    ok += results.filter(Boolean).length
    if (!flags.quiet && ((i / flags.batch) % 10 === 9 || i + flags.batch >= jobs.length)) {
      log(`${what}: ${Math.min(i + flags.batch, jobs.length)}/${jobs.length} opened, ${ok} synced, RSS ${mib(readMem(serverPid).rssKiB)} MiB`)
    }
  }
  return { ok, seconds: round((performance.now() - t0) / 1000, 2) }
}

const serverPid = flags.serverPid || findListeningPid(flags.port)
if (!serverPid) throw new Error(`no process found listening on port ${flags.port}; pass --server-pid`)
const before = readMem(serverPid)
const sampler = new ProcSampler(serverPid, 250).start()
const genCpu = selfCpuMark()
log(`server pid ${serverPid}, RSS before ${mib(before.rssKiB)} MiB; creating ${R} sessions`)

const tRooms = performance.now()
const rooms = await createRooms(info, R, { prefix: 'idle' })
const roomSeconds = round((performance.now() - tRooms) / 1000, 2)
const afterRooms = readMem(serverPid)
const docs = rooms.map((_, s) => sessionDocument(s))
log(`${R} sessions in ${roomSeconds} s; RSS ${mib(afterRooms.rssKiB)} MiB; opening ${R} writers`)
sampler.markCpu()
const writers = await openAll(rooms.map((room, s) => () => openClient(s, 0, room, docs[s])), 'writers')
const readerJobs = []
for (let c = 1; c < C; c++) rooms.forEach((room, s) => readerJobs.push(() => openClient(s, c, room, docs[s])))
const readers = await openAll(readerJobs, 'readers')
const connectCpu = sampler.cpuSinceMark()
const afterSync = readMem(serverPid)
log(`${stats.synced}/${N} synced (${stats.verified} verified the writer's text); settling ${flags.settle} s`)

const settleSamples = []
sampler.markCpu()
for (let i = 0; i < flags.settle; i++) {
  await sleep(1000)
  settleSamples.push(readMem(serverPid).rssKiB)
}
const idleCpu = sampler.cpuSinceMark()
const settled = readMem(serverPid)
const openNow = conns.filter((c) => c.ws.readyState === WebSocket.OPEN).length
const syncedOpen = conns.filter((c) => c.synced && c.ws.readyState === WebSocket.OPEN).length
const serverMem = sampler.stop()
const generatorCpu = selfCpuSince(genCpu)

const result = {
  label: flags.label || `${N} idle (${R}x${C})`,
  target: flags.target,
  time: new Date().toISOString(),
  machine: machine(),
  config: { sessions: R, clients: C, connections: N, linesPerDocument: flags.lines, bytesPerDocument: docs[0]?.text.length, batch: flags.batch, awareness: flags.awareness },
  sessionsCreateSeconds: roomSeconds,
  connect: { writers, readers, serverCpu: connectCpu, syncMsWriters: percentiles(syncMs.writers), syncMsReaders: percentiles(syncMs.readers) },
  sync: {
    synced: stats.synced,
    verifiedReaders: stats.verified,
    expectedReaders: R * (C - 1),
    allSynced: stats.synced === N && failures.length === 0,
    openAfterSettle: openNow,
    syncedAndOpenAfterSettle: syncedOpen,
    closedAfterSync: stats.closedAfterSync,
    closeCodes: stats.closeCodes,
    failures: failures.length,
    failureSamples: failures.slice(0, 10)
  },
  server: {
    pid: serverPid,
    rssBeforeMiB: mib(before.rssKiB),
    rssAfterSessionsMiB: mib(afterRooms.rssKiB),
    rssAfterSyncMiB: mib(afterSync.rssKiB),
    rssSettledMiB: mib(settled.rssKiB),
    rssSettleSamplesMiB: settleSamples.map(mib),
    peakSampledRssMiB: mib(serverMem.maxSampledRssKiB),
    peakRssVmHWMMiB: mib(settled.hwmKiB),
    perConnectionKiB: round((settled.rssKiB - before.rssKiB) / N, 1),
    idleCpu,
    threads: settled.threads
  },
  generator: { cpu: generatorCpu, rssMiB: round(process.memoryUsage().rss / 1048576, 1) }
}
writeJson(flags.json, result)
console.log([
  `== idle ${result.target}: ${result.label} ==`,
  `sync              ${result.sync.synced}/${N} synced, ${result.sync.verifiedReaders}/${result.sync.expectedReaders} readers got the writer's text, ${result.sync.syncedAndOpenAfterSettle} synced and still open after ${flags.settle} s, failures ${result.sync.failures}`,
  `connect           writers ${writers.seconds} s, readers ${readers.seconds} s (sessions created in ${roomSeconds} s); time to sync per connection: writers p50 ${result.connect.syncMsWriters.p50} / p99 ${result.connect.syncMsWriters.p99} ms, readers p50 ${result.connect.syncMsReaders.p50} / p99 ${result.connect.syncMsReaders.p99} ms`,
  `server RSS        before ${result.server.rssBeforeMiB} MiB, after sessions ${result.server.rssAfterSessionsMiB}, after sync ${result.server.rssAfterSyncMiB}, settled ${result.server.rssSettledMiB} MiB (${result.server.perConnectionKiB} KiB/connection), peak ${result.server.peakRssVmHWMMiB} MiB`,
  `server CPU        idle ${idleCpu.cpuPercent}% of a core over ${flags.settle} s`,
  `generator         CPU ${generatorCpu.cpuPercent}% of a core, RSS ${result.generator.rssMiB} MiB`
].join('\n'))

// Close everything in bounded batches, then exit.
for (let i = 0; i < conns.length; i += 1000) {
  for (const c of conns.slice(i, i + 1000)) c.ws.terminate()
  await sleep(20)
}
setTimeout(() => process.exit(0), 200).unref()
