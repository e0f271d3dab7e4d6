#!/usr/bin/env node
// Playback benchmark (issue 13): how fast a long session's playback opens and seeks.
//
// 1. Starts its own pairpad (the release binary, a fresh data directory,
//    127.0.0.1, `--messages-per-second 100000 --message-burst 100000` so the
//    per-connection rate limit does not throttle the typists).
// 2. Builds one session with --updates document updates (20,000) from two stock
//    Yjs clients (y-websocket's WebsocketProvider), "Cam" (the candidate, most
//    of the typing) and "Ivy" (with the interviewer key), taking turns: mostly
//    one-character inserts at a cursor (code-like lines, some accents, CJK and
//    emoji), backspaces, some word/line deletions, a few multi-line pastes and
//    cursor moves, so the final code is a few tens of KB. Each change is its own
//    Yjs transaction, so its own update on the wire and in the log. Paced at
//    --rate updates/s (the server stamps each update when it receives it, so
//    the session's timeline is updates / rate seconds long, not an hour).
// 3. Waits until the server has all of it: the two typists converge, a third
//    client syncs to the same text, and the history's `count` stops growing.
// 4. Opens `/s/<id>/playback#key=<key>` in Chromium (Playwright with Debian's
//    /usr/bin/chromium, as end2end does) --opens times: the first in a fresh
//    browser context (cold HTTP cache), the others in new pages of the same
//    context (warm cache). Open time = navigation start to the playback root
//    getting `data-ready="true"`, in-page (performance.now() in a
//    MutationObserver installed before the page's scripts).
// 5. --seeks random seeks (seeded), each measured in-page as performance.now()
//    around `scrubber.value = v; scrubber.dispatchEvent(new Event('input'))`
//    plus reading the editor's value (the contract's measure); also until the
//    next frame after it (the seek painted). Every seek's code is checked
//    against a stock-Yjs rebuild of the history (not timed).
// 6. The history response's size: as Node fetches it (JSON body bytes, and how
//    long the fetch took) and as the browser saw it (resource timing).
//
// Prints a Markdown table and writes JSON (default:
// bench/results/<YYYYMMDD-HHMMSS>-playback.json). It measures; it asserts
// nothing (the issue's bar is shown next to the numbers). Only 127.0.0.1.

import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import { chromium } from 'playwright-core'
import { parseFlags, writeJson, machine, round, percentiles, sleep } from './common.mjs'
import { yClient, waitFor } from '../tests/interop/support/clients.mjs'
import { CHROMIUM } from '../end2end/measure/server.mjs'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

const USAGE = `usage: node bench/playback.mjs [flags]
  --port P          port for pairpad (0: any free one)                     [0]
  --bin PATH        pairpad binary              [$PAIRPAD_BIN or target/release/pairpad]
  --site PATH       site root (the built front end)                        [target/site]
  --args "FLAGS"    extra pairpad flags
  --updates N       document updates in the session                        [20000]
  --rate R          updates per second while building it                   [500]
  --opens N         playback opens (the first cold, the others warm)       [3]
  --seeks N         random seeks                                           [50]
  --seed S          seed of the edit and seek generators                   [1]
  --json FILE       where to write the JSON     [bench/results/<timestamp>-playback.json]
  --quiet           no progress lines
  --console         print the playback page's console messages`

