// Interop: bad input over raw `ws` sockets and stock clients. Covers every
// WebSocket refusal and limit with its close code and reason: unknown session
// 4404, malformed id 4400, text frame 1003, malformed binary 1007, oversized
// frame 1009, message flood 1008, session full / too many per IP 1013, and
// document too large 4413 (the rejected update is neither relayed nor stored).
// After each bad connection, healthy clients on another session and on the same
// session still sync: the server did not fall over.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { startServer } from './support/server.mjs'
import { yClient, rawClient, syncedClients, assertSessionHealthy, waitFor } from './support/clients.mjs'
import { emptySyncStep1, syncFrame, SYNC_UPDATE } from './support/protocol.mjs'

/** Opens a raw connection to a session and waits until it has joined (the server's SyncStep1 arrived). */
async function joinedRaw (server, sessionId, what = 'raw client') {
  const raw = rawClient(server.wsUrl(sessionId))
  await raw.open()
  await raw.waitFrame((data) => data[0] === 0 && data[1] === 0, undefined,
    `${what} to receive the server's SyncStep1`)
  return raw
}

/** Asserts the connection closed with `code` and a non-empty reason; returns the close. */
async function expectClose (raw, code, what) {
  const closed = await raw.closeInfo(undefined, `the server to close the connection after ${what}`)
  assert.equal(closed.code, code, `${what}: expected close ${code}, got ${closed.code} (reason: ${JSON.stringify(closed.reason)})`)
  assert.ok(closed.reason.trim().length > 0, `${what}: close ${code} has no reason text`)
  return closed
}

async function serverStillWorks (server, sameSession, otherSession, label) {
  assert.equal(server.proc.exitCode, null, `the server process exited after ${label}`)
  await assertSessionHealthy(server, otherSession, `${label} / another session`)
  if (sameSession) await assertSessionHealthy(server, sameSession, `${label} / same session`)
}

