// Interop: pairpad on Redis (`--redis-url`, issue 14's storage; several
// instances on one Redis: cluster.test.mjs). Stock Yjs clients converge on a
// server that keeps nothing in its data directory; everything survives
// SIGKILL of pairpad and kill -9 of Redis (append-only file on); while Redis
// is down edits are refused (never relayed) and come back by themselves after;
// a Redis without an append-only file is refused at startup with a reason.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { startServer } from './support/server.mjs'
import { startRedis, redisMissing } from './support/redis.mjs'
import { yClient, syncedClients, waitFor } from './support/clients.mjs'

const skip = redisMissing()

describe('sessions stored in Redis', { skip: skip ?? false }, () => {
  let redis
  let server
  const clients = []
  const track = (...cs) => { clients.push(...cs); return cs }

  before(async () => {
    redis = await startRedis()
    server = await startServer({ args: ['--redis-url', redis.url] })
  })
  after(async () => {
    for (const c of clients) c.destroy()
    await server?.dispose()
    await redis?.dispose()
  })

  test('two stock Yjs clients converge, and the data directory stays empty', async () => {
    const session = await server.createSession('python')
    const [a, b] = track(...await syncedClients(server, session.id, ['A', 'B']))
    a.text.insert(0, 'print("héllo 👋")\n')
    await b.hasText('print("héllo 👋")\n')
    b.text.insert(0, '# ada\n')
    await a.hasText('# ada\nprint("héllo 👋")\n')
    const info = await server.getSession(session.id)
    assert.equal(info.status, 200)
    assert.equal(info.body.language, 'python')
    assert.deepEqual(readdirSync(server.dataDir), [], 'pairpad wrote to its data directory while on Redis')
  })

  test('after SIGKILL of pairpad, then kill -9 of Redis, a fresh client gets every edit', async () => {
    const session = await server.createSession('javascript')
    const [a] = track(...await syncedClients(server, session.id, ['A']))
    for (let i = 0; i < 50; i++) a.text.insert(a.text.length, `line ${i}\n`)
    const expected = a.text.toString()
    // An observer has received it all: the server relayed it, so Redis had it.
    const [observer] = track(...await syncedClients(server, session.id, ['observer']))
    await observer.hasText(expected)
    for (const c of clients.splice(0)) c.destroy()

    await server.stop('SIGKILL')
    await redis.restart()
    await server.restart(['--redis-url', redis.url])
    const fresh = yClient(server, session.id, { name: 'fresh' })
    track(fresh)
    await fresh.synced()
    await fresh.hasText(expected)
    assert.equal((await server.getSession(session.id)).status, 200)
  })

  test('while Redis is down edits are refused and health and create answer 503; once it is back nothing is lost', async () => {
    const session = await server.createSession('python')
    const [a, b] = track(...await syncedClients(server, session.id, ['A', 'B']))
    a.text.insert(0, 'before\n')
    await b.hasText('before\n')

    await redis.kill()
    const health = await fetch(`${server.url}/api/health`)
    assert.equal(health.status, 503)
    assert.equal((await health.json()).status, 'degraded')
    const create = await fetch(`${server.url}/api/sessions/create`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}'
    })
    assert.equal(create.status, 503)
    assert.match((await create.json()).error, /storage is unavailable/)

    // An edit made meanwhile is not relayed (it was never stored)...
    a.text.insert(a.text.length, 'during\n')
    await waitFor(() => a.closes.length > 0, { message: () => 'A to be closed when its edit could not be stored' })
    assert.equal(a.closes[0].code, 1013)
    assert.match(a.closes[0].reason, /storage unavailable/)
    assert.equal(b.text.toString(), 'before\n', 'an edit Redis never stored was relayed')

    // ...and once Redis is back, A (which kept it) sends it again by itself.
    await redis.restart()
    await b.hasText('before\nduring\n', 20_000)
    assert.equal((await fetch(`${server.url}/api/health`)).status, 200)
    const fresh = yClient(server, session.id, { name: 'fresh' })
    track(fresh)
    await fresh.synced()
    await fresh.hasText('before\nduring\n')
  })
})

describe('a Redis without its append-only file', { skip: skip ?? false }, () => {
  let redis
  before(async () => { redis = await startRedis({ appendonly: false }) })
  after(async () => { await redis?.dispose() })

  test('is refused unless the loss is accepted with --redis-accept-no-aof', async () => {
    await assert.rejects(startServer({ args: ['--redis-url', redis.url] }), /appendonly/)
    const server = await startServer({ args: ['--redis-url', redis.url, '--redis-accept-no-aof'] })
    try {
      assert.equal((await server.createSession('python')).language, 'python')
    } finally {
      await server.dispose()
    }
  })
})
