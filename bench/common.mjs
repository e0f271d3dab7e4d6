// Shared helpers for the pairpad benchmarks: flag parsing, target URLs, session
// creation, /proc sampling of the server process, percentiles and bounded waits.
// Only 127.0.0.1 targets are ever used.

import fs from 'node:fs'
import path from 'node:path'
import os from 'node:os'

export const HOST = '127.0.0.1'
export const CLK_TCK = 100 // USER_HZ on Linux; /proc/<pid>/stat times are in these ticks

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Parses `--name value` and `--name=value` flags against `spec` ({name: default});
 * numbers in the spec make the flag numeric, booleans make it a switch.
 */
export function parseFlags (argv, spec, usage) {
  const out = { ...spec }
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]
    if (arg === '-h' || arg === '--help') {
      console.log(usage)
      process.exit(0)
    }
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}\n${usage}`)
    arg = arg.slice(2)
    let value
    const eq = arg.indexOf('=')
    if (eq >= 0) {
      value = arg.slice(eq + 1)
      arg = arg.slice(0, eq)
    }
    const key = arg.replace(/-([a-z])/g, (_, c) => c.toUpperCase())
    if (!(key in spec)) throw new Error(`unknown flag --${arg}\n${usage}`)
    if (typeof spec[key] === 'boolean') {
      out[key] = value === undefined ? true : !/^(0|false|no)$/i.test(value)
      continue
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new Error(`--${arg} needs a value`)
      value = argv[++i]
    }
    if (typeof spec[key] === 'number') {
      const n = Number(value)
      if (!Number.isFinite(n)) throw new Error(`--${arg} must be a number, got ${value}`)
      out[key] = n
    } else {
      out[key] = value
    }
  }
  return out
}

/** Where a target lives: the provider's serverUrl and how rooms are named. */
export function targetInfo (target, port) {
  if (target === 'pairpad') {
    return {
      target,
      httpBase: `http://${HOST}:${port}`,
      wsBase: `ws://${HOST}:${port}/ws`, // WebsocketProvider appends /<room>
      needsSessions: true
    }
  }
  if (target === 'reference') {
    return {
      target,
      httpBase: `http://${HOST}:${port}`,
      wsBase: `ws://${HOST}:${port}`,
      needsSessions: false
    }
  }
  throw new Error(`--target must be pairpad or reference, got ${target}`)
}

/**
 * Creates `count` rooms: pairpad sessions through its REST API (with bounded
 * concurrency and a bounded retry per session), or unique room names for the
 * reference server.
 */
export async function createRooms (info, count, { concurrency = 8, prefix = 'bench' } = {}) {
  const run = `${prefix}-${process.pid}-${Date.now().toString(36)}`
  if (!info.needsSessions) {
    return Array.from({ length: count }, (_, i) => `${run}-${i}`)
  }
  const ids = new Array(count)
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      let lastErr
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          const res = await fetch(`${info.httpBase}/api/sessions/create`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: '{}',
            signal: AbortSignal.timeout(10_000)
          })
          const body = await res.text()
          if (res.status !== 201) throw new Error(`POST /api/sessions/create -> ${res.status} ${body.slice(0, 200)}`)
          ids[i] = JSON.parse(body).id
          if (typeof ids[i] !== 'string') throw new Error(`no id in ${body.slice(0, 200)}`)
          lastErr = null
          break
        } catch (err) {
          lastErr = err
          await sleep(200 * (attempt + 1))
        }
      }
      if (lastErr) throw lastErr
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return ids
}