describe('refusals and malformed frames (64 KiB frame limit)', () => {
  let server, main, other
  before(async () => {
    server = await startServer({ args: ['--max-frame-bytes', '65536'] })
    main = (await server.createSession()).id
    other = (await server.createSession()).id
  })
  after(async () => { await server?.dispose() })

  test('unknown session id -> 4404', async () => {
    const id = randomUUID()
    const raw = rawClient(server.wsUrl(id))
    await expectClose(raw, 4404, `connecting to unknown session ${id}`)
    assert.equal(raw.frames.length, 0, 'no protocol frames are sent for an unknown session')
    await serverStillWorks(server, null, other, 'unknown id')
  })

  test('malformed session id -> 4400', async () => {
    for (const id of ['not-a-session-id', '12345', 'a'.repeat(300), encodeURIComponent('../../etc/passwd')]) {
      const raw = rawClient(server.wsUrl(id))
      await expectClose(raw, 4400, `connecting with malformed id ${JSON.stringify(id.slice(0, 40))}`)
    }
    await serverStillWorks(server, main, other, 'malformed id')
  })

  test('a stock y-websocket client on an unknown session stops with 4404 instead of retrying', async () => {
    const c = yClient(server, randomUUID(), { name: 'client of an unknown session' })
    try {
      await waitFor(() => c.terminal.length > 0, {
        message: () => `y-websocket to report a permanent close; closes: ${JSON.stringify(c.closes)}`
      })
      assert.equal(c.terminal[0].code, 4404)
    } finally {
      c.destroy()
    }
  })

  test('refusals reach clients that send on open, as y-websocket does (SyncStep1 + awareness)', async () => {
    // A browser opening an expired link must be told 4404 every time, not get an
    // abnormal 1006 and retry forever.
    for (const [what, id, code] of [['unknown session', null, 4404], ['malformed id', 'not-a-session-id', 4400]]) {
      // 20 at once, like a class of candidates opening a stale link.
      const seen = await Promise.all(Array.from({ length: 20 }, async () => {
        const raw = rawClient(server.wsUrl(id ?? randomUUID()))
        raw.ws.once('open', () => {
          raw.send(emptySyncStep1()).catch(() => {})
          raw.send('01 01 00').catch(() => {}) // empty awareness update
        })
        return (await raw.closeInfo(undefined, `the ${what} refusal`)).code
      }))
      assert.deepEqual(seen, Array(20).fill(code),
        `${what}: 20 clients that send right after opening should all get ${code}; close codes seen: ${seen.join(', ')}`)
    }
    await serverStillWorks(server, main, other, 'refusals')
  })

  test('text frame -> 1003', async () => {
    const raw = await joinedRaw(server, main)
    await raw.send('hello, is this JSON?', { text: true })
    await expectClose(raw, 1003, 'a text frame')
    await serverStillWorks(server, main, other, 'text frame')
  })

  test('garbage binary frames -> 1007', async () => {
    const cases = [
      ['update whose length points past the end', '00 02 05 ff ff'],
      ['varint that never ends', 'ff ff ff ff ff ff ff ff ff ff'],
      ['truncated sync message', '00 00'],
      ['update payload that is not an update', '00 02 05 ff ff ff ff ff']
    ]
    for (const [what, frame] of cases) {
      const raw = await joinedRaw(server, main)
      await raw.send(frame)
      await expectClose(raw, 1007, `${what} [${frame}]`)
      await serverStillWorks(server, main, other, what)
    }
  })

  test('a frame over --max-frame-bytes -> 1009; one under it is accepted', async () => {
    // Under the limit: a ~50 KB paste from a stock client syncs.
    const [a, b] = await syncedClients(server, main, ['A', 'B'])
    try {
      const paste = 'x'.repeat(50_000)
      a.text.insert(0, paste)
      await waitFor(() => b.text.toString().includes(paste), { message: 'B to receive the 50 KB paste (under the 64 KiB frame limit)' })
      assert.deepEqual(a.closes, [], 'the client sending a frame under the limit was disconnected')
    } finally {
      a.destroy()
      b.destroy()
    }
    // Over the limit, as one raw frame.
    const raw = await joinedRaw(server, main)
    const big = Buffer.from(syncFrame(SYNC_UPDATE, new Uint8Array(70_000)))
    await raw.send(big)
    await expectClose(raw, 1009, `a ${big.length}-byte frame`)
    await serverStillWorks(server, main, other, 'oversized frame')
  })
})

describe('message rate limit', () => {
  let server, main, other
  before(async () => {
    server = await startServer({ args: ['--messages-per-second', '5', '--message-burst', '10'] })
    main = (await server.createSession()).id
    other = (await server.createSession()).id
  })
  after(async () => { await server?.dispose() })

  test('a flood of valid messages -> 1008', async () => {
    const raw = await joinedRaw(server, main)
    const frame = emptySyncStep1()
    // A misbehaving client keeps sending until it is cut off (at most 5000 frames).
    let sent = 0
    while (raw.isOpen && sent < 5000) {
      for (let i = 0; i < 50; i++) raw.send(frame).catch(() => {})
      sent += 50
      await new Promise((resolve) => setImmediate(resolve))
    }
    await expectClose(raw, 1008, `a flood of SyncStep1 messages (${sent} sent; burst 10, 5/s)`)
    await serverStillWorks(server, main, other, 'message flood')
  })
})

