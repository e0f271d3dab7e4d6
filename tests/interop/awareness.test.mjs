// Interop: presence (y-protocols awareness) through the real server. Covers a
// state reaching other clients, a late joiner getting current states right away
// (SyncStep1 then awareness on connect), removal broadcast when a client drops
// without saying goodbye and when it leaves cleanly, the sender's own echo, and
// the REST `users` count following connections.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startServer } from './support/server.mjs'
import { yClient, rawClient, waitFor } from './support/clients.mjs'
import { parseFrame, awarenessFrame, hex, MSG_AWARENESS } from './support/protocol.mjs'

const nameOf = (client, id) => client.awareness.getStates().get(id)?.user?.name

describe('awareness (presence)', () => {
  let server
  const clients = []
  const raws = []
  const track = (c) => { clients.push(c); return c }

  before(async () => { server = await startServer() })
  after(async () => {
    for (const c of clients) c.destroy()
    for (const r of raws) r.terminate()
    await server?.dispose()
  })

  test('states reach others, a late joiner gets them on connect, and a dropped client is removed', async () => {
    const session = await server.createSession()
    const a = track(yClient(server, session.id, { name: 'A' }))
    const b = track(yClient(server, session.id, { name: 'B' }))
    await Promise.all([a.synced(), b.synced()])

    a.awareness.setLocalStateField('user', { name: 'Ada', color: '#f80' })
    b.awareness.setLocalStateField('user', { name: 'Bob', color: '#08f' })
    await waitFor(() => nameOf(b, a.doc.clientID) === 'Ada', {
      message: () => `B to see A's presence "Ada"; B sees ${JSON.stringify([...b.awareness.getStates()])}`
    })

    // Later changes (a cursor) are relayed too.
    a.awareness.setLocalStateField('cursor', { anchor: 3, head: 5 })
    await waitFor(() => b.awareness.getStates().get(a.doc.clientID)?.cursor?.head === 5, {
      message: "B to see A's cursor update"
    })

    // A late joiner has A's state as soon as it has synced: the server sends the
    // current states right after its SyncStep1, before answering the client's.
    const c = track(yClient(server, session.id, { name: 'C (late joiner)' }))
    await c.synced()
    assert.equal(nameOf(c, a.doc.clientID), 'Ada',
      `C synced but had no presence for A yet; C sees ${JSON.stringify([...c.awareness.getStates()])}`)
    assert.equal(c.awareness.getStates().get(a.doc.clientID)?.cursor?.head, 5)

    // A drops without a goodbye (no awareness removal from the client): the
    // server must remove A's state and tell everyone.
    a.kill()
    await waitFor(() => !b.awareness.getStates().has(a.doc.clientID), {
      message: () => `B to see A removed after A's connection dropped; B sees ${JSON.stringify([...b.awareness.getStates()])}`
    })
    await waitFor(() => !c.awareness.getStates().has(a.doc.clientID), {
      message: "C to see A removed after A's connection dropped"
    })

    // And a newcomer after that does not get a ghost of A.
    const d = track(yClient(server, session.id, { name: 'D' }))
    await d.synced()
    await waitFor(() => nameOf(d, b.doc.clientID) === 'Bob', { message: "D to get B's presence" })
    assert.equal(d.awareness.getStates().has(a.doc.clientID), false, 'D received the presence of A, who had left')

    // A clean leave (y-websocket sends a null state) reaches the others too.
    c.destroy()
    await waitFor(() => !b.awareness.getStates().has(c.doc.clientID), {
      message: 'B to see C removed after C left cleanly'
    })
  })

  test('on connect the server sends SyncStep1 first, then current states; presence is echoed to its sender', async () => {
    const session = await server.createSession()
    const a = track(yClient(server, session.id, { name: 'A' }))
    await a.synced()
    a.awareness.setLocalStateField('user', { name: 'Ada' })
    await waitFor(async () => (await server.getSession(session.id)).body.users === 1, { message: 'REST to count A' })

    const raw = rawClient(server.wsUrl(session.id)); raws.push(raw)
    await raw.open()
    await waitFor(() => raw.frames.length >= 2, {
      message: () => `two frames on connect (SyncStep1, awareness); got ${raw.frames.map((f) => hex(f.data)).join(' | ')}`
    })
    const [first, second] = raw.frames.map((f) => parseFrame(f.data))
    assert.equal(first.length, 1, 'one message per frame')
    assert.equal(first[0].type, 'sync')
    assert.equal(first[0].step, 0, 'the first frame is the server SyncStep1')
    assert.equal(second.length, 1, 'one message per frame')
    assert.equal(second[0].type, 'awareness')
    const adas = second[0].entries.filter((e) => e.clientID === a.doc.clientID)
    assert.equal(adas.length, 1, "the awareness frame carries A's state")
    assert.equal(JSON.parse(adas[0].json).user.name, 'Ada')

    // A raw client announces itself; both the stock client and the sender hear it.
    const rawId = 424242
    await raw.send(awarenessFrame(rawId, 1, { user: { name: 'Raw' } }))
    await waitFor(() => nameOf(a, rawId) === 'Raw', { message: "A to see the raw client's presence" })
    await raw.waitFrame((data) => {
      if (data[0] !== MSG_AWARENESS) return false
      return parseFrame(data).some((m) => m.type === 'awareness' && m.entries.some((e) => e.clientID === rawId))
    }, undefined, 'the server to echo presence back to its sender')

    // The raw client drops: its announced client id is removed for A.
    raw.terminate()
    await waitFor(() => !a.awareness.getStates().has(rawId), { message: "A to see the raw client's presence removed" })
  })

  test('REST users counts connections and returns to 0 when they leave', async () => {
    const session = await server.createSession()
    const before = await server.getSession(session.id)
    assert.equal(before.status, 200)
    assert.equal(before.body.users, 0)

    const a = track(yClient(server, session.id, { name: 'A' }))
    const b = track(yClient(server, session.id, { name: 'B' }))
    await Promise.all([a.synced(), b.synced()])
    await waitFor(async () => (await server.getSession(session.id)).body.users === 2, {
      message: 'GET /api/sessions/:id to report users: 2 with two clients connected'
    })

    a.destroy()
    await waitFor(async () => (await server.getSession(session.id)).body.users === 1, {
      message: 'users: 1 after one client left'
    })
    b.kill()
    await waitFor(async () => (await server.getSession(session.id)).body.users === 0, {
      message: 'users: 0 after both clients left'
    })
  })
})
