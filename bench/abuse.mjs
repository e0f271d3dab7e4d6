#!/usr/bin/env node
// Abuse benchmark (issue 11): each attack from the issue against the release
// binary with its DEFAULT limits, one freshly started server per attack (so one
// attack's damage does not skew the next one's numbers), while two stock Yjs
// typists in a neighbour session keep editing. Per attack it prints:
//
//   - the slowest /api/health answer while the attack ran (polled every 100 ms,
//     one request at a time; a request still unanswered counts with its age),
//   - RSS growth: peak VmRSS (sampled every 100 ms, and VmHWM when it rose)
//     minus the baseline taken just before the attack, and what is left over
//     the baseline once it is over,
//   - the neighbours' worst relay time: from one typist's edit to its arrival
//     in the other typist's document, over edits made while the attack ran and
//     in the second after it (an edit not delivered at the end counts with its age),
//   - what the attacker got: its close code and reason, or what happened.
//
// It measures; it does not assert (the assertions are in
// tests/interop/abuse.test.mjs, which runs the same attacks with small limits).
// Only 127.0.0.1 is used.

import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseFlags, writeJson, machine, round } from './common.mjs'
import {
  Neighbours, HealthPoller, RssSampler, rssKiB, mib, sleep, fillCode, yClient,
  syncStep1FloodAttack, awarenessIdFloodAttack, bigValuesAttack, neverReaderAttack,
  syncRequestsAttack, messagesPerFrameAttack, sessionIpAttack, slowlorisAttack, noPongAttack
} from '../tests/interop/support/attacks.mjs'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const ALL = ['a', 'b', 'c', 'c-meta', 'd', 'e', 'f', 'g', 'h', 'i']

const USAGE = `usage: node bench/abuse.mjs [flags]
  --bin PATH        pairpad binary                              [target/release/pairpad]
  --attacks LIST    comma-separated, from ${ALL.join(',')}      [all]
  --cap S           longest an attack may run before it is called off (s)  [60]
  --type-ms MS      the neighbours type one edit every MS ms, taking turns  [100]
  --args "FLAGS"    extra pairpad flags (default: none, the defaults are the point)
  --json FILE       write the results as JSON
Attacks (issue 11):
  a       one ~800 KB frame of 200,000 SyncStep1 into a session with 1.5 MB of code
  b       one frame announcing 100,000 awareness ids, then 4 frames of 50,000 null states
  c       500 KB values into doc.getMap('junk') (up to 20 MB, paced under 1 MiB/s)
  c-meta  500 KB values into doc.getMap('meta') until the document passes its limit (up to 12)
  d       a WebSocket that never reads while another participant streams 4000-byte
          presence states at 180/s
  e       200 SyncStep1, one per frame, into a session with 1.5 MB of code
  f       one frame of 65 awareness queries
  g       9 connections to one session from 127.0.0.1
  h       50 connections sending a partial HTTP request header and nothing more
  i       a WebSocket client that answers no ping`

const flags = parseFlags(process.argv.slice(2), {
  bin: path.join(ROOT, 'target', 'release', 'pairpad'),
  attacks: ALL.join(','),
  cap: 60,
  typeMs: 100,
  args: '',
  json: ''
}, USAGE)
const attacks = flags.attacks.split(',').map((s) => s.trim()).filter(Boolean)
for (const a of attacks) if (!ALL.includes(a)) throw new Error(`unknown attack ${a}\n${USAGE}`)
const capMs = flags.cap * 1000
const log = (...args) => console.error(`[abuse ${new Date().toISOString().slice(11, 19)}]`, ...args)
process.setMaxListeners(0) // every WebsocketProvider adds a process 'exit' listener

// ---- the server --------------------------------------------------------------------------------

const live = new Set()
process.on('exit', () => { for (const p of live) try { p.kill('SIGKILL') } catch {} })
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130))

