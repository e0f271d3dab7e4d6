// Interop: cluster mode (issue 14). Two pairpad instances on one Redis serve
// the same sessions. Stock Yjs clients on different instances converge, see
// each other's presence (and its removal), and a joiner on either gets it all;
// interviewers' notes and recorded joins cross instances;
// REST on either instance sees every session and counts the people on both; a
// Redis restart mid-typing loses nothing and both instances follow the logs
// again by themselves; ending, reopening and deleting on one instance act on
// the other's clients; behind a plain round-robin load balancer, kill -9 of an
// instance mid-typing loses nothing, its clients carry on through the other,
// and its people stop counting. Log entries compacted into the compact history
// still load whole on the other instance and play back every update.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startServer } from './support/server.mjs'
import { startRedis, redisMissing } from './support/redis.mjs'
import { startBalancer } from './support/balancer.mjs'
import { api, assertStatus } from './support/http.mjs'
import { yClient, syncedClients, waitFor } from './support/clients.mjs'
import { decodeHistory, replay } from './support/history.mjs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

const skip = redisMissing()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const INSTANCE_ARGS = ['--session-ip-connection-limit', '0']

/** A Redis of the test's own and two pairpad instances on it (with `extraArgs`). */
async function startCluster (extraArgs = []) {
  const redis = await startRedis()
  const args = ['--redis-url', redis.url, ...INSTANCE_ARGS, ...extraArgs]
  const [one, two] = await Promise.all([startServer({ args }), startServer({ args })])
  return { redis, one, two }
}

/**
 * A appends `a<i> ` and B prepends `b<i> ` every `everyMs` while `incident()`
 * happens (with `settleMs` of typing before and after it); then both must
 * converge with every edit of both. Returns the converged text.
 */
async function typeThrough (a, b, { everyMs, settleMs, what }, incident) {
  let typed = 0
  const typing = setInterval(() => {
    a.text.insert(a.text.length, `a${typed} `)
    b.text.insert(0, `b${typed} `)
    typed++
  }, everyMs)
  await sleep(settleMs)
  await incident()
  await sleep(settleMs)
  clearInterval(typing)
  await waitFor(() => a.text.toString() === b.text.toString(), {
    timeout: 20_000,
    message: () => `A and B to converge after ${what} (A ${a.text.length} chars, B ${b.text.length})`
  })
  const text = a.text.toString()
  for (let i = 0; i < typed; i++) {
    assert.ok(text.includes(`a${i} `) && text.includes(`b${i} `), `edit ${i} was lost`)
  }
  return text
}

/** Destroys the clients, then stops the instances and Redis. */
async function stopCluster (cluster, clients) {
  for (const c of clients) c.destroy()
  await cluster?.one?.dispose()
  await cluster?.two?.dispose()
  await cluster?.redis?.dispose()
}

