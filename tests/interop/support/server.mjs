// Starts the real pairpad binary for the interop tests: a fresh data directory,
// an ephemeral port read from the "pairpad listening" JSON log line, REST helpers,
// stop(signal) and restart() on the same data directory. Every process started
// here is killed when the test process exits, so nothing is left behind.

import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = resolve(here, '..', '..', '..')

/** Path of the server binary (override with PAIRPAD_BIN). */
export const BIN = process.env.PAIRPAD_BIN
  ? resolve(process.env.PAIRPAD_BIN)
  : join(repoRoot, 'target', 'debug', 'pairpad')

/** How long the server may take to print its listening line. */
const START_TIMEOUT_MS = 20_000
/** How long a stopped server may take to exit. */
const STOP_TIMEOUT_MS = 10_000

const live = new Set()
const tempDirs = new Set()

function killAll () {
  for (const proc of live) {
    try { proc.kill('SIGKILL') } catch {}
  }
  live.clear()
  for (const dir of tempDirs) {
    try { rmSync(dir, { recursive: true, force: true }) } catch {}
  }
  tempDirs.clear()
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killAll()
    process.exit(130)
  })
}

/**
 * Spawns the binary and resolves once it logs that it is listening.
 * @returns {Promise<{proc: import('node:child_process').ChildProcess, port: number, logs: string[], exited: Promise<{code: number|null, signal: string|null}>}>}
 */
function launch (dataDir, args, env) {
  if (!existsSync(BIN)) {
    throw new Error(`pairpad binary not found at ${BIN}; build it with \`cargo build --features ssr\` or set PAIRPAD_BIN`)
  }
  // Defaults for tests; a flag the caller passes replaces the default (clap
  // rejects a flag given twice).
  const defaults = [
    ['--addr', '127.0.0.1:0'],
    ['--data-dir', dataDir],
    ['--log-json'],
    ['--create-limit', '0'],
    ['--ip-connection-limit', '0']
  ].filter(([flag]) => !args.includes(flag))
  const argv = [...defaults.flat(), ...args]
  const proc = spawn(BIN, argv, {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  live.add(proc)
  const logs = []
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc)
      resolve({ code, signal })
    })
  })

  return new Promise((resolveStart, rejectStart) => {
    let settled = false
    let buffered = ''
    const timer = setTimeout(() => {
      fail(new Error(`pairpad did not log "pairpad listening" within ${START_TIMEOUT_MS} ms`))
      try { proc.kill('SIGKILL') } catch {}
    }, START_TIMEOUT_MS)
    const fail = (err) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      err.message += `\n--- server output ---\n${logs.join('\n')}`
      rejectStart(err)
    }
    proc.stdout.setEncoding('utf8')
    proc.stdout.on('data', (chunk) => {
      buffered += chunk
      let nl
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        if (line.trim() === '') continue
        logs.push(line)
        if (logs.length > 2000) logs.shift()
        if (settled) continue
        let entry
        try { entry = JSON.parse(line) } catch { continue }
        const fields = entry.fields ?? {}
        if (typeof fields.message === 'string' && fields.message.startsWith('pairpad listening') && typeof fields.addr === 'string') {
          const port = Number(fields.addr.split(':').pop())
          settled = true
          clearTimeout(timer)
          resolveStart({ proc, port, logs, exited })
        }
      }
    })
    proc.stderr.setEncoding('utf8')
    proc.stderr.on('data', (chunk) => {
      for (const line of chunk.split('\n')) if (line.trim()) logs.push(`[stderr] ${line}`)
    })
    proc.once('error', (err) => fail(err))
    exited.then(({ code, signal }) => fail(new Error(`pairpad exited before listening (code ${code}, signal ${signal})`)))
  })
}

/**
 * Starts a server on a fresh data directory.
 * @param {{args?: string[], env?: Record<string,string>}} [options]
 */
export async function startServer ({ args = [], env = {} } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'pairpad-interop-'))
  tempDirs.add(dataDir)
  let current = await launch(dataDir, args, env)

  const server = {
    dataDir,
    get proc () { return current.proc },
    get port () { return current.port },
    get url () { return `http://127.0.0.1:${current.port}` },
    /** Base URL for WebsocketProvider (the session id is the room name). */
    get wsBase () { return `ws://127.0.0.1:${current.port}/ws` },
    /** The server's log lines so far (for failure messages). */
    get logs () { return current.logs },
    wsUrl (sessionId) { return `ws://127.0.0.1:${current.port}/ws/${sessionId}` },

    /**
     * Sends a signal and waits for the process to exit.
     * @returns {Promise<{code: number|null, signal: string|null}>}
     */
    async stop (signal = 'SIGTERM') {
      const { proc, exited } = current
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      let timer
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`pairpad did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}`)), STOP_TIMEOUT_MS)
      })
      try {
        return await Promise.race([exited, timeout])
      } catch (err) {
        try { proc.kill('SIGKILL') } catch {}
        throw err
      } finally {
        clearTimeout(timer)
      }
    },

    /** Starts the binary again on the same data directory (the port may change). */
    async restart (extraArgs = args) {
      if (current.proc.exitCode === null && current.proc.signalCode === null) {
        await server.stop('SIGKILL')
      }
      current = await launch(dataDir, extraArgs, env)
      return server
    },

    /** Stops the server (SIGKILL if it is still running) and deletes its data. */
    async dispose () {
      if (current.proc.exitCode === null && current.proc.signalCode === null) {
        await server.stop('SIGKILL').catch(() => {})
      }
      try { rmSync(dataDir, { recursive: true, force: true }) } catch {}
      tempDirs.delete(dataDir)
    },

    /** POST /api/sessions/create; returns the parsed 201 body. */
    async createSession (language) {
      const res = await fetch(`${server.url}/api/sessions/create`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: language === undefined ? '' : JSON.stringify({ language })
      })
      const text = await res.text()
      if (res.status !== 201) {
        throw new Error(`POST /api/sessions/create answered ${res.status}: ${text}`)
      }
      return JSON.parse(text)
    },

    /** GET /api/sessions/:id; returns {status, body}. */
    async getSession (id) {
      const res = await fetch(`${server.url}/api/sessions/${id}`)
      const text = await res.text()
      let body
      try { body = JSON.parse(text) } catch { body = text }
      return { status: res.status, body }
    }
  }
  return server
}