const flags = parseFlags(process.argv.slice(2), {
  port: 0,
  bin: process.env.PAIRPAD_BIN || path.join(ROOT, 'target', 'release', 'pairpad'),
  site: path.join(ROOT, 'target', 'site'),
  args: '',
  updates: 20_000,
  rate: 500,
  opens: 3,
  seeks: 50,
  seed: 1,
  json: '',
  quiet: false,
  console: false
}, USAGE)
if (flags.updates < 1 || flags.rate <= 0 || flags.opens < 1 || flags.seeks < 1) throw new Error(`bad flags\n${USAGE}`)
const log = (...args) => { if (!flags.quiet) console.error(`[playback ${new Date().toISOString().slice(11, 19)}]`, ...args) }
const stamp = () => {
  const d = new Date()
  const p = (n) => String(n).padStart(2, '0')
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`
}
const jsonFile = flags.json || path.join(ROOT, 'bench', 'results', `${stamp()}-playback.json`)
process.setMaxListeners(0) // every WebsocketProvider adds a process 'exit' listener

// ---- the server ---------------------------------------------------------------------------------

const SERVER_ARGS = [
  '--create-limit', '0',
  '--ip-connection-limit', '0',
  '--messages-per-second', '100000',
  '--message-burst', '100000'
]

let serverProc = null
process.on('exit', () => { try { serverProc?.kill('SIGKILL') } catch {} })
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130))

/** Starts pairpad on 127.0.0.1:--port with a fresh data directory; resolves once it listens. */
async function launch () {
  for (const needed of [flags.bin, path.join(flags.site, 'pkg')]) {
    if (!fs.existsSync(needed)) throw new Error(`${needed} not found (build with: cargo leptos build --release)`)
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pairpad-playback-'))
  const extra = flags.args.trim() ? flags.args.trim().split(/\s+/) : []
  const args = ['--addr', `127.0.0.1:${flags.port}`, '--data-dir', dataDir, '--site-root', flags.site, '--log-json', ...SERVER_ARGS, ...extra]
  const proc = spawn(flags.bin, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  serverProc = proc
  const logs = []
  const port = await new Promise((resolve, reject) => {
    let buffered = ''
    const timer = setTimeout(() => reject(new Error(`pairpad did not start within 30 s:\n${logs.join('\n')}`)), 30_000)
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
    proc.stderr.on('data', (chunk) => { logs.push(chunk.trimEnd()); if (logs.length > 200) logs.shift() })
    proc.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`pairpad exited (${code ?? signal}) before listening:\n${logs.join('\n')}`)) })
  })
  const origin = `http://127.0.0.1:${port}`
  return {
    proc,
    port,
    args,
    logs,
    origin,
    wsBase: `ws://127.0.0.1:${port}/ws`,
    async stop () {
      if (proc.exitCode === null && proc.signalCode === null) {
        const gone = new Promise((resolve) => proc.once('exit', resolve))
        proc.kill('SIGTERM')
        const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
        await gone
        clearTimeout(timer)
      }
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

// ---- the session's edits ----------------------------------------------------------------------

/** mulberry32: a small seeded PRNG, [0, 1). */
function prng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const rand = prng(flags.seed)
const pick = (list) => list[Math.floor(rand() * list.length)]
const between = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1))

const NAMES = ['total', 'value', 'items', 'result', 'count', 'index', 'node', 'left', 'right', 'queue', 'seen', 'memo', 'best', 'sum']
const WORDS = ['naïve', 'café', 'größer', '你好', '世界', 'ok ✓', 'edge case', 'O(n²)', 'TODO', '😀', '🎉', '👩‍💻', 'λ', '∑']

/** One line of plausible code, with its newline. */
function codeLine () {
  const a = pick(NAMES)
  const b = pick(NAMES)
  const n = between(0, 99)
  const indent = '  '.repeat(between(0, 2))
  const line = pick([
    `const ${a} = ${b} + ${n};`,
    `let ${a} = [];`,
    `for (let i = 0; i < ${b}.length; i++) {`,
    `${a}.push(${b}[i] * ${n});`,
    '}',
    `if (${a} > ${n}) return ${b};`,
    `function ${a}Of(${b}) {`,
    `return ${b}.map((x) => x + ${n});`,
    `console.log("${a}", ${b});`,
    `// ${pick(WORDS)} ${pick(WORDS)} ${a}`,
    `${a} = Math.max(${a}, ${b});`
  ])
  return `${indent}${line}\n`
}

/** A pasted block: 3 to 30 lines. */
const pasteBlock = () => Array.from({ length: between(3, 30) }, codeLine).join('')

const isHigh = (code) => code >= 0xd800 && code <= 0xdbff
const isLow = (code) => code >= 0xdc00 && code <= 0xdfff

/**
 * A typist: a stock Yjs client with a cursor (a relative position, so that the
 * other typist's edits move it as they would move a caret) and the rest of the
 * line it is typing. `step()` makes one change (one transaction, one update) or
 * moves the cursor (no update); returns whether the document changed.
 */
function typist (client) {
  const text = client.text
  let cursor = Y.createRelativePositionFromTypeIndex(text, 0)
  let pending = []
  const index = () => {
    const abs = Y.createAbsolutePositionFromRelativePosition(cursor, client.doc)
    let i = abs ? abs.index : text.length
    const s = text.toString()
    // Never between the halves of a surrogate pair.
    if (i > 0 && i < s.length && isHigh(s.charCodeAt(i - 1)) && isLow(s.charCodeAt(i))) i--
    return i
  }
  const place = (i) => { cursor = Y.createRelativePositionFromTypeIndex(text, i) }
  return {
    client,
    step () {
      const r = rand()
      const at = index()
      if (r < 0.86) {
        if (pending.length === 0) pending = [...codeLine()] // code points: an emoji is one keystroke
        const ch = pending.shift()
        text.insert(at, ch)
        place(at + ch.length)
        return true
      }
      if (r < 0.955) { // backspace
        if (at === 0) return false
        const s = text.toString()
        const width = at >= 2 && isLow(s.charCodeAt(at - 1)) && isHigh(s.charCodeAt(at - 2)) ? 2 : 1
        text.delete(at - width, width)
        place(at - width)
        return true
      }
      if (r < 0.966) { // a word or a line selected and deleted
        if (at === 0) return false
        const s = text.toString()
        let from = Math.max(0, at - between(2, 30))
        if (from > 0 && isLow(s.charCodeAt(from)) && isHigh(s.charCodeAt(from - 1))) from--
        text.delete(from, at - from)
        place(from)
        return true
      }
      if (r < 0.968) { // a paste
        const block = pasteBlock()
        text.insert(at, block)
        place(at + block.length)
        return true
      }
      // The caret moves: to the end, or to the start of some line. No update.
      const s = text.toString()
      if (rand() < 0.5 || s.length === 0) {
        place(s.length)
      } else {
        const from = between(0, s.length - 1)
        const nl = s.lastIndexOf('\n', from)
        place(nl + 1)
      }
      pending = []
      return false
    }
  }
}

// ---- the history --------------------------------------------------------------------------------

async function fetchHistory (server, session) {
  const t0 = performance.now()
  const res = await fetch(`${server.origin}/api/sessions/${session.id}/history`, {
    headers: { authorization: `Bearer ${session.interviewerKey}` }
  })
  const body = await res.text()
  const ms = performance.now() - t0
  if (res.status !== 200) throw new Error(`GET history -> ${res.status} ${body.slice(0, 300)}`)
  return { ms, bytes: Buffer.byteLength(body), contentEncoding: res.headers.get('content-encoding'), json: JSON.parse(body) }
}

/** The records `{ at, author, update }` of a history body (the contract's format). */
function decodeRecords (json) {
  const bytes = Buffer.from(json.updates, 'base64')
  const decoder = decoding.createDecoder(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length))
  const records = []
  let at = 0
  while (decoding.hasContent(decoder)) {
    at += decoding.readVarUint(decoder)
    const author = decoding.readVarUint(decoder)
    records.push({ at, author, update: decoding.readVarUint8Array(decoder) })
  }
  return { records, decodedBytes: bytes.length }
}

