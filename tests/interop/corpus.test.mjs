// Interop: a corpus of nasty frames (corpus/nasty-frames.json: bad varints,
// truncated and overlong lengths, unknown sync steps, garbage updates and state
// vectors, allocation-bomb counts, non-JSON awareness states, text frames). Each
// is sent alone on its own connection to a session with a document in it: every
// one must be answered with its close code (1007, or 1003 for text), the server
// must stay up, nothing malformed may be relayed to the other clients, and the
// document must be unchanged afterwards.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { startServer } from './support/server.mjs'
import { yClient, rawClient, syncedClients, assertSessionHealthy, bytes } from './support/clients.mjs'
import { parseFrame, hex } from './support/protocol.mjs'

const corpus = JSON.parse(readFileSync(new URL('./corpus/nasty-frames.json', import.meta.url), 'utf8')).frames

/** How long one nasty connection may stay open before counting as "not closed". */
const CLOSE_WAIT_MS = 3_000

describe('nasty-frames corpus', () => {
  let server, session, other, observer, watcher
  const baseline = 'const answer = 42;\n// 😀 漢字\n'
  let updatesSeen = 0

  before(async () => {
    assert.ok(corpus.length >= 15, `the corpus has only ${corpus.length} frames`)
    server = await startServer()
    session = (await server.createSession()).id
    other = (await server.createSession()).id
    const [author] = await syncedClients(server, session, ['author'])
    author.text.insert(0, baseline)
    // A stock client that stays in the session through the whole run.
    ;[observer] = await syncedClients(server, session, ['observer'])
    await observer.hasText(baseline)
    author.destroy()
    observer.doc.on('update', () => { updatesSeen++ })
    // A raw client that records everything the room relays during the run.
    watcher = rawClient(server.wsUrl(session))
    await watcher.open()
    await watcher.waitFrame((d) => d[0] === 0, undefined, 'the watcher to join')
  })
  after(async () => {
    observer?.destroy()
    watcher?.terminate()
    await server?.dispose()
  })

  for (const entry of corpus) {
    const label = entry.text !== undefined ? `text frame ${JSON.stringify(entry.text)}` : `[${entry.hex.replace(/(..)/g, '$1 ').trim().slice(0, 90)}]`
    test(`${entry.name} ${label} -> ${entry.expect}`, async () => {
      const raw = rawClient(server.wsUrl(session))
      try {
        await raw.open()
        await raw.waitFrame((d) => d[0] === 0 && d[1] === 0, undefined, "the server's SyncStep1 before sending the nasty frame")
        const before = raw.frames.length
        if (entry.text !== undefined) await raw.send(entry.text, { text: true })
        else await raw.send(bytes(entry.hex))
        let timer
        const info = await Promise.race([
          raw.closed,
          new Promise((resolve) => { timer = setTimeout(() => resolve(null), CLOSE_WAIT_MS) })
        ])
        clearTimeout(timer)
        assert.ok(info, `the server did not close the connection within ${CLOSE_WAIT_MS} ms after ${entry.name}; it sent back ${raw.frames.length - before} frame(s) after the nasty one, and the connection stayed open`)
        assert.equal(info.code, entry.expect,
          `${entry.name}: expected close ${entry.expect}, got ${info.code} (reason ${JSON.stringify(info.reason)})`)
        assert.ok(info.reason.trim().length > 0, `${entry.name}: close ${info.code} has no reason text`)
      } finally {
        raw.terminate()
      }
      assert.equal(server.proc.exitCode, null, `the server process exited after ${entry.name}`)
    })
  }

  test('the server is still up and other sessions work', async () => {
    assert.equal(server.proc.exitCode, null)
    assert.equal(server.proc.signalCode, null)
    await assertSessionHealthy(server, other, 'after the corpus')
  })

  test('nothing malformed was relayed to the other clients in the session', async () => {
    // Everything the room sent the watcher during the run must parse, carry no
    // document update (the document did not change), and every awareness state
    // must be JSON (stock clients JSON.parse it).
    const problems = []
    for (const { data } of watcher.frames) {
      let messages
      try {
        messages = parseFrame(data)
      } catch (err) {
        problems.push(`unparseable frame ${hex(data)}: ${err.message}`)
        continue
      }
      for (const m of messages) {
        if (m.type === 'sync' && m.step === 2) problems.push(`a document update was relayed: ${hex(data)}`)
        if (m.type !== 'awareness') continue
        for (const e of m.entries) {
          try { JSON.parse(e.json) } catch { problems.push(`awareness state for client ${e.clientID} is not JSON: ${JSON.stringify(e.json)} (frame ${hex(data)})`) }
        }
      }
    }
    assert.deepEqual(problems, [], 'the server relayed malformed data to the other clients in the session')
  })

  test('the stock Yjs client in the session did not choke on anything the server sent', () => {
    assert.deepEqual(observer.messageErrors.map(String), [],
      'the stock Yjs client threw while handling messages the server relayed')
  })

  test('the document is unchanged', async () => {
    assert.equal(observer.text.toString(), baseline, 'the observer saw the document change')
    assert.equal(updatesSeen, 0, `the observer received ${updatesSeen} document update(s) during the corpus run`)
    const [fresh] = await syncedClients(server, session, ['fresh client'])
    try {
      assert.equal(fresh.text.toString(), baseline, 'a fresh client got a changed document')
    } finally {
      fresh.destroy()
    }
  })

  test('a stock client can still edit the session afterwards', async () => {
    const c = yClient(server, session, { name: 'editor after the corpus' })
    try {
      await c.synced()
      c.text.insert(c.text.length, 'ok\n')
      await observer.hasText(baseline + 'ok\n')
    } finally {
      c.destroy()
    }
  })
})