describe('connection limits', () => {
  test('a connection past --session-connection-limit -> 1013; a slot frees when one leaves', async () => {
    const server = await startServer({ args: ['--session-connection-limit', '3'] })
    const holders = []
    try {
      const main = (await server.createSession()).id
      const other = (await server.createSession()).id
      for (let i = 0; i < 3; i++) holders.push(await joinedRaw(server, main, `holder ${i + 1}`))
      const fourth = rawClient(server.wsUrl(main))
      await expectClose(fourth, 1013, 'a 4th connection to a session limited to 3')

      // Other sessions are unaffected while this one is full.
      await assertSessionHealthy(server, other, 'full session / another session')

      // One leaves: a newcomer gets in.
      holders.shift().terminate()
      await waitFor(async () => (await server.getSession(main)).body.users === 2, { message: 'users to drop to 2 after a holder left' })
      holders.push(await joinedRaw(server, main, 'newcomer after a slot freed'))

      for (const h of holders.splice(0)) h.terminate()
      await waitFor(async () => (await server.getSession(main)).body.users === 0, { message: 'users to drop to 0' })
      await serverStillWorks(server, main, other, 'session full')
    } finally {
      for (const h of holders) h.terminate()
      await server.dispose()
    }
  })

  test('a connection past --ip-connection-limit -> 1013; a slot frees when one leaves', async () => {
    const server = await startServer({ args: ['--ip-connection-limit', '3'] })
    const holders = []
    try {
      const sessions = []
      for (let i = 0; i < 4; i++) sessions.push((await server.createSession()).id)
      for (let i = 0; i < 3; i++) holders.push(await joinedRaw(server, sessions[i], `holder ${i + 1}`))
      const fourth = rawClient(server.wsUrl(sessions[3]))
      await expectClose(fourth, 1013, 'a 4th connection from one IP limited to 3')

      holders.shift().terminate()
      await waitFor(async () => {
        const probe = rawClient(server.wsUrl(sessions[3]))
        const joined = await Promise.race([
          probe.waitFrame((d) => d[0] === 0, 2_000).then(() => true, () => false),
          probe.closed.then(() => false)
        ])
        if (joined) holders.push(probe)
        else probe.terminate()
        return joined
      }, { message: 'a connection to be accepted again after one of the three left' })

      for (const h of holders.splice(0)) h.terminate()
      await serverStillWorks(server, sessions[3], sessions[0], 'too many connections per IP')
    } finally {
      for (const h of holders) h.terminate()
      await server.dispose()
    }
  })
})

describe('document size limit', () => {
  let server
  before(async () => { server = await startServer({ args: ['--max-document-bytes', '10000'] }) })
  after(async () => { await server?.dispose() })

  test('an update that would make the document too large -> 4413, and it is neither relayed nor stored', async () => {
    const main = (await server.createSession()).id
    const other = (await server.createSession()).id
    const [a, b] = await syncedClients(server, main, ['A (sends too much)', 'B'])
    try {
      a.text.insert(0, 'small start\n')
      await b.hasText('small start\n')

      const huge = 'Z'.repeat(12_000)
      a.text.insert(a.text.length, huge)
      await waitFor(() => a.closes.length > 0, {
        message: () => `A to be closed after a ${huge.length}-character insert over a 10000-byte limit`
      })
      assert.equal(a.closes[0].code, 4413, `A was closed with ${JSON.stringify(a.closes[0])}, expected 4413`)
      assert.ok(a.closes[0].reason.trim().length > 0, '4413 close has no reason text')
      assert.equal(a.terminal[0]?.code, 4413, 'y-websocket should treat 4413 as permanent (no reconnect loop)')
      a.destroy()

      // A newcomer gets the document without the rejected text; then a marker edit
      // from it reaches B, so B has seen everything the room relayed before.
      const [c] = await syncedClients(server, main, ['C (newcomer)'])
      try {
        assert.equal(c.text.toString(), 'small start\n', 'the newcomer received the rejected text')
        c.text.insert(c.text.length, 'after\n')
        await b.hasText('small start\nafter\n')
      } finally {
        c.destroy()
      }
      b.destroy()

      // And it is not in storage either.
      await server.stop('SIGKILL')
      await server.restart()
      const [d] = await syncedClients(server, main, ['D (after restart)'])
      try {
        await d.hasText('small start\nafter\n')
      } finally {
        d.destroy()
      }
      await serverStillWorks(server, main, other, 'document too large')
    } finally {
      a.destroy()
      b.destroy()
    }
  })
})