describe('two instances on one Redis', { skip: skip ?? false }, () => {
  let cluster, redis, one, two
  const clients = []
  const track = (...cs) => { clients.push(...cs); return cs }

  before(async () => {
    cluster = await startCluster()
    ;({ redis, one, two } = cluster)
  })
  after(() => stopCluster(cluster, clients))

  test('clients on different instances converge, and a joiner on either gets everything', async () => {
    const session = await one.createSession('python')
    const [a] = track(...await syncedClients(one, session.id, ['A on one']))
    const [b] = track(...await syncedClients(two, session.id, ['B on two']))
    a.text.insert(0, 'print("héllo 👋")\n')
    await b.hasText('print("héllo 👋")\n')
    b.text.insert(0, '# ada\n')
    await a.hasText('# ada\nprint("héllo 👋")\n')
    // Interleaved typing from both sides.
    for (let i = 0; i < 40; i++) {
      a.text.insert(a.text.length, `a${i} `)
      b.text.insert(0, `b${i} `)
      if (i % 10 === 0) await sleep(20)
    }
    await waitFor(() => a.text.toString() === b.text.toString() && a.text.length > 300, {
      message: () => `A and B to converge: ${JSON.stringify(a.text.toString())} vs ${JSON.stringify(b.text.toString())}`
    })
    const expected = a.text.toString()
    for (const server of [one, two]) {
      const [late] = track(...await syncedClients(server, session.id, ['late']))
      await late.hasText(expected)
      const info = await server.getSession(session.id)
      assert.equal(info.status, 200, 'REST on each instance sees the session')
      assert.equal(info.body.language, 'python')
    }
  })

  test('presence crosses instances: states, their changes and their removal', async () => {
    const session = await one.createSession('javascript')
    const [a] = track(...await syncedClients(one, session.id, ['A on one']))
    const [b] = track(...await syncedClients(two, session.id, ['B on two']))
    a.awareness.setLocalStateField('user', { name: 'Ada' })
    b.awareness.setLocalStateField('user', { name: 'Bob' })
    await waitFor(() => b.awareness.getStates().get(a.doc.clientID)?.user?.name === 'Ada', {
      message: 'B (on two) to see Ada (on one)'
    })
    await waitFor(() => a.awareness.getStates().get(b.doc.clientID)?.user?.name === 'Bob', {
      message: 'A (on one) to see Bob (on two)'
    })
    // The server's word on roles holds across instances too.
    assert.equal(b.awareness.getStates().get(a.doc.clientID)?.role, 'candidate')
    a.awareness.setLocalStateField('cursor', { line: 7 })
    await waitFor(() => b.awareness.getStates().get(a.doc.clientID)?.cursor?.line === 7, {
      message: "B to see A's cursor move"
    })
    // A joiner on two is sent the presence of someone on one.
    const [c] = track(...await syncedClients(two, session.id, ['C on two']))
    await waitFor(() => c.awareness.getStates().get(a.doc.clientID)?.user?.name === 'Ada', {
      message: 'a joiner on two to be sent Ada (on one)'
    })
    // REST on either instance counts the people on both.
    for (const server of [one, two]) {
      await waitFor(async () => (await server.getSession(session.id)).body.users === 3, {
        message: 'REST to count the three people on the two instances'
      })
    }
    // A leaves without a goodbye: its instance removes it, and so do the others.
    a.kill()
    await waitFor(() => !b.awareness.getStates().has(a.doc.clientID), {
      message: 'B to see A gone'
    })
    await waitFor(async () => (await two.getSession(session.id)).body.users === 2, {
      message: 'REST on two to count A gone'
    })
  })

  test("the interviewers' notes and a candidate's join reach interviewers on the other instance", async () => {
    const session = await one.createSession('python')
    const params = { key: session.interviewerKey }
    const ivy = yClient(one, `${session.id}/notes`, { name: 'Ivy (notes, on one)', params })
    const iris = yClient(two, `${session.id}/notes`, { name: 'Iris (notes, on two)', params })
    track(ivy, iris)
    await ivy.synced()
    await iris.synced()
    ivy.doc.getText('notes').insert(0, 'strong start\n')
    await waitFor(() => iris.doc.getText('notes').toString() === 'strong start\n', {
      message: "Iris (on two) to get Ivy's notes (on one)"
    })
    // A candidate joins on two and names themselves: two records the join in
    // the notes, and Ivy on one sees it.
    const [cam] = track(...await syncedClients(two, session.id, ['Cam on two']))
    cam.awareness.setLocalStateField('user', { name: 'Cam' })
    await waitFor(() => ivy.doc.getArray('events').toArray().some((e) => e.kind === 'join' && e.name === 'Cam'), {
      timeout: 20_000,
      message: () => `Ivy (on one) to see Cam's join; events: ${JSON.stringify(ivy.doc.getArray('events').toJSON())}`
    })
    assert.ok(!JSON.stringify(cam.doc.toJSON()).includes('strong start'), "the candidate's document holds the notes")
  })

  test('Redis restarted mid-typing: both instances reconnect by themselves and no edit is lost', async () => {
    const session = await one.createSession('javascript')
    const [a] = track(...await syncedClients(one, session.id, ['A on one']))
    const [b] = track(...await syncedClients(two, session.id, ['B on two']))
    const expected = await typeThrough(a, b, { everyMs: 20, settleMs: 500, what: 'the restart' }, () => redis.restart())
    // Both instances follow the log again: an edit on one reaches two.
    a.text.insert(0, 'after\n')
    await b.hasText('after\n' + expected, 10_000)
    const [fresh] = track(...await syncedClients(two, session.id, ['fresh on two']))
    await fresh.hasText(a.text.toString())
  })

  test('ending, reopening and deleting on one instance act on the clients of the other', async () => {
    const session = await one.createSession('python')
    const key = session.interviewerKey
    // W stays connected to two throughout, so two keeps the session open.
    const [w, b] = track(...await syncedClients(two, session.id, ['W on two', 'B on two']))
    b.text.insert(0, 'draft\n')
    const [a] = track(...await syncedClients(one, session.id, ['A on one']))
    await a.hasText('draft\n')

    assertStatus(await api(one, 'POST', `/api/sessions/${session.id}/end`, { key }), 204, 'end on one')
    await waitFor(() => w.meta.get('ended') === true, { message: 'W (on two) to see the interview ended' })
    assert.equal((await two.getSession(session.id)).body.ended, true, 'REST on two sees it ended')
    b.text.insert(b.text.length, 'after the end\n')
    await waitFor(() => b.closes.some((c) => c.code === 4409), {
      message: () => `B's edit after the end to be refused with 4409 by two (closes: ${JSON.stringify(b.closes)})`
    })
    await sleep(300)
    assert.equal(a.text.toString(), 'draft\n', 'an edit refused on two reached one')

    assertStatus(await api(one, 'POST', `/api/sessions/${session.id}/reopen`, { key }), 204, 'reopen on one')
    await waitFor(() => w.meta.get('ended') !== true, { message: 'W (on two) to see the interview reopened' })
    w.text.insert(w.text.length, 'reopened\n')
    await a.hasText('draft\nreopened\n')

    assertStatus(await api(one, 'DELETE', `/api/sessions/${session.id}`, { key }), 204, 'delete on one')
    await waitFor(() => w.closes.some((close) => close.code === 4404), {
      message: () => `W (on two) to be closed with 4404 (closes: ${JSON.stringify(w.closes)})`
    })
    assert.equal((await two.getSession(session.id)).status, 404, 'REST on two still sees the deleted session')
  })
})

