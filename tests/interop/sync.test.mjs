// Interop: stock Yjs + y-websocket clients (npm) editing one pairpad session
// through the real server. Covers concurrent edits converging, a late joiner
// receiving the whole document, offline edits merging on reconnect, the
// session's language arriving through the shared "meta" map, and UTF-16 offsets
// (emoji, CJK) agreeing between clients and the server's stored document.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startServer } from './support/server.mjs'
import { yClient, syncedClients, waitFor } from './support/clients.mjs'

describe('sync between stock Yjs clients', () => {
  let server
  const clients = []
  const track = (...cs) => { clients.push(...cs); return cs }

  before(async () => { server = await startServer() })
  after(async () => {
    for (const c of clients) c.destroy()
    await server?.dispose()
  })

  test('concurrent edits at different places converge; a late joiner gets the whole document', async () => {
    const session = await server.createSession('javascript')
    const [a, b] = track(...await syncedClients(server, session.id, ['A', 'B']))

    a.text.insert(0, 'function main() {\n}\n')
    await b.hasText('function main() {\n}\n')

    // Both edit before either has seen the other's edit.
    a.text.insert(0, '// header\n')
    b.text.insert(b.text.length, 'main()\n')
    const expected = '// header\nfunction main() {\n}\nmain()\n'
    await a.hasText(expected)
    await b.hasText(expected)

    // A burst of interleaved edits from both sides, none waiting for the other.
    for (let i = 0; i < 20; i++) {
      a.text.insert(0, `a${i};`)
      b.text.insert(b.text.length, `b${i};`)
      if (i % 5 === 4) b.text.delete(b.text.length - 1, 1) // drop B's last ';'
    }
    await waitFor(() => a.text.toString() === b.text.toString() && a.text.toString().includes('b19'), {
      message: () => `A and B to converge\nA: ${JSON.stringify(a.text.toString())}\nB: ${JSON.stringify(b.text.toString())}`
    })
    const final = a.text.toString()
    for (let i = 0; i < 20; i++) {
      assert.ok(final.includes(`a${i};`), `converged text lacks A's edit a${i}: ${final}`)
      assert.ok(final.includes(`b${i}`), `converged text lacks B's edit b${i}: ${final}`)
    }
    assert.ok(final.includes(expected), `converged text lost the earlier edits: ${final}`)

    const [c] = track(yClient(server, session.id, { name: 'C (late joiner)' }))
    await c.synced()
    await c.hasText(final)
    assert.equal(c.meta.get('language'), 'javascript')
    assert.equal(a.meta.get('language'), 'javascript')
  })

  test("a python session's language reaches every client through the meta map", async () => {
    const session = await server.createSession('python')
    assert.equal(session.language, 'python')
    const [p] = track(yClient(server, session.id, { name: 'P' }))
    await p.synced()
    await waitFor(() => p.meta.get('language') === 'python', {
      message: () => `meta.language to be "python"; it is ${JSON.stringify(p.meta.get('language'))}`
    })
    const rest = await server.getSession(session.id)
    assert.equal(rest.status, 200)
    assert.equal(rest.body.language, 'python')

    // A language change made by a client syncs to the others and to REST.
    const [q] = track(yClient(server, session.id, { name: 'Q' }))
    await q.synced()
    p.meta.set('language', 'javascript')
    await waitFor(() => q.meta.get('language') === 'javascript', {
      message: () => `Q to see the language change; it sees ${JSON.stringify(q.meta.get('language'))}`
    })
    await waitFor(async () => (await server.getSession(session.id)).body.language === 'javascript', {
      message: 'GET /api/sessions/:id to report the new language "javascript"'
    })
  })

  test('edits made while offline merge when the client reconnects', async () => {
    const session = await server.createSession()
    const [a, b] = track(...await syncedClients(server, session.id, ['A', 'B']))
    a.text.insert(0, 'shared line\n')
    await b.hasText('shared line\n')

    b.provider.disconnect()
    await waitFor(() => !b.provider.wsconnected, { message: 'B to disconnect' })
    b.text.insert(b.text.length, 'written offline by B\n')
    a.text.insert(0, 'written online by A\n')

    b.provider.connect()
    const expected = 'written online by A\nshared line\nwritten offline by B\n'
    await a.hasText(expected)
    await b.hasText(expected)

    const [c] = track(yClient(server, session.id, { name: 'C (late joiner)' }))
    await c.hasText(expected)
  })
})

describe('UTF-16 offsets (emoji, CJK)', () => {
  let server
  const clients = []
  const track = (...cs) => { clients.push(...cs); return cs }

  before(async () => { server = await startServer() })
  after(async () => {
    for (const c of clients) c.destroy()
    await server?.dispose()
  })

  test('inserts and deletes around surrogate pairs land in the same place on every client', async () => {
    const session = await server.createSession()
    const [a, b] = track(...await syncedClients(server, session.id, ['A', 'B']))

    a.text.insert(0, 'a😀b漢字')
    await b.hasText('a😀b漢字')
    assert.equal(b.text.length, 6, 'the emoji is two UTF-16 code units')

    // UTF-16 index 3 is right after the emoji; 5 is between 漢 and 字.
    b.text.insert(3, '→')
    a.text.insert(5, '🎉')
    const expected = 'a😀→b漢🎉字'
    await a.hasText(expected)
    await b.hasText(expected)

    const [c] = track(yClient(server, session.id, { name: 'C (late joiner)' }))
    await c.hasText(expected)
    assert.equal(c.text.length, expected.length)

    // Delete the first emoji (2 code units) from the late joiner, insert after it from A.
    c.text.delete(1, 2)
    await a.hasText('a→b漢🎉字')
    a.text.insert(a.text.length, ' ✓ 𝒳')
    const end = 'a→b漢🎉字 ✓ 𝒳'
    await b.hasText(end)
    await c.hasText(end)

    const [d] = track(yClient(server, session.id, { name: 'D (late joiner)' }))
    await d.hasText(end)
    assert.deepEqual(d.text.toDelta(), [{ insert: end }])
  })
})