/** Starts the binary with its defaults on 127.0.0.1:<ephemeral> and a fresh data directory. */
async function launch () {
  if (!fs.existsSync(flags.bin)) throw new Error(`${flags.bin} not found (build it with ./x build)`)
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pairpad-abuse-'))
  const extra = flags.args.trim() ? flags.args.trim().split(/\s+/) : []
  const proc = spawn(flags.bin, ['--addr', '127.0.0.1:0', '--data-dir', dataDir, '--log-json', ...extra], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  live.add(proc)
  proc.once('exit', () => live.delete(proc))
  const logs = []
  const port = await new Promise((resolve, reject) => {
    let buffered = ''
    const timer = setTimeout(() => reject(new Error(`pairpad did not start within 20 s:\n${logs.join('\n')}`)), 20_000)
    proc.stdout.setEncoding('utf8')
    proc.stdout.on('data', (chunk) => {
      buffered += chunk
      let nl
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        logs.push(line)
        if (logs.length > 200) logs.shift()
        try {
          const f = JSON.parse(line).fields ?? {}
          if (String(f.message).startsWith('pairpad listening')) { clearTimeout(timer); resolve(Number(String(f.addr).split(':').pop())) }
        } catch {}
      }
    })
    proc.stderr.setEncoding('utf8')
    proc.stderr.on('data', (chunk) => logs.push(chunk.trimEnd()))
    proc.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`pairpad exited (${code ?? signal}) before listening:\n${logs.join('\n')}`)) })
  })
  const server = {
    proc,
    port,
    dataDir,
    logs,
    url: `http://127.0.0.1:${port}`,
    wsBase: `ws://127.0.0.1:${port}/ws`,
    wsUrl: (id) => `ws://127.0.0.1:${port}/ws/${id}`,
    async createSession () {
      const res = await fetch(`${server.url}/api/sessions/create`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      const text = await res.text()
      if (res.status !== 201) throw new Error(`POST /api/sessions/create -> ${res.status} ${text}`)
      return JSON.parse(text)
    },
    async dispose () {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL')
        await new Promise((resolve) => proc.once('exit', resolve))
      }
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
  return server
}

/** Bytes the data directory takes on disk. */
function diskBytes (dir) {
  let total = 0
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name)
    try {
      if (entry.isDirectory()) total += diskBytes(p)
      else total += fs.statSync(p).blocks * 512
    } catch {}
  }
  return total
}

const describeClose = (close) => close ? `${close.code} ${JSON.stringify(close.reason)}` : null

// ---- the attacks, with default limits ----------------------------------------------------------
// Each: optional setup(server) -> context, then run(server, context) -> {outcome, ...details}.