describe('behind a round-robin load balancer', { skip: skip ?? false }, () => {
  let cluster, one, two, balancer
  const clients = []
  const track = (...cs) => { clients.push(...cs); return cs }

  before(async () => {
    cluster = await startCluster()
    ;({ one, two } = cluster)
    balancer = await startBalancer([one.port, two.port])
  })
  after(async () => {
    await balancer?.close()
    await stopCluster(cluster, clients)
  })

  test('kill -9 of an instance mid-typing loses nothing; its clients carry on through the other', async () => {
    const session = await one.createSession('javascript')
    // Round robin: the two typists land on different instances.
    const a = yClient(balancer, session.id, { name: 'A' })
    await a.synced()
    const b = yClient(balancer, session.id, { name: 'B' })
    await b.synced()
    track(a, b)
    const expected = await typeThrough(a, b, { everyMs: 15, settleMs: 600, what: 'the kill' }, () => one.stop('SIGKILL'))
    // Everything is in Redis: a fresh client (through the survivor) gets it all.
    const fresh = yClient(balancer, session.id, { name: 'fresh' })
    track(fresh)
    await fresh.synced()
    await fresh.hasText(expected)
    // The dead instance's people stop counting once it is taken for dead.
    await waitFor(async () => (await two.getSession(session.id)).body.users === 3, {
      timeout: 20_000,
      message: 'REST on the survivor to count exactly the three clients it has'
    })
  })
})

describe('compaction of a session\'s log', { skip: skip ?? false }, () => {
  let cluster
  const clients = []
  // Entries move to the compact history as soon as a snapshot covers them.
  before(async () => { cluster = await startCluster(['--redis-compact-after-secs', '0']) })
  after(() => stopCluster(cluster, clients))

  test('a compacted session loads whole on the other instance and plays back every update', async () => {
    const { one, two, redis } = cluster
    const redisSays = (...command) =>
      Number(execFileSync('redis-cli', ['-s', join(redis.dir, 'redis.sock'), ...command]).toString().trim())
    const session = await one.createSession('javascript')
    const [a] = await syncedClients(one, session.id, ['A on one'])
    const [b] = await syncedClients(two, session.id, ['B on two'])
    clients.push(a, b)
    // 100 updates of about 1 KB: past the 64 KiB after which a snapshot is due.
    const UPDATES = 100
    for (let i = 0; i < UPDATES; i++) {
      a.text.insert(a.text.length, `line ${i} ${'x'.repeat(1_000)}\n`)
      await sleep(5)
    }
    const log = `pp:{${session.id}}:log`
    const hist = `pp:{${session.id}}:hist`
    await waitFor(() => redisSays('LLEN', hist) >= 1 && redisSays('XLEN', log) < UPDATES, {
      timeout: 20_000,
      message: () => `entries to be compacted (stream ${redisSays('XLEN', log)} entries, history ${redisSays('LLEN', hist)} chunks)`
    })
    const text = a.text.toString()
    await waitFor(() => b.text.toString() === text, { message: 'B on two to follow A through the compaction' })
    b.text.insert(0, 'from two\n')
    await a.hasText('from two\n' + text)

    const [late] = await syncedClients(two, session.id, ['a joiner on two'])
    clients.push(late)
    assert.equal(late.text.toString(), 'from two\n' + text, 'a joiner on two did not get the whole document')

    const history = decodeHistory(
      await api(two, 'GET', `/api/sessions/${session.id}/history`, { key: session.interviewerKey }),
      session,
      'history of a compacted session'
    )
    assert.ok(history.count >= UPDATES + 1, `${history.count} updates in the history, fewer than the ${UPDATES + 1} typed`)
    const replayed = replay(history.records, 'replaying a compacted history').getText('code').toString()
    assert.equal(replayed, 'from two\n' + text, 'replaying the history does not give the document')
  })
})
