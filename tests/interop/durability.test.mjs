// Interop: nothing a client has received is lost. Covers SIGKILL of the server
// after edits were relayed (restart on the same data directory serves every
// edit, including across a compaction snapshot), and graceful SIGTERM (connected
// clients get close 1001, the process exits 0, the restart serves the data).

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startServer } from './support/server.mjs'
import { yClient, rawClient, syncedClients, waitFor, within } from './support/clients.mjs'

describe('durability across restarts', () => {
  let server
  const clients = []
  const track = (...cs) => { clients.push(...cs); return cs }
  const destroyAll = () => { for (const c of clients) c.destroy() }

  before(async () => {
    // Rate limits raised: one test sends hundreds of edits as fast as it can.
    server = await startServer({ args: ['--messages-per-second', '100000', '--message-burst', '100000'] })
  })
  after(async () => {
    destroyAll()
    await server?.dispose()
  })

  test('after SIGKILL and restart, a fresh client receives every edit another client had received', async () => {
    const session = await server.createSession('python')
    const [a, b, c] = track(...await syncedClients(server, session.id, ['A', 'B', 'C (observer)']))

    a.text.insert(0, 'def solve(xs):\n')
    await b.hasText('def solve(xs):\n')
    for (let i = 0; i < 10; i++) {
      a.text.insert(a.text.length, `    a${i} = ${i}\n`)
      b.text.insert(0, `# b${i}\n`)
    }
    b.text.delete(0, 5) // removes "# b9\n"
    await waitFor(() => a.text.toString() === b.text.toString() && a.text.toString().includes('a9') && !a.text.toString().includes('# b9'), {
      message: () => `A and B to converge\nA: ${JSON.stringify(a.text.toString())}\nB: ${JSON.stringify(b.text.toString())}`
    })
    const expected = a.text.toString()
    await c.hasText(expected)

    const exit = await server.stop('SIGKILL')
    assert.equal(exit.signal, 'SIGKILL')
    // No client may survive to re-upload its copy and mask a loss.
    destroyAll()
    await server.restart()

    const [fresh] = track(yClient(server, session.id, { name: 'fresh client after SIGKILL' }))
    await fresh.synced()
    await fresh.hasText(expected)
    assert.equal(fresh.meta.get('language'), 'python')
  })

  test('hundreds of edits (past a compaction snapshot) survive SIGKILL', async () => {
    const session = await server.createSession()
    const [a, c] = track(...await syncedClients(server, session.id, ['A', 'C (observer)']))
    let expected = ''
    for (let i = 0; i < 700; i++) {
      const piece = i % 50 === 49 ? '\n' : String(i % 10)
      a.text.insert(a.text.length, piece)
      expected += piece
      if (i % 100 === 99) {
        a.text.delete(0, 1)
        expected = expected.slice(1)
      }
    }
    await c.hasText(expected, 15_000)

    await server.stop('SIGKILL')
    destroyAll()
    await server.restart()

    const [fresh] = track(yClient(server, session.id, { name: 'fresh client after SIGKILL' }))
    await fresh.hasText(expected, 15_000)
  })

  test('SIGTERM closes connections with 1001, exits 0, and the restart serves the data', async () => {
    const session = await server.createSession()
    const [a] = track(...await syncedClients(server, session.id, ['A']))
    a.text.insert(0, 'console.log("still here")\n')
    const raw = rawClient(server.wsUrl(session.id))
    await raw.open()
    const [c] = track(yClient(server, session.id, { name: 'C (observer)' }))
    await c.hasText('console.log("still here")\n')

    const exit = await server.stop('SIGTERM')
    const closed = await raw.closeInfo(undefined, 'the raw client to be closed by the shutdown')
    assert.equal(closed.code, 1001, `raw client closed with ${closed.code} (${closed.reason}), expected 1001 going away`)
    assert.ok(closed.reason.length > 0, 'the 1001 close carries a reason')
    await waitFor(() => a.closes.length > 0, { message: 'the Yjs client to see its connection close' })
    assert.equal(a.closes[0].code, 1001, `Yjs client saw close ${JSON.stringify(a.closes[0])}, expected 1001`)
    assert.deepEqual(exit, { code: 0, signal: null }, `pairpad exited with ${JSON.stringify(exit)} after SIGTERM`)

    destroyAll()
    await server.restart()
    const [fresh] = track(yClient(server, session.id, { name: 'fresh client after SIGTERM' }))
    await fresh.hasText('console.log("still here")\n')
    const rest = await within(server.getSession(session.id), { message: 'GET /api/sessions/:id after restart' })
    assert.equal(rest.status, 200)
  })
})
