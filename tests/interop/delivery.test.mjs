// Interop: delivery to a client that stops reading for a while. The server
// writes relayed frames straight into an idle socket and queues them once the
// socket is full (see src/server/shared_socket.rs); a client that reads again
// before its queue passes --max-outbound-bytes must then get every frame, once,
// in the order the room relayed them, with its connection intact.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startServer } from './support/server.mjs'
import { syncedClients, waitFor } from './support/clients.mjs'
import { joinRaw, awarenessMessage, stateOfBytes } from './support/attacks.mjs'
import { parseFrame } from './support/protocol.mjs'

const STREAMER_ID = 4242
// 9.6 MB in all: more than the kernel's socket buffers hold (about 4 MB here),
// in fewer frames than a connection's queue takes (512).
const STATES = 600
const STATE_BYTES = 16_000

test('a reader that pauses while 9.6 MB of presence streams past gets every state, in order, once it reads again', async () => {
  const server = await startServer({
    args: [
      // Room for the streamer to send all its states at once, and for the
      // reader's queue to hold what the kernel cannot.
      '--messages-per-second', '4000', '--message-burst', '4000',
      '--max-awareness-state-bytes', String(STATE_BYTES),
      '--bytes-per-second', String(64 * 1024 * 1024),
      '--max-outbound-bytes', String(64 * 1024 * 1024)
    ]
  })
  const cleanup = []
  try {
    const session = (await server.createSession()).id
    const reader = await joinRaw(server, session, {}, 'pausing reader')
    cleanup.push(() => reader.terminate())
    const streamer = await joinRaw(server, session, {}, 'presence streamer')
    cleanup.push(() => streamer.terminate())
    reader.ws.pause()

    for (let clock = 1; clock <= STATES; clock++) {
      streamer.fire(awarenessMessage([{ id: STREAMER_ID, clock, state: stateOfBytes(STATE_BYTES, { n: clock }) }]))
    }
    // The room has relayed every state once a newcomer sees the last one.
    const [observer] = await syncedClients(server, session, ['observer'])
    cleanup.push(() => observer.destroy())
    await waitFor(() => observer.awareness.getStates().get(STREAMER_ID)?.n === STATES, {
      timeout: 30_000, message: "the room to relay the streamer's last state"
    })

    const clocksSeen = () => reader.frames.flatMap((frame) => frame[0] !== 1
      ? []
      : parseFrame(frame).flatMap((m) => m.type === 'awareness' ? m.entries : [])
        .filter((e) => e.clientID === STREAMER_ID).map((e) => e.clock))
    reader.ws.resume()
    await waitFor(() => clocksSeen().at(-1) === STATES, {
      timeout: 30_000,
      message: () => `the reader to receive the last state (it has ${clocksSeen().length} of ${STATES}; closed: ${JSON.stringify(reader.close)})`
    })
    const clocks = clocksSeen()
    assert.equal(clocks.length, STATES, 'the reader got each state once')
    clocks.forEach((clock, i) => assert.equal(clock, i + 1, `state ${i + 1} arrived out of order (got clock ${clock})`))
    assert.ok(reader.isOpen, `the reader was closed: ${JSON.stringify(reader.close)}`)
    assert.ok(streamer.isOpen, `the streamer was closed: ${JSON.stringify(streamer.close)}`)
  } finally {
    for (const undo of cleanup.reverse()) undo()
    await server.dispose()
  }
})