const ATTACKS = {
  a: {
    title: '200,000 SyncStep1 in one frame, 1.5 MB code',
    async setup (server) {
      const victim = (await server.createSession()).id
      await fillCode(server, victim, 1_500_000)
      return { victim }
    },
    async run (server, { victim }) {
      const r = await syncStep1FloodAttack(server, victim, { count: 200_000, capMs })
      return { outcome: describeClose(r.close) ?? `not closed within ${flags.cap} s`, close: r.close, syncStep2Answers: r.syncStep2Answers }
    }
  },
  b: {
    title: '100,000 awareness ids + 4 x 50,000 nulls',
    async setup (server) {
      const victim = (await server.createSession()).id
      const observer = yClient(server, victim, { name: 'observer' })
      await observer.synced()
      return { victim, observer }
    },
    async run (server, { victim, observer }) {
      const r = await awarenessIdFloodAttack(server, victim, { ids: 100_000, nullFrames: 4, nullsPerFrame: 50_000, capMs, observer })
      r.attacker.terminate()
      const held = [...observer.awareness.getStates().keys()].filter((id) => id === r.ownId || id >= 1_000_000).length
      return {
        outcome: describeClose(r.close) ?? (r.markerSeen ? `not closed; the observer holds ${held} of its ids` : `not closed nor served within ${flags.cap} s`),
        close: r.close,
        observerHoldsIds: held
      }
    },
    cleanup: ({ observer }) => observer.destroy()
  },
  c: {
    title: "500 KB values into getMap('junk')",
    async setup (server) {
      const victim = (await server.createSession()).id
      const observer = yClient(server, victim, { name: 'observer' })
      await observer.synced()
      return { victim, observer }
    },
    async run (server, { victim, observer }) {
      // 40 x 500 KB = 20 MB, as in the issue; 600 ms apart stays under 1 MiB/s.
      const r = await bigValuesAttack(server, victim, { mapName: 'junk', valueBytes: 500_000, maxValues: 40, watcher: observer, capMs: Math.min(capMs, 10_000), paceMs: 600 })
      return {
        outcome: describeClose(r.close) ?? `not closed after ${r.written.length} values`,
        close: r.close,
        valuesWritten: r.written.length,
        valuesRelayed: r.received.length
      }
    },
    cleanup: ({ observer }) => observer.destroy()
  },
  'c-meta': {
    title: "500 KB values into getMap('meta')",
    async setup (server) {
      const victim = (await server.createSession()).id
      const observer = yClient(server, victim, { name: 'observer' })
      await observer.synced()
      return { victim, observer }
    },
    async run (server, { victim, observer }) {
      const r = await bigValuesAttack(server, victim, { mapName: 'meta', valueBytes: 500_000, maxValues: 12, watcher: observer, capMs: Math.min(capMs, 10_000), paceMs: 600 })
      return {
        outcome: describeClose(r.close) ?? `not closed after ${r.written.length} values (${mib(r.written.length * 500_000 / 1024)} MiB)`,
        close: r.close,
        valuesWritten: r.written.length,
        valuesRelayed: r.received.length
      }
    },
    cleanup: ({ observer }) => observer.destroy()
  },
  d: {
    title: 'a reader that never reads + 4000-byte presence at 180/s',
    async setup (server) {
      return { victim: (await server.createSession()).id }
    },
    async run (server, { victim }) {
      const r = await neverReaderAttack(server, victim, { stateBytes: 4000, perSecond: 180, capMs })
      const streamer = r.streamer.close ? `streamer closed ${describeClose(r.streamer.close)}` : 'streamer still open'
      r.streamer.terminate()
      r.reader.socket.destroy()
      const reader = r.readerClosedAfterMs === null
        ? `reader not closed within ${flags.cap} s (${mib(r.streamedBytes / 1024)} MiB streamed)`
        : `reader closed after ${round(r.readerClosedAfterMs / 1000, 1)} s${r.ending.close ? ` with ${describeClose(r.ending.close)}` : ' (no close frame reached it)'}`
      return { outcome: `${reader}; ${streamer}`, close: r.ending.close, readerClosedAfterMs: r.readerClosedAfterMs, streamedMiB: mib(r.streamedBytes / 1024) }
    }
  },
  e: {
    title: '200 SyncStep1 over 200 frames, 1.5 MB code',
    async setup (server) {
      const victim = (await server.createSession()).id
      await fillCode(server, victim, 1_500_000)
      return { victim }
    },
    async run (server, { victim }) {
      const r = await syncRequestsAttack(server, victim, { count: 200, capMs })
      return { outcome: `${describeClose(r.close) ?? `not closed within ${flags.cap} s`} (${r.answers} answered)`, close: r.close, answers: r.answers }
    }
  },
  f: {
    title: '65 messages in one frame',
    async setup (server) {
      return { victim: (await server.createSession()).id }
    },
    async run (server, { victim }) {
      const r = await messagesPerFrameAttack(server, victim, { count: 65, capMs: Math.min(capMs, 10_000) })
      return { outcome: describeClose(r.close) ?? 'not closed', close: r.close }
    }
  },
  g: {
    title: '9 connections to one session from one address',
    async setup (server) {
      return { victim: (await server.createSession()).id }
    },
    async run (server, { victim }) {
      const r = await sessionIpAttack(server, victim, { count: 9 })
      for (const c of r.clients) c.terminate()
      const refused = r.closes.map((c, i) => c && `#${i + 1}: ${describeClose(c)}`).filter(Boolean)
      return { outcome: refused.length ? refused.join('; ') : 'all 9 admitted', close: r.closes[8] }
    }
  },
  h: {
    title: '50 partial HTTP headers (slowloris)',
    async run (server) {
      const r = await slowlorisAttack(server.port, { sockets: 50, capMs })
      const closed = r.closedAfterMs.filter((ms) => ms !== null)
      const slowest = closed.length ? Math.max(...closed) : null
      return {
        outcome: `${closed.length}/50 closed by the server${slowest !== null ? `, the last after ${round(slowest / 1000, 1)} s` : ''}` +
          (r.responses.find(Boolean) ? ` (answer: ${r.responses.find(Boolean)})` : ''),
        closedSockets: closed.length
      }
    }
  },
  i: {
    title: 'a WebSocket client that answers no ping',
    async setup (server) {
      return { victim: (await server.createSession()).id }
    },
    async run (server, { victim }) {
      const r = await noPongAttack(server, victim, { capMs })
      return { outcome: `${describeClose(r.close) ?? `not closed within ${flags.cap} s`} after ${round(r.livedMs / 1000, 1)} s, ${r.pings} pings`, close: r.close, pings: r.pings }
    }
  }
}

// ---- one attack --------------------------------------------------------------------------------

