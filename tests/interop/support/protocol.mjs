// y-websocket wire helpers for raw-socket tests, built on lib0 (the encoder the
// stock clients use): parse what the server sends, build frames to send.

import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'

export const MSG_SYNC = 0
export const MSG_AWARENESS = 1
export const SYNC_STEP1 = 0
export const SYNC_STEP2 = 1
export const SYNC_UPDATE = 2

/**
 * Parses one server frame into its messages. Throws on anything malformed, so a
 * test that parses what the server sends also checks the server's framing.
 * @returns {Array<{type: 'sync', step: number, payload: Uint8Array} | {type: 'awareness', payload: Uint8Array, entries: Array<{clientID: number, clock: number, json: string}>} | {type: number}>}
 */
export function parseFrame (frame) {
  const decoder = decoding.createDecoder(new Uint8Array(frame))
  const messages = []
  while (decoding.hasContent(decoder)) {
    const type = decoding.readVarUint(decoder)
    if (type === MSG_SYNC) {
      const step = decoding.readVarUint(decoder)
      const payload = decoding.readVarUint8Array(decoder)
      messages.push({ type: 'sync', step, payload })
    } else if (type === MSG_AWARENESS) {
      const payload = decoding.readVarUint8Array(decoder)
      messages.push({ type: 'awareness', payload, entries: parseAwarenessUpdate(payload) })
    } else {
      throw new Error(`server sent unexpected message type ${type}`)
    }
  }
  return messages
}

/** Decodes an awareness update's entries without interpreting the JSON. */
export function parseAwarenessUpdate (payload) {
  const decoder = decoding.createDecoder(payload)
  const count = decoding.readVarUint(decoder)
  const entries = []
  for (let i = 0; i < count; i++) {
    const clientID = decoding.readVarUint(decoder)
    const clock = decoding.readVarUint(decoder)
    const json = decoding.readVarString(decoder)
    entries.push({ clientID, clock, json })
  }
  return entries
}

/** A sync message frame. */
export function syncFrame (step, payload) {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MSG_SYNC)
  encoding.writeVarUint(encoder, step)
  encoding.writeVarUint8Array(encoder, payload)
  return encoding.toUint8Array(encoder)
}

/** SyncStep1 with an empty state vector: "send me everything". */
export function emptySyncStep1 () {
  return syncFrame(SYNC_STEP1, new Uint8Array([0]))
}

/**
 * An awareness frame for one client; `state` is an object (JSON-encoded), null
 * (removal), or a raw string sent verbatim as the JSON field.
 */
export function awarenessFrame (clientID, clock, state) {
  const json = typeof state === 'string' ? state : JSON.stringify(state)
  const inner = encoding.createEncoder()
  encoding.writeVarUint(inner, 1)
  encoding.writeVarUint(inner, clientID)
  encoding.writeVarUint(inner, clock)
  encoding.writeVarString(inner, json)
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MSG_AWARENESS)
  encoding.writeVarUint8Array(encoder, encoding.toUint8Array(inner))
  return encoding.toUint8Array(encoder)
}

/** Short hex dump for failure messages. */
export function hex (data, max = 48) {
  const buf = Buffer.from(data)
  const text = buf.subarray(0, max).toString('hex').replace(/(..)/g, '$1 ').trim()
  return buf.length > max ? `${text} ... (${buf.length} bytes)` : text
}