/** Cheap text fingerprint (the page computes the same one, see the seeks below). */
function fingerprint (text) {
  let h = 0
  for (let i = 0; i < text.length; i++) h = (Math.imul(h, 31) + text.charCodeAt(i)) | 0
  return `${text.length}:${h}`
}

// ---- main -----------------------------------------------------------------------------------------

const server = await launch()
log(`pairpad ${flags.bin} on ${server.origin}`)
let browser = null
const clients = []
try {
  const created = await fetch(`${server.origin}/api/sessions/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ language: 'javascript' })
  })
  if (created.status !== 201) throw new Error(`create -> ${created.status} ${await created.text()}`)
  const session = await created.json()

  // Two typists, each announcing a name (the playback's authors) before typing.
  const cam = yClient(server, session.id, { name: 'Cam' })
  const ivy = yClient(server, session.id, { name: 'Ivy', params: { key: session.interviewerKey } })
  clients.push(cam, ivy)
  await Promise.all([cam.synced(20_000), ivy.synced(20_000)])
  cam.awareness.setLocalStateField('user', { name: 'Cam', color: '#1f77b4' })
  ivy.awareness.setLocalStateField('user', { name: 'Ivy', color: '#d62728' })
  await sleep(300)

  const typists = [typist(cam), typist(ivy)]
  let current = typists[0]
  const interval = 1000 / flags.rate
  const tBuild = performance.now()
  let made = 0
  let nextLog = 2000
  while (made < flags.updates) {
    const due = tBuild + made * interval
    const now = performance.now()
    if (due > now + 1) await sleep(due - now)
    if (current.step()) made++
    // Turns: now and then the other one types for a while (Cam most of the time).
    if (rand() < 1 / 150) current = rand() < 0.75 ? typists[0] : typists[1]
    if (made >= nextLog) {
      log(`${made}/${flags.updates} updates, code ${cam.text.length} chars`)
      nextLog += 2000
    }
  }
  const buildSeconds = (performance.now() - tBuild) / 1000
  log(`${made} updates in ${round(buildSeconds, 1)} s; waiting for the server to have them`)

  // The server has everything: the typists converge, and a newcomer gets the same text.
  await waitFor(() => cam.text.toString() === ivy.text.toString(), {
    timeout: 120_000,
    interval: 100,
    message: () => `the typists to converge (${cam.text.length} vs ${ivy.text.length} chars)`
  })
  const finalText = cam.text.toString()
  const checker = yClient(server, session.id, { name: 'checker' })
  clients.push(checker)
  await checker.synced(60_000)
  await checker.hasText(finalText, 60_000)
  for (const c of clients) c.destroy()
  clients.length = 0

  // ... and its history stops growing.
  let hist = await fetchHistory(server, session)
  for (let i = 0; i < 60; i++) {
    await sleep(500)
    const again = await fetchHistory(server, session)
    const settled = again.json.count === hist.json.count && again.json.count >= made
    hist = again
    if (settled) break
  }
  const { records, decodedBytes } = decodeRecords(hist.json)
  if (hist.json.count < made) log(`WARNING: the history holds ${hist.json.count} updates, fewer than the ${made} sent`)
  if (records.length !== hist.json.count) log(`WARNING: the history decodes to ${records.length} records, count says ${hist.json.count}`)
  const nodeFetch = await fetchHistory(server, session) // a warm fetch, for its time
  const timelineMs = records.length ? records.at(-1).at - records[0].at : 0
  log(`history: ${hist.json.count} updates, ${hist.bytes} bytes of JSON, timeline ${round(timelineMs / 1000, 1)} s; opening the playback`)

  // ---- Chromium ----
  browser = await chromium.launch(CHROMIUM)
  const context = await browser.newContext()
  await context.addInitScript(() => {
    const ready = () => document.querySelector('[data-testid="playback"][data-ready="true"]')
    const observer = new MutationObserver(() => {
      if (window.__playbackReadyAt == null && ready()) {
        window.__playbackReadyAt = performance.now()
        observer.disconnect()
      }
    })
    observer.observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-ready'] })
  })
  const url = `${server.origin}/s/${session.id}/playback#key=${session.interviewerKey}`
  const opens = []
  let page = null
  for (let i = 0; i < flags.opens; i++) {
    if (page) await page.close()
    page = await context.newPage()
    if (flags.console) page.on('console', (message) => log(`page: ${message.text()}`))
    const errors = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(url, { waitUntil: 'commit', timeout: 60_000 })
    const deadline = Date.now() + 120_000
    while (!(await page.evaluate(() => window.__playbackReadyAt != null))) {
      if (Date.now() > deadline) throw new Error(`the playback never got data-ready (page errors: ${errors.join('; ') || 'none'})`)
      await sleep(50)
    }
    const open = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0]
      const hist = performance.getEntriesByType('resource').find((e) => /\/api\/sessions\/[^/]+\/history/.test(e.name))
      return {
        readyMs: window.__playbackReadyAt,
        responseEndMs: nav?.responseEnd ?? null,
        domContentLoadedMs: nav?.domContentLoadedEventEnd ?? null,
        loadMs: nav?.loadEventEnd || null,
        history: hist
          ? {
              startMs: hist.startTime,
              durationMs: hist.duration,
              transferBytes: hist.transferSize,
              encodedBytes: hist.encodedBodySize,
              decodedBytes: hist.decodedBodySize
            }
          : null,
        codeLength: window.monaco.editor.getEditors()[0].getValue().length
      }
    })
    open.cache = i === 0 ? 'cold' : 'warm'
    open.pageErrors = errors
    open.readyMs = round(open.readyMs, 1)
    opens.push(open)
    log(`open ${i + 1} (${open.cache}): data-ready after ${open.readyMs} ms`)
  }

  // The timeline, and the code shown at the end.
  const shown = await page.evaluate(() => {
    const scrubber = document.querySelector('[data-testid="playback-scrubber"]')
    const root = document.querySelector('[data-testid="playback"]')
    return {
      start: Number(scrubber.getAttribute('data-start') ?? root.getAttribute('data-start')),
      max: Number(scrubber.max),
      code: window.monaco.editor.getEditors()[0].getValue()
    }
  })
  const finalShown = shown.code === finalText

  // Random seeks, measured in the page.
  const values = Array.from({ length: flags.seeks }, () => Math.floor(rand() * (shown.max + 1)))
  // (No eval in the page: its CSP forbids it. The fingerprint is fingerprint() above.)
  const seeks = await page.evaluate(async ({ values }) => {
    const fingerprint = (text) => {
      let h = 0
      for (let i = 0; i < text.length; i++) h = (Math.imul(h, 31) + text.charCodeAt(i)) | 0
      return `${text.length}:${h}`
    }
    const scrubber = document.querySelector('[data-testid="playback-scrubber"]')
    const editor = window.monaco.editor.getEditors()[0]
    const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)))
    const out = []
    for (const v of values) {
      await nextFrame() // the previous seek has been painted
      const t0 = performance.now()
      scrubber.value = String(v)
      scrubber.dispatchEvent(new Event('input', { bubbles: true }))
      const text = editor.getValue()
      const t1 = performance.now()
      await nextFrame()
      const t2 = performance.now()
      out.push({ value: v, ms: t1 - t0, paintedMs: t2 - t0, fingerprint: fingerprint(text) })
    }
    return out
  }, { values })

  // Check every seek against a stock-Yjs rebuild (one pass over the records, in time order).
  const order = seeks.map((s, i) => i).sort((a, b) => seeks[a].value - seeks[b].value)
  const doc = new Y.Doc()
  let next = 0
  let wrong = 0
  for (const i of order) {
    const until = shown.start + seeks[i].value
    while (next < records.length && records[next].at <= until) Y.applyUpdate(doc, records[next++].update)
    seeks[i].correct = fingerprint(doc.getText('code').toString()) === seeks[i].fingerprint
    if (!seeks[i].correct) wrong++
  }
  doc.destroy()

  const seekStats = percentiles(seeks.map((s) => s.ms))
  const paintedStats = percentiles(seeks.map((s) => s.paintedMs))
  const warm = opens.filter((o) => o.cache === 'warm').map((o) => o.readyMs)
  const warmStats = percentiles(warm)
  const browserHistory = opens[0].history

  const result = {
    time: new Date().toISOString(),
    machine: machine(),
    server: { bin: flags.bin, args: server.args.map((a, i, all) => all[i - 1] === '--data-dir' ? '<temporary>' : a) },
    config: { updates: flags.updates, rate: flags.rate, opens: flags.opens, seeks: flags.seeks, seed: flags.seed },
    session: {
      id: session.id,
      updatesSent: made,
      buildSeconds: round(buildSeconds, 2),
      historyCount: hist.json.count,
      timelineSeconds: round(timelineMs / 1000, 2),
      finalCodeChars: finalText.length,
      finalCodeBytes: Buffer.byteLength(finalText),
      authors: hist.json.authors,
      events: hist.json.events?.length ?? null
    },
    history: {
      jsonBytes: hist.bytes,
      contentEncoding: hist.contentEncoding,
      updatesBase64Chars: hist.json.updates.length,
      updatesBytes: decodedBytes,
      nodeFetchMs: round(nodeFetch.ms, 1),
      browser: browserHistory
    },
    open: {
      coldMs: opens[0].readyMs,
      warmMs: warmStats,
      runs: opens
    },
    seek: {
      ms: seekStats,
      paintedMs: paintedStats,
      correct: seeks.length - wrong,
      of: seeks.length,
      samples: seeks.map((s) => ({ value: s.value, ms: round(s.ms, 2), paintedMs: round(s.paintedMs, 2), correct: s.correct }))
    },
    finalShownAtOpen: finalShown,
    bar: { openMs: 1000, seekMs: 100 }
  }
  writeJson(jsonFile, result)

  const fmt = (n) => n == null ? '–' : Number(n).toLocaleString('en-US')
  const mark = (ok) => ok ? '✓' : '✗'
  const rows = [
    ['updates sent / in the history', `${fmt(made)} / ${fmt(hist.json.count)}`, ''],
    ['session timeline', `${round(timelineMs / 1000, 1)} s (built at ${flags.rate} updates/s)`, ''],
    ['final code', `${fmt(finalText.length)} chars, ${fmt(Buffer.byteLength(finalText))} bytes`, ''],
    ['history response (JSON)', `${fmt(hist.bytes)} bytes${hist.contentEncoding ? ` (${hist.contentEncoding} on the wire)` : ''}; updates ${fmt(decodedBytes)} bytes`, ''],
    ['history fetch (Node, warm)', `${round(nodeFetch.ms, 1)} ms`, ''],
    ['history fetch (browser, cold open)', browserHistory ? `${round(browserHistory.durationMs, 1)} ms, ${fmt(browserHistory.transferBytes)} bytes transferred` : '–', ''],
    ['open, cold cache (navigation → data-ready)', `${opens[0].readyMs} ms`, `≤ 1000 ms ${mark(opens[0].readyMs <= 1000)}`],
    [`open, warm cache (${warm.length}): median / max`, warm.length ? `${warmStats.p50} / ${warmStats.max} ms` : '–', warm.length ? `≤ 1000 ms ${mark(warmStats.max <= 1000)}` : ''],
    [`seek (${seeks.length} random): p50 / p95 / max`, `${seekStats.p50} / ${seekStats.p95} / ${seekStats.max} ms`, `≤ 100 ms ${mark(seekStats.max <= 100)}`],
    ['seek until the next frame: p50 / p95 / max', `${paintedStats.p50} / ${paintedStats.p95} / ${paintedStats.max} ms`, ''],
    ['seeks showing the right code', `${seeks.length - wrong}/${seeks.length}; final code at open ${finalShown ? 'right' : 'WRONG'}`, '']
  ]
  console.log([
    `## Playback: ${fmt(hist.json.count)} updates`,
    '',
    '| | | issue 13 |',
    '|---|---|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    `(${result.machine.cpus} CPUs, ${result.machine.cpuModel}; node ${result.machine.node}; JSON: ${path.relative(process.cwd(), jsonFile)})`
  ].join('\n'))
} finally {
  for (const c of clients) c.destroy()
  if (browser) await browser.close().catch(() => {})
  await server.stop()
}
setTimeout(() => process.exit(0), 200).unref()