async function measure (name) {
  const spec = ATTACKS[name]
  const server = await launch()
  const pid = server.proc.pid
  let neighbours = null
  let context = {}
  try {
    neighbours = await Neighbours.start(server, { intervalMs: flags.typeMs })
    if (spec.setup) context = await spec.setup(server)
    await sleep(1000) // let setup's work (folds, snapshots) settle before the baseline
    const rss = new RssSampler(pid, 100).start()
    const diskBefore = diskBytes(server.dataDir)
    const health = new HealthPoller(server.url, { intervalMs: 100, timeoutMs: capMs + 30_000 }).start()
    log(`${name}: ${spec.title} (server pid ${pid}, RSS ${mib(rss.baselineKiB)} MiB)`)
    const t0 = performance.now()
    let result
    try {
      result = await spec.run(server, context)
    } catch (err) {
      result = { outcome: `attack failed: ${err.message.split('\n')[0]}` }
    }
    const t1 = performance.now()
    // Afterwards: 1 s more of edits and health answers (the after-effects of an
    // attack over in a few ms count too), then the neighbours deliver what they
    // typed (bounded) and memory settles.
    await sleep(1000)
    const slowestHealthMs = health.slowestMs(t0, t1 + 1000)
    const peakKiB = rss.peakKiB()
    const delivered = await waitUntil(() => neighbours.pending === 0, 30_000)
    const worstRelayMs = neighbours.worstRelayMs(t0 - flags.typeMs, t1 + 1000)
    await sleep(2000)
    const afterKiB = server.proc.exitCode === null ? rssKiB(pid) : null
    health.stop()
    rss.stop()
    const row = {
      attack: name,
      title: spec.title,
      outcome: result.outcome,
      attackSeconds: round((t1 - t0) / 1000, 1),
      slowestHealthMs: round(slowestHealthMs, 0),
      healthFailures: health.failures.filter((f) => f.at >= t0 && f.at <= t1).length,
      rssBaselineMiB: mib(rss.baselineKiB),
      rssPeakGrowthMiB: mib(peakKiB - rss.baselineKiB),
      rssAfterGrowthMiB: afterKiB === null ? null : mib(afterKiB - rss.baselineKiB),
      diskGrowthMiB: mib((diskBytes(server.dataDir) - diskBefore) / 1024),
      neighboursWorstRelayMs: round(worstRelayMs, 0),
      neighboursDelivered: delivered,
      neighboursClosed: neighbours.closes,
      serverExited: server.proc.exitCode !== null || server.proc.signalCode !== null,
      details: result
    }
    log(`${name}: ${row.outcome} | health ${row.slowestHealthMs} ms | RSS +${row.rssPeakGrowthMiB} MiB peak, +${row.rssAfterGrowthMiB} MiB after | relay ${row.neighboursWorstRelayMs} ms`)
    return row
  } finally {
    try { spec.cleanup?.(context) } catch {}
    neighbours?.destroy()
    await server.dispose()
  }
}

async function waitUntil (predicate, timeout) {
  const deadline = Date.now() + timeout
  while (!predicate()) {
    if (Date.now() >= deadline) return false
    await sleep(50)
  }
  return true
}

// ---- main --------------------------------------------------------------------------------------

const rows = []
for (const name of attacks) {
  try {
    rows.push(await measure(name))
  } catch (err) {
    log(`${name}: could not run: ${err.message}`)
    rows.push({ attack: name, title: ATTACKS[name].title, outcome: `could not run: ${err.message.split('\n')[0]}` })
  }
}

const cell = (v, unit = '') => (v === null || v === undefined ? '-' : `${v}${unit}`)
const lines = [
  `pairpad abuse benchmark: ${flags.bin} with ${flags.args.trim() ? `flags ${flags.args.trim()}` : 'default flags'}; neighbours type every ${flags.typeMs} ms`,
  '',
  '| attack | what the attacker got | slowest health | RSS growth peak / after | neighbours\' worst relay | data dir growth |',
  '|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.attack}: ${r.title} | ${r.outcome}${r.serverExited ? ' (SERVER EXITED)' : ''} | ${cell(r.slowestHealthMs, ' ms')}${r.healthFailures ? ` (${r.healthFailures} failed)` : ''} | ${cell(r.rssPeakGrowthMiB, ' MiB')} / ${cell(r.rssAfterGrowthMiB, ' MiB')} | ${cell(r.neighboursWorstRelayMs, ' ms')}${r.neighboursDelivered === false ? ' (undelivered edits)' : ''}${r.neighboursClosed?.length ? ` (closed: ${r.neighboursClosed.map((c) => c.code).join(',')})` : ''} | ${cell(r.diskGrowthMiB, ' MiB')} |`)
]
console.log(lines.join('\n'))
writeJson(flags.json, { machine: machine(), bin: flags.bin, args: flags.args, capSeconds: flags.cap, typeMs: flags.typeMs, rows })
process.exit(0)
