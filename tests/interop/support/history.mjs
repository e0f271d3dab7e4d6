// The session history answer behind playback (GET /api/sessions/:id/history):
// checked against its contract and decoded, for the tests that read it.

import assert from 'node:assert/strict'
import { assertStatus } from './http.mjs'
import { Y } from './clients.mjs'

export const FORMAT = 'pairpad-history-1'
export const ROLES = ['candidate', 'interviewer']
export const EVENT_KINDS = ['join', 'leave', 'blur', 'focus', 'paste']
/** Standard base64 with padding (no URL-safe alphabet, no missing "="). */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** lib0's unsigned varint at `pos` of `buf`: [value, next pos]. */
function readVarUint (buf, pos, what) {
  let value = 0
  let mult = 1
  for (let i = 0; ; i++) {
    assert.ok(pos < buf.length, `${what}: the blob ends inside a varuint (byte ${pos} of ${buf.length})`)
    const byte = buf[pos++]
    value += (byte & 0x7f) * mult
    if (byte < 0x80) return [value, pos]
    mult *= 128
    assert.ok(i < 7, `${what}: a varuint longer than 8 bytes at byte ${pos}`)
  }
}

/**
 * Checks a history answer against the contract and decodes it: the JSON
 * object plus `records` [{index, at, author, update}].
 */
export function decodeHistory (res, session, what) {
  assertStatus(res, 200, what)
  assert.match(String(res.headers['content-type']), /^application\/json/i, `${what}: content-type`)
  const h = res.json
  assert.ok(h && typeof h === 'object', `${what}: not a JSON object: ${res.text.slice(0, 300)}`)
  assert.equal(h.id, session.id, `${what}: id`)
  assert.equal(h.format, FORMAT, `${what}: format`)
  assert.ok(Number.isSafeInteger(h.createdAt) && h.createdAt > 0, `${what}: createdAt should be ms since the epoch, got ${JSON.stringify(h.createdAt)}`)
  assert.equal(h.createdAt, Date.parse(session.createdAt), `${what}: createdAt should be the session's creation time ${session.createdAt}`)
  assert.ok(Number.isSafeInteger(h.count) && h.count >= 0, `${what}: count should be a whole number, got ${JSON.stringify(h.count)}`)
  assert.equal(typeof h.updates, 'string', `${what}: updates should be a base64 string`)
  assert.match(h.updates, BASE64, `${what}: updates is not standard padded base64: ${h.updates.slice(0, 80)}`)
  const blob = Buffer.from(h.updates, 'base64')
  assert.equal(blob.toString('base64'), h.updates, `${what}: updates is not canonical base64`)

  const records = []
  let pos = 0
  let at = 0
  for (let index = 0; index < h.count; index++) {
    let delta, author, length
    ;[delta, pos] = readVarUint(blob, pos, `${what}: record ${index} of ${h.count} (atDelta)`)
    ;[author, pos] = readVarUint(blob, pos, `${what}: record ${index} of ${h.count} (author)`)
    ;[length, pos] = readVarUint(blob, pos, `${what}: record ${index} of ${h.count} (length)`)
    assert.ok(pos + length <= blob.length, `${what}: record ${index} of ${h.count} says ${length} bytes but ${blob.length - pos} remain`)
    at += delta
    records.push({ index, at, author, update: new Uint8Array(blob.subarray(pos, pos + length)) })
    pos += length
  }
  assert.equal(pos, blob.length, `${what}: ${blob.length - pos} bytes left in the blob after the ${h.count} records count announces`)
  for (const r of records.slice(1)) {
    assert.ok(r.at >= records[r.index - 1].at, `${what}: record ${r.index} at ${r.at} is before record ${r.index - 1} at ${records[r.index - 1].at}`)
  }

  assert.ok(Array.isArray(h.authors), `${what}: authors should be an array`)
  for (const a of h.authors) {
    assert.ok(Number.isSafeInteger(a.client) && a.client > 0, `${what}: author ${JSON.stringify(a)}: client should be a client id`)
    assert.equal(typeof a.name, 'string', `${what}: author ${JSON.stringify(a)}: name`)
    assert.ok(ROLES.includes(a.role), `${what}: author ${JSON.stringify(a)}: role`)
    assert.ok('color' in a && (a.color === null || ['string', 'number'].includes(typeof a.color)), `${what}: author ${JSON.stringify(a)}: color should be a string, a number or null`)
  }
  const clients = h.authors.map((a) => a.client)
  assert.equal(new Set(clients).size, clients.length, `${what}: a client is listed twice in authors: ${JSON.stringify(h.authors)}`)

  assert.ok(Array.isArray(h.events), `${what}: events should be an array`)
  h.events.forEach((e, i) => {
    assert.ok(EVENT_KINDS.includes(e.kind), `${what}: event ${JSON.stringify(e)}: kind`)
    assert.ok(Number.isSafeInteger(e.at), `${what}: event ${JSON.stringify(e)}: at should be ms since the epoch`)
    if (i > 0) assert.ok(e.at >= h.events[i - 1].at, `${what}: events are not sorted by at: ${JSON.stringify(h.events)}`)
  })
  return { ...h, records }
}

/** Applies one record to `doc`, failing with the record's index if it is not a Yjs v1 update. */
export function applyRecord (doc, record, what) {
  try {
    Y.applyUpdate(doc, record.update)
  } catch (err) {
    assert.fail(`${what}: record ${record.index} is not an applicable Yjs v1 update: ${err.message}`)
  }
}

/** A fresh document with every record applied in order. */
export function replay (records, what) {
  const doc = new Y.Doc()
  for (const r of records) applyRecord(doc, r, what)
  return doc
}

