// A Redis server of a test's own: Debian's redis-server on a unix socket in a
// temporary directory, append-only file on (`appendfsync always`), no TCP
// port, never one already running. Killed when the test process exits.
// Without redis-server the Redis tests are skipped (a failure under CI=true).

import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import net from 'node:net'

/** Why Redis tests cannot run here, or null. Under CI=true a missing Redis is an error. */
export function redisMissing () {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
  if (!probe.error) return null
  const why = 'redis-server is not installed (apt-get install -y redis-server)'
  if (process.env.CI === 'true') throw new Error(why)
  return why
}

const live = new Set()
process.on('exit', () => {
  for (const redis of live) redis.killNow()
})

/** Resolves once something accepts connections on the unix socket `path`. */
async function waitForSocket (path, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect(path)
      socket.once('connect', () => { socket.end(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${path}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/**
 * Starts a server. `appendonly: false` starts one without the append-only file
 * (pairpad must refuse it). Returns `{ url, dir, restart(), kill(), dispose() }`.
 */
export async function startRedis ({ appendonly = true } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'pairpad-redis-'))
  const socket = join(dir, 'redis.sock')
  let proc = null
  const launch = async () => {
    rmSync(socket, { force: true })
    proc = spawn('redis-server', [
      '--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '',
      '--appendonly', appendonly ? 'yes' : 'no', '--appendfsync', 'always',
      '--dir', dir, '--daemonize', 'no', '--logfile', join(dir, 'redis.log')
    ], { stdio: 'ignore' })
    await waitForSocket(socket)
  }
  const redis = {
    url: `redis+unix://${socket}`,
    dir,
    killNow () { try { proc?.kill('SIGKILL') } catch {} },
    /** kill -9, and wait until it is gone. */
    async kill () {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      const gone = new Promise((resolve) => proc.once('exit', resolve))
      proc.kill('SIGKILL')
      await gone
    },
    /** kill -9, then a new server on the same directory (it replays its AOF). */
    async restart () {
      await redis.kill()
      await launch()
    },
    async dispose () {
      await redis.kill()
      live.delete(redis)
      rmSync(dir, { recursive: true, force: true })
    }
  }
  await launch()
  live.add(redis)
  return redis
}
