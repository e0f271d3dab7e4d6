#!/usr/bin/env node
// Prints the side-by-side table (Markdown) for one bench/run.sh results directory:
//   node bench/table.mjs bench/results/<timestamp>

import fs from 'node:fs'
import path from 'node:path'

const dir = process.argv[2]
if (!dir) {
  console.error('usage: node bench/table.mjs bench/results/<timestamp>')
  process.exit(2)
}
const TARGETS = ['reference', 'pairpad']
const load = (scenario, target) => {
  const file = path.join(dir, `${scenario}-${target}.json`)
  const out = {}
  if (fs.existsSync(file)) Object.assign(out, JSON.parse(fs.readFileSync(file, 'utf8')))
  if (fs.existsSync(file + '.error')) out.error = JSON.parse(fs.readFileSync(file + '.error', 'utf8')).error
  const log = path.join(dir, `${scenario}-${target}.server.log`)
  if (fs.existsSync(log)) {
    const lines = fs.readFileSync(log, 'utf8').split('\n')
    out.logWarnings = lines.filter((l) => /\b(WARN|ERROR)\b|"level":"(WARN|ERROR)"|Error/.test(l)).length
  }
  return Object.keys(out).length ? out : null
}
const cell = (v) => (v === undefined || v === null ? '-' : String(v))
const lines = []
const table = (title, rows, data) => {
  lines.push(`### ${title}`, '', `| metric | ${TARGETS.join(' | ')} |`, `|---|${TARGETS.map(() => '---:').join('|')}|`)
  for (const [name, get] of rows) {
    lines.push(`| ${name} | ${TARGETS.map((t) => {
      const r = data[t]
      if (!r) return 'not run'
      try { return cell(get(r)) } catch { return '-' }
    }).join(' | ')} |`)
  }
  for (const t of TARGETS) if (data[t]?.error) lines.push('', `**${t}: ${data[t].error}**`)
  lines.push('')
}

if (fs.existsSync(path.join(dir, 'env.txt'))) {
  lines.push('```', fs.readFileSync(path.join(dir, 'env.txt'), 'utf8').trim(), '```', '')
}

const loadRows = [
  ['connections', (r) => r.config.connections],
  ['edits sent (% of offered)', (r) => `${r.edits.sent} (${r.edits.achievedPercent}%)`],
  ['relay latency p50 ms', (r) => r.latencyMs.p50],
  ['relay latency p95 ms', (r) => r.latencyMs.p95],
  ['relay latency p99 ms', (r) => r.latencyMs.p99],
  ['relay latency max ms', (r) => r.latencyMs.max],
  ['delivered remote updates/s', (r) => r.delivery.remoteUpdatesPerSecond],
  ['marker arrivals / expected', (r) => `${r.delivery.arrivals}/${r.delivery.expectedArrivals}`],
  ['convergence', (r) => r.convergence.converged
    ? `OK (${r.convergence.sessionsIdentical}/${r.convergence.sessions}, fresh ${r.convergence.freshClientsMatched}/${r.convergence.sessions})`
    : `FAILED (identical ${r.convergence.sessionsIdentical}/${r.convergence.sessions}, fresh ${r.convergence.freshClientsMatched}/${r.convergence.sessions}, undelivered ${r.delivery.undeliveredMarkers})`],
  ['closes / reconnects', (r) => `${r.connectionEvents.closes} ${JSON.stringify(r.connectionEvents.closeCodes)} / ${r.connectionEvents.reconnects}`],
  ['server peak RSS (VmHWM) MiB', (r) => r.server.peakRssVmHWMMiB],
  ['server RSS before / end of edits MiB', (r) => `${r.server.rssBeforeMiB} / ${r.server.rssEndOfEditsMiB}`],
  ['server CPU % of a core', (r) => r.server.cpu.cpuPercent],
  ['server disk writes MiB (edit window)', (r) => r.server.cpu.diskWrittenMiB],
  ['generator CPU % of a core (threads)', (r) => `${r.generator.cpu.cpuPercent} (${r.config.generatorThreads})`],
  ['generator event-loop delay p99 / max ms', (r) => `${r.generator.eventLoopDelayMs.p99} / ${r.generator.eventLoopDelayMs.max}`],
  ['other processes\' CPU % (noise)', (r) => r.machineCpu.othersPercent],
  ['server log warnings/errors', (r) => r.logWarnings]
]
const idleRows = [
  ['connections synced', (r) => `${r.sync.synced}/${r.config.connections}`],
  ['readers with the writer\'s text', (r) => `${r.sync.verifiedReaders}/${r.sync.expectedReaders}`],
  ['still open after settle', (r) => r.sync.syncedAndOpenAfterSettle],
  ['server RSS before MiB', (r) => r.server.rssBeforeMiB],
  ['server RSS idle, settled MiB', (r) => r.server.rssSettledMiB],
  ['per connection KiB', (r) => r.server.perConnectionKiB],
  ['server peak RSS (VmHWM) MiB', (r) => r.server.peakRssVmHWMMiB],
  ['server CPU while idle %', (r) => r.server.idleCpu.cpuPercent],
  ['server CPU while connecting %', (r) => r.connect.serverCpu.cpuPercent],
  ['connect time writers / readers s (batches of 250)', (r) => `${r.connect.writers.seconds} / ${r.connect.readers.seconds}`],
  ['time to sync per writer p50 / p99 ms', (r) => `${r.connect.syncMsWriters.p50} / ${r.connect.syncMsWriters.p99}`],
  ['time to sync per reader p50 / p99 ms', (r) => `${r.connect.syncMsReaders.p50} / ${r.connect.syncMsReaders.p99}`],
  ['generator CPU % (whole run)', (r) => r.generator.cpu.cpuPercent],
  ['server log warnings/errors', (r) => r.logWarnings]
]

for (const scenario of ['light', 'heavy', 'stress', 'idle']) {
  const data = Object.fromEntries(TARGETS.map((t) => [t, load(scenario, t)]))
  if (!TARGETS.some((t) => data[t])) continue
  const any = TARGETS.map((t) => data[t]).find((r) => r && r.label)
  table(any ? any.label : scenario, scenario === 'idle' ? idleRows : loadRows, data)
}
console.log(lines.join('\n'))