/** Finds the pid listening on 127.0.0.1:port (or any address) via /proc/net/tcp. */
export function findListeningPid (port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0')
  const inodes = new Set()
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text
    try { text = fs.readFileSync(file, 'utf8') } catch { continue }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      if (cols.length < 10) continue
      if (cols[3] !== '0A') continue // LISTEN
      if (!cols[1].endsWith(':' + hexPort)) continue
      inodes.add(cols[9])
    }
  }
  if (inodes.size === 0) return null
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    let fds
    try { fds = fs.readdirSync(`/proc/${pid}/fd`) } catch { continue }
    for (const fd of fds) {
      let link
      try { link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`) } catch { continue }
      const m = /^socket:\[(\d+)\]$/.exec(link)
      if (m && inodes.has(m[1])) return Number(pid)
    }
  }
  return null
}

/** Reads VmRSS/VmHWM (KiB) from /proc/<pid>/status. */
export function readMem (pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (name) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)
    return m ? Number(m[1]) : null
  }
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM'), threads: Number((/^Threads:\s+(\d+)/m.exec(text) || [])[1]) }
}

/** utime+stime of <pid> in seconds (all threads). */
export function readCpuSeconds (pid) {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  // comm may contain spaces; fields after the closing paren are space-separated
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  // rest[0] is field 3 (state); utime is field 14, stime field 15
  const utime = Number(rest[11])
  const stime = Number(rest[12])
  return (utime + stime) / CLK_TCK
}

/** Bytes the process has caused to be written to storage (/proc/<pid>/io write_bytes), or null. */
export function readWriteBytes (pid) {
  try {
    const m = /^write_bytes:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

/**
 * Samples a process's memory every `intervalMs` while running; `mark()` starts a
 * CPU window, `stop()` returns the samples and CPU used since the mark.
 */
export class ProcSampler {
  constructor (pid, intervalMs = 250) {
    this.pid = pid
    this.samples = []
    this.maxRssKiB = 0
    this.error = null
    this.timer = null
    this.intervalMs = intervalMs
    this.cpuMark = null
  }

  sample () {
    try {
      const m = readMem(this.pid)
      this.samples.push({ t: Date.now(), rssKiB: m.rssKiB })
      if (m.rssKiB > this.maxRssKiB) this.maxRssKiB = m.rssKiB
      return m
    } catch (err) {
      this.error = `cannot read /proc/${this.pid}: ${err.message}`
      return null
    }
  }

  start () {
    this.sample()
    this.timer = setInterval(() => this.sample(), this.intervalMs)
    this.timer.unref()
    return this
  }

  markCpu () {
    this.cpuMark = { t: performance.now(), cpu: readCpuSeconds(this.pid), written: readWriteBytes(this.pid) }
  }

  cpuSinceMark () {
    if (!this.cpuMark) return null
    const cpu = readCpuSeconds(this.pid) - this.cpuMark.cpu
    const wall = (performance.now() - this.cpuMark.t) / 1000
    const written = readWriteBytes(this.pid)
    const writtenMiB = written == null || this.cpuMark.written == null ? null : round((written - this.cpuMark.written) / 1048576, 1)
    return { cpuSeconds: round(cpu, 2), wallSeconds: round(wall, 2), cpuPercent: round(100 * cpu / wall, 1), diskWrittenMiB: writtenMiB }
  }

  stop () {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    const last = this.sample()
    return { last, maxSampledRssKiB: this.maxRssKiB, samples: this.samples.length }
  }
}

/** Machine-wide busy CPU time in seconds (all cores, from /proc/stat), for noise accounting. */
export function readMachineBusySeconds () {
  const cols = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user
  const busy = cols[0] + cols[1] + cols[2] + cols[5] + cols[6] + (cols[7] || 0)
  return busy / CLK_TCK
}

/** Generator's own CPU over a window (all its threads), as % of one core. */
export function selfCpuMark () {
  return { t: performance.now(), usage: process.cpuUsage() }
}

export function selfCpuSince (mark) {
  const u = process.cpuUsage(mark.usage)
  const wall = (performance.now() - mark.t) / 1000
  const cpu = (u.user + u.system) / 1e6
  return { cpuSeconds: round(cpu, 2), wallSeconds: round(wall, 2), cpuPercent: round(100 * cpu / wall, 1) }
}

export function percentiles (values) {
  if (values.length === 0) return { count: 0, p50: null, p95: null, p99: null, max: null, mean: null }
  const sorted = Float64Array.from(values).sort()
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
  let sum = 0
  for (const v of sorted) sum += v
  return {
    count: sorted.length,
    p50: round(at(0.5), 2),
    p95: round(at(0.95), 2),
    p99: round(at(0.99), 2),
    max: round(sorted[sorted.length - 1], 2),
    mean: round(sum / sorted.length, 2)
  }
}

export function round (x, digits = 2) {
  if (x == null || !Number.isFinite(x)) return x
  const f = 10 ** digits
  return Math.round(x * f) / f
}

export const mib = (kib) => kib == null ? null : round(kib / 1024, 1)

export function writeJson (file, data) {
  if (!file) return
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
  fs.writeFileSync(file, JSON.stringify(data, null, 2) + '\n')
}

export function machine () {
  return { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, totalMemMiB: Math.round(os.totalmem() / 1048576), node: process.version, loadavg: os.loadavg().map((x) => round(x, 2)) }
}

/** Polls `predicate` every `interval` ms until true or `timeout` ms pass; returns whether it held. */
export async function waitUntil (predicate, timeout, interval = 50) {
  const deadline = Date.now() + timeout
  for (;;) {
    if (predicate()) return true
    if (Date.now() >= deadline) return false
    await sleep(interval)
  }
}
