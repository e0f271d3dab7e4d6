// Interop: the session history behind playback (issue 13), against the real
// binary with stock Yjs clients and plain HTTP requests. Covers:
//   - GET /api/sessions/:id/history is for the key holder only (401 missing or
//     malformed Authorization, 403 a wrong or another session's key, 404
//     unknown session, 400 malformed id, JSON errors; a password on the session
//     does not matter for the key, and an unlock cookie is no key);
//   - the answer's format: `count` records back to back in standard base64,
//     each `varuint atDelta | varuint author | varuint length | Yjs v1 update`,
//     `at` non-decreasing and real; replaying every record gives exactly the
//     live document, every prefix replays without missing dependencies and the
//     replay passes through a state the clients had;
//   - who authored each update while two stock clients type at once (inserts,
//     delete-only transactions, deleting each other's text, emoji, CJK,
//     combining marks): their doc.clientID, 0 for the server's language write;
//     `authors` with the names, roles and colours they announced, without
//     clients that never announced a name;
//   - `events`: joins (with `client`), leaves, reported blur and paste, sorted
//     by `at`;
//   - reading history changes nothing (lastActivity, users, the document), and
//     works once the room has unloaded;
//   - after a SIGKILL restart every update a client had seen relayed is in the
//     history, with the same authors;
//   - the export's playbackUrl and the HTML export's link to it.

import { test, describe, before, after, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { startServer } from './support/server.mjs'
import { request, api, assertStatus, assertError as assertJsonError, create, describeRes } from './support/http.mjs'
import { yClient, waitFor, Y } from './support/clients.mjs'
import { applyRecord, decodeHistory, replay } from './support/history.mjs'

// Several stock clients per session from 127.0.0.1; the per-address cap is not under test here.
const SERVER_ARGS = ['--session-ip-connection-limit', '0']

/** Join events reach the notes document in batches (~5 s); history waits this long for them. */
const EVENTS_MS = 15_000

/** A well-formed interviewer key that belongs to no session. */
const randomKey = () => randomBytes(32).toString('base64url')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---- HTTP -----------------------------------------------------------------------------------------

/** `status` with a JSON error and nothing of the history. */
function assertError (res, status, what) {
  assertJsonError(res, status, what)
  assert.ok(!('updates' in res.json) && !('authors' in res.json), `${what}: a refused request answered with history data: ${res.text.slice(0, 300)}`)
}

const historyOf = (server, id, creds) => api(server, 'GET', `/api/sessions/${id}/history`, creds)
const getSession = (server, id, creds = {}) => api(server, 'GET', `/api/sessions/${id}`, creds)

// ---- WebSockets ----------------------------------------------------------------------------------

const tracked = new Set()
const track = (client) => { tracked.add(client); return client }
function destroyTracked () {
  for (const c of tracked) c.destroy()
  tracked.clear()
}

/**
 * A synced stock Yjs client on session `id` (with the key as the `key` URL
 * parameter if given). With `name`, it announces `user: {name, color}` in its
 * presence, as pairpad's page does. It records what it sends itself (see
 * trackSent).
 */
async function participant (server, id, { label, name, color, key } = {}) {
  const client = track(yClient(server, id, {
    name: label ?? name ?? 'client',
    params: key === undefined ? {} : { key }
  }))
  trackSent(client)
  await client.synced()
  if (name !== undefined) client.awareness.setLocalStateField('user', { name, color })
  return client
}

/** "client:clock" of every unit a delete set covers. */
function deletedUnits (ds) {
  const units = []
  for (const [client, items] of ds.clients) {
    for (const { clock, len } of items) for (let k = 0; k < len; k++) units.push(`${client}:${clock + k}`)
  }
  return units
}

const realStructs = (structs) => structs.filter((s) => !(s instanceof Y.Skip))

/**
 * Keeps, on `client.sent`, what the client itself sent to the server (its local
 * transactions; remote ones are applied with the provider as origin): the units
 * it deleted and how many delete-only and inserting transactions it made.
 */
function trackSent (client) {
  const sent = { deleted: new Set(), deleteOnly: 0, inserts: 0 }
  client.doc.on('update', (update, origin) => {
    if (origin === client.provider) return
    const { structs, ds } = Y.decodeUpdate(update)
    const units = deletedUnits(ds)
    for (const u of units) sent.deleted.add(u)
    if (realStructs(structs).length > 0) sent.inserts++
    else if (units.length > 0) sent.deleteOnly++
  })
  client.sent = sent
}

/**
 * Waits until every client has the same document (text, state vector and
 * delete set) and `check(text)` holds; returns that text.
 */
async function converge (clients, what, check = () => true) {
  await waitFor(() => {
    const first = Y.snapshot(clients[0].doc)
    const text = clients[0].text.toString()
    return clients.every((c) => c.text.toString() === text && Y.equalSnapshots(Y.snapshot(c.doc), first)) && check(text)
  }, {
    timeout: 10_000,
    message: () => `${what}: ${clients.map((c) => `${c.name} has ${JSON.stringify(c.text.toString())}`).join('; ')}`
  })
  return clients[0].text.toString()
}

/** The position of `marker` in the client's own text (fails if it is not there). */
function find (client, marker) {
  const i = client.text.toString().indexOf(marker)
  assert.ok(i >= 0, `${client.name}'s text should contain ${JSON.stringify(marker)}: ${JSON.stringify(client.text.toString())}`)
  return i
}

// ---- the history answer --------------------------------------------------------------------------

/** The document as JSON-able values: code, meta and runs. */
const docState = (doc) => ({ code: doc.getText('code').toString(), meta: doc.getMap('meta').toJSON(), runs: doc.getArray('runs').toJSON() })

/** What a record changes, independent of its byte encoding: struct ids and deleted units. */
function contentOf (update) {
  const { structs, ds } = Y.decodeUpdate(update)
  return JSON.stringify({
    structs: realStructs(structs).map((s) => [s.id.client, s.id.clock, s.length]).sort((a, b) => a[0] - b[0] || a[1] - b[1]),
    deleted: deletedUnits(ds).sort()
  })
}

/** The first records of `later` are `earlier`'s, in the same order, with the same times and authors. */
function assertPrefix (earlier, later, what) {
  assert.ok(later.records.length >= earlier.records.length, `${what}: ${later.records.length} records, fewer than the ${earlier.records.length} there were`)
  for (const r of earlier.records) {
    const l = later.records[r.index]
    assert.deepEqual({ at: l.at, author: l.author, content: contentOf(l.update) }, { at: r.at, author: r.author, content: contentOf(r.update) },
      `${what}: record ${r.index} changed`)
  }
}

/**
 * Every record is attributed to whoever sent it: a record inserting anything
 * holds structs of one client only, and its author is that client if it is one
 * of `senders` (else the server: 0); a delete-only record deletes only units one
 * sender deleted, and its author is that sender. Returns, per sender, how many
 * delete-only and inserting records were attributed to it.
 */
function assertAuthorship (h, senders, what) {
  const ids = new Map(senders.map((c) => [c.doc.clientID, c]))
  const tally = new Map(senders.map((c) => [c, { deleteOnly: 0, inserts: 0, deleted: new Set() }]))
  let server = 0
  for (const r of h.records) {
    let decoded
    try { decoded = Y.decodeUpdate(r.update) } catch (err) { assert.fail(`${what}: record ${r.index} is not a Yjs v1 update: ${err.message}`) }
    const structs = realStructs(decoded.structs)
    const units = deletedUnits(decoded.ds)
    const owners = new Set(structs.map((s) => s.id.client))
    assert.ok(owners.size <= 1, `${what}: record ${r.index} holds structs of several clients: ${[...owners].join(', ')}`)
    if (owners.size === 1) {
      const owner = [...owners][0]
      const sender = ids.get(owner)
      if (sender) {
        assert.equal(r.author, owner, `${what}: record ${r.index} inserts ${sender.name}'s text (client ${owner}) but is attributed to ${r.author}`)
        tally.get(sender).inserts++
        for (const u of units) tally.get(sender).deleted.add(u)
      } else {
        assert.equal(r.author, 0, `${what}: record ${r.index} was written by the server (client ${owner}, none of ${[...ids.keys()].join(', ')}) but is attributed to ${r.author}`)
        server++
      }
    } else if (units.length > 0) {
      const deleters = senders.filter((c) => units.some((u) => c.sent.deleted.has(u)))
      assert.equal(deleters.length, 1, `${what}: delete-only record ${r.index} (${units.slice(0, 8).join(' ')} ...) should match exactly one client's deletions, matched ${deleters.map((c) => c.name).join(', ') || 'none'}`)
      const [sender] = deleters
      assert.ok(units.every((u) => sender.sent.deleted.has(u)), `${what}: delete-only record ${r.index} deletes units ${sender.name} never deleted`)
      assert.equal(r.author, sender.doc.clientID, `${what}: delete-only record ${r.index} was sent by ${sender.name} (client ${sender.doc.clientID}) but is attributed to ${r.author}`)
      tally.get(sender).deleteOnly++
      for (const u of units) tally.get(sender).deleted.add(u)
    }
  }
  for (const c of senders) {
    assert.deepEqual([...tally.get(c).deleted].sort(), [...c.sent.deleted].sort(), `${what}: the units ${c.name} deleted and the deletions attributed to ${c.name} differ`)
  }
  return { tally, server }
}

/** Polls the history until `authors` lists every one of `clients`; returns the decoded answer. */
async function historyWithAuthors (server, session, clients, what) {
  let last = null
  await waitFor(async () => {
    last = await historyOf(server, session.id, { key: session.interviewerKey })
    const listed = new Set((last.json?.authors ?? []).map((a) => a.client))
    return last.status === 200 && clients.every((c) => listed.has(c.doc.clientID))
  }, {
    timeout: EVENTS_MS,
    interval: 250,
    message: () => `${what}: authors to list ${clients.map((c) => `${c.name} (${c.doc.clientID})`).join(', ')}; last answer: ${last ? describeRes(last) : 'none'}`
  })
  return decodeHistory(last, session, what)
}

function assertAuthor (h, client, { name, role, color }, what) {
  const entry = h.authors.find((a) => a.client === client.doc.clientID)
  assert.ok(entry, `${what}: ${client.name} (client ${client.doc.clientID}) is not in authors: ${JSON.stringify(h.authors)}`)
  assert.deepEqual({ name: entry.name, role: entry.role, color: entry.color }, { name, role, color }, `${what}: the authors entry of ${client.name}`)
}

const byClient = (authors) => [...authors].sort((a, b) => a.client - b.client)

// ---- tests ---------------------------------------------------------------------------------------

describe('GET /api/sessions/:id/history', () => {
  let server
  before(async () => { server = await startServer({ args: SERVER_ARGS }) })
  afterEach(destroyTracked)
  after(async () => { await server?.dispose() })

  test('key holders only: missing or malformed Authorization -> 401, a wrong or another session\'s key -> 403, unknown session -> 404, malformed id -> 400 (JSON errors); with a password set the key still gets 200 and an unlock cookie is no key', async () => {
    const s = await create(server, { language: 'javascript' })
    const other = await create(server)
    const refusals = [
      [401, 'no Authorization header', {}],
      [401, 'the "Basic" scheme', { authorization: `Basic ${Buffer.from(`interviewer:${s.interviewerKey}`).toString('base64')}` }],
      [401, 'the bare key without "Bearer "', { authorization: s.interviewerKey }],
      [401, '"Bearer" without a key', { authorization: 'Bearer' }],
      [403, 'a random well-formed key', { key: randomKey() }],
      [403, "another session's key", { key: other.interviewerKey }]
    ]
    for (const [status, what, creds] of refusals) assertError(await historyOf(server, s.id, creds), status, `history with ${what}`)
    assertError(await historyOf(server, randomUUID(), { key: randomKey() }), 404, 'history of an unknown session')
    assertError(await historyOf(server, randomUUID(), { key: s.interviewerKey }), 404, 'history of an unknown session with a real key')
    assertError(await historyOf(server, 'not-a-session-id', { key: s.interviewerKey }), 400, 'history of a malformed id')

    // A session a client opened without naming itself: the server's language write, nobody in authors or events.
    const visitor = await participant(server, s.id, { label: 'unnamed visitor' })
    const fresh = decodeHistory(await historyOf(server, s.id, { key: s.interviewerKey }), s, 'history of a session nobody typed in')
    assert.ok(fresh.count >= 1, `the history should hold the language the server wrote into the document; count ${fresh.count}`)
    assertAuthorship(fresh, [], 'a session nobody typed in') // every record holding structs is the server's: author 0
    const replayed = docState(replay(fresh.records, 'untouched session'))
    assert.deepEqual(replayed, docState(visitor.doc), 'replaying a session nobody typed in should give the document a client has')
    assert.deepEqual([replayed.code, replayed.meta.language], ['', 'javascript'], 'replaying a session nobody typed in: code and language')
    visitor.destroy()
    assert.deepEqual(fresh.authors, [], 'nobody announced a name, so authors should be empty')
    assert.deepEqual(fresh.events, [], 'nobody announced a name and nothing was reported, so events should be empty')

    // A password does not matter for the key holder; the unlock cookie is not the key.
    assertStatus(await api(server, 'PUT', `/api/sessions/${s.id}/password`, { key: s.interviewerKey, body: { password: 'candidate password' } }), 204, 'PUT password')
    const locked = decodeHistory(await historyOf(server, s.id, { key: s.interviewerKey }), s, 'history of a password-protected session with the key')
    assert.equal(locked.updates, fresh.updates, 'setting a password changed the history')
    assertError(await historyOf(server, s.id, {}), 401, 'history of a password-protected session without credentials')
    const unlocked = await api(server, 'POST', `/api/sessions/${s.id}/unlock`, { body: { password: 'candidate password' } })
    assertStatus(unlocked, 204, 'unlock with the right password')
    const cookie = [unlocked.headers['set-cookie'] ?? []].flat().map((line) => line.split(';')[0]).find((pair) => pair.startsWith(`pairpad_unlock_${s.id}=`))
    assert.ok(cookie, `unlock set no pairpad_unlock_${s.id} cookie: ${JSON.stringify(unlocked.headers['set-cookie'])}`)
    assertError(await historyOf(server, s.id, { cookie }), 401, 'history with the unlock cookie but no key')
    assertError(await historyOf(server, s.id, { cookie, key: other.interviewerKey }), 403, "history with the unlock cookie and another session's key")
  })

  test('two authors typing at once (emoji, CJK, combining marks, delete-only transactions, deleting each other\'s text): the records replay to the live document, every update is attributed to its sender, the server\'s to 0, and authors lists both as announced', async () => {
    const t0 = Date.now()
    const s = await create(server, { language: 'python' })
    const a = await participant(server, s.id, { name: 'Ann Author', color: '#30bced' })
    const b = await participant(server, s.id, { name: 'Bo Builder', color: 3, key: s.interviewerKey })
    const quiet = await participant(server, s.id, { label: 'observer who never names itself' })

    const family = '👩‍👩‍👧'
    const flag = '🇯🇵'
    // Each step is one transaction; A and B act in the same tick, without waiting for each other.
    const stepsA = [
      () => a.text.insert(0, `«A» e\u0301 ñ ${family} `),
      () => a.text.insert(find(a, '«A»') + 3, ' 𝔘𝔫𝔦 DELA1'),
      () => a.text.delete(find(a, 'DELA1'), 5), // delete-only
      () => a.text.insert(find(a, family) + family.length, '\nA: ｶﾀｶﾅ 한국어 n\u0303 '),
      () => a.text.delete(find(a, ' e\u0301 ñ') + 2, 1), // delete-only: the combining acute alone
      () => a.text.delete(find(a, family), family.length), // delete-only: a ZWJ sequence of surrogate pairs
      () => a.doc.getArray('runs').push([{
        id: 'r1', by: 'Ann Author', language: 'python', startedAt: Date.now(), durationMs: 12, status: 'ok',
        output: [{ stream: 'stdout', text: 'out-42\n' }], truncated: false
      }])
    ]
    const stepsB = [
      () => b.text.insert(0, '[B] 中文 日本語 '),
      () => b.text.insert(find(b, '[B]') + 3, ` o\u0308 DELB1 ${flag}`),
      () => b.text.delete(find(b, 'DELB1'), 5), // delete-only
      () => b.text.insert(find(b, '日本語 ') + 4, 'B: 🎉x\u0323\u0308 '),
      () => b.text.delete(find(b, '中文 '), 3), // delete-only: CJK
      () => b.text.delete(find(b, flag), flag.length), // delete-only: two surrogate pairs
      () => b.text.insert(find(b, 'B: ') + 3, '∑ ')
    ]
    for (let i = 0; i < stepsA.length; i++) {
      stepsA[i]()
      stepsB[i]()
      await sleep(15)
    }
    const gone = ['DELA1', 'DELB1', family, flag, '中文', '\u0301']
    const midText = await converge([a, b, quiet], 'A, B and the observer to converge after typing at once',
      (t) => gone.every((g) => !t.includes(g)) && ['𝔘𝔫𝔦', 'ｶﾀｶﾅ', '∑ 🎉', 'o\u0308', 'x\u0323\u0308'].every((k) => t.includes(k)))

    // Each deletes some of the other's text (delete-only), and A writes inside B's text.
    a.text.delete(find(a, '日本語'), 3)
    b.text.delete(find(b, 'ñ'), 1)
    a.text.insert(find(a, '🎉'), '→')
    b.text.delete(find(b, 'n\u0303') + 1, 1) // B deletes A's combining tilde
    const finalText = await converge([a, b, quiet], 'A, B and the observer to converge after deleting each other\'s text',
      (t) => !t.includes('日本語') && !t.includes('ñ') && !t.includes('\u0303') && t.includes('→🎉'))
    assert.equal(a.meta.get('language'), 'python', 'the live language')

    const h = await historyWithAuthors(server, s, [a, b], 'history of two authors')
    const readAt = Date.now()

    // Times.
    for (const r of h.records) {
      assert.ok(r.at >= t0 && r.at <= readAt, `record ${r.index} at ${r.at} (${new Date(r.at).toISOString()}) is outside the test [${new Date(t0).toISOString()}, ${new Date(readAt).toISOString()}]`)
    }

    // Replaying everything gives the live document.
    const live = docState(a.doc)
    assert.deepEqual(docState(replay(h.records, 'full replay')), live, 'replaying every record should give the live document (code, meta, runs)')

    // Every prefix replays without waiting on a later record; the replay passes through the converged middle state and ends at the live text.
    const doc = new Y.Doc()
    let sawMiddle = false
    for (const r of h.records) {
      applyRecord(doc, r, 'prefix replay')
      assert.ok(doc.store.pendingStructs === null && doc.store.pendingDs === null,
        `after the first ${r.index + 1} records the replayed document waits for updates not yet in the log (log order is not causal)`)
      if (doc.getText('code').toString() === midText) sawMiddle = true
    }
    assert.ok(sawMiddle, `no prefix of the history gives the text both clients had before deleting each other's text: ${JSON.stringify(midText)}`)
    assert.equal(doc.getText('code').toString(), finalText, 'the last prefix')

    // Authorship.
    const { tally, server: serverRecords } = assertAuthorship(h, [a, b], 'two authors')
    assert.ok(serverRecords >= 1, 'the language written at creation should be a record by the server (author 0)')
    const firstClientRecord = h.records.findIndex((r) => r.author !== 0)
    assert.ok(firstClientRecord > 0, `the server's language record should come before the clients' records; authors in log order: ${h.records.map((r) => r.author).join(', ')}`)
    assert.equal(replay(h.records.slice(0, firstClientRecord), 'server records').getMap('meta').get('language'), 'python',
      'the records before the first client record should set the language')
    for (const c of [a, b]) {
      const t = tally.get(c)
      assert.ok(t.deleteOnly >= 4, `${c.name} sent ${c.sent.deleteOnly} delete-only transactions but only ${t.deleteOnly} delete-only records are attributed to them`)
      assert.ok(t.inserts >= 1, `no inserting record is attributed to ${c.name}`)
    }

    // Authors: as announced, with their roles; the observer that never named itself is absent.
    assertAuthor(h, a, { name: 'Ann Author', role: 'candidate', color: '#30bced' }, 'authors')
    assertAuthor(h, b, { name: 'Bo Builder', role: 'interviewer', color: 3 }, 'authors')
    assert.ok(!h.authors.some((x) => x.client === quiet.doc.clientID), `a client that never announced a name is in authors: ${JSON.stringify(h.authors)}`)
    for (const c of [a, b]) {
      const join = h.events.find((e) => e.kind === 'join' && e.client === c.doc.clientID)
      assert.ok(join, `no join event with client ${c.doc.clientID} (${c.name}): ${JSON.stringify(h.events)}`)
    }
  })

  test('events: joins (with client ids), reported blur and paste, and a leave, sorted by at', async () => {
    const t0 = Date.now()
    const s = await create(server)
    const report = (body) => api(server, 'POST', `/api/sessions/${s.id}/events`, { body })
    const ivy = await participant(server, s.id, { name: 'Ivy', color: '#e91e63', key: s.interviewerKey })
    const cam = await participant(server, s.id, { name: 'Cam', color: 5 })
    await waitFor(() => ivy.awareness.getStates().get(cam.doc.clientID)?.user?.name === 'Cam', { message: 'Ivy to see Cam\'s name' })
    await sleep(20)
    assertStatus(await report({ kind: 'blur', name: 'Cam' }), 204, 'blur')
    await sleep(20)
    assertStatus(await report({ kind: 'paste', name: 'Cam', chars: 320 }), 204, 'paste')
    await sleep(20)
    cam.destroy()

    let h = null
    await waitFor(async () => {
      const res = await historyOf(server, s.id, { key: s.interviewerKey })
      h = res.json
      return res.status === 200 && ['join', 'blur', 'paste', 'leave'].every((kind) => h?.events?.some((e) => e.kind === kind && e.name === 'Cam')) &&
        h.events.some((e) => e.kind === 'join' && e.name === 'Ivy')
    }, { timeout: EVENTS_MS, interval: 250, message: () => `Cam's join, blur, paste and leave and Ivy's join in the history events; last: ${JSON.stringify(h?.events)}` })
    h = decodeHistory(await historyOf(server, s.id, { key: s.interviewerKey }), s, 'history with events')
    const readAt = Date.now()

    const cams = h.events.filter((e) => e.name === 'Cam')
    assert.deepEqual(cams.map((e) => e.kind), ['join', 'blur', 'paste', 'leave'], `Cam's events in order of at: ${JSON.stringify(cams)}`)
    const [join, blur, paste, leave] = cams
    assert.equal(join.client, cam.doc.clientID, `Cam's join event should carry Cam's client id: ${JSON.stringify(join)}`)
    assert.equal(join.role, 'candidate', 'Cam\'s join role')
    assert.equal(join.color, 5, 'Cam\'s join color')
    assert.equal(blur.role, 'candidate', 'the blur report\'s role')
    assert.equal(paste.chars, 320, 'the paste event\'s chars')
    assert.ok(join.at < blur.at && blur.at < paste.at && paste.at < leave.at, `Cam's events should be 20 ms apart in this order: ${JSON.stringify(cams)}`)
    const ivyJoin = h.events.find((e) => e.kind === 'join' && e.name === 'Ivy')
    assert.equal(ivyJoin.client, ivy.doc.clientID, `Ivy's join event should carry Ivy's client id: ${JSON.stringify(ivyJoin)}`)
    assert.equal(ivyJoin.role, 'interviewer', 'Ivy\'s join role')
    assert.equal(h.events.filter((e) => e.kind === 'join' && e.name === 'Ivy').length, 1, 'Ivy joined once')
    for (const e of h.events) assert.ok(e.at >= t0 && e.at <= readAt, `event ${JSON.stringify(e)} is outside the test's time`)
    assertAuthor(h, cam, { name: 'Cam', role: 'candidate', color: 5 }, 'authors after Cam left')
    assertAuthor(h, ivy, { name: 'Ivy', role: 'interviewer', color: '#e91e63' }, 'authors')
    assert.equal(h.authors.length, 2, `authors should be Cam and Ivy only: ${JSON.stringify(h.authors)}`)
  })

  test('export: playbackUrl is the share url + "/playback" and the HTML export links to it', async () => {
    const s = await create(server)
    const res = await api(server, 'GET', `/api/sessions/${s.id}/export`, { key: s.interviewerKey })
    assertStatus(res, 200, 'export')
    assert.equal(typeof res.json?.playbackUrl, 'string', `the export has no playbackUrl: ${res.text.slice(0, 300)}`)
    assert.ok(res.json.playbackUrl.endsWith(`/s/${s.id}/playback`), `playbackUrl ${res.json.playbackUrl} should end with /s/${s.id}/playback`)
    assert.equal(res.json.playbackUrl, `${s.url}/playback`, 'playbackUrl should be the share url + "/playback"')

    const html = await api(server, 'GET', `/api/sessions/${s.id}/export?format=html`, { key: s.interviewerKey })
    assertStatus(html, 200, 'the HTML export')
    const hrefs = [...html.text.matchAll(/<a\s[^>]*href\s*=\s*["']([^"']*)["']/gi)].map((m) => m[1])
    assert.ok(hrefs.some((href) => href.endsWith(`/s/${s.id}/playback`)), `the HTML export has no link to /s/${s.id}/playback; links: ${JSON.stringify(hrefs)}`)
  })
})

describe('reading history changes nothing, and works once the room unloaded', () => {
  let server
  before(async () => { server = await startServer({ args: [...SERVER_ARGS, '--room-unload-grace-secs', '1'] }) })
  afterEach(destroyTracked)
  after(async () => { await server?.dispose() })

  const activeSessions = async () => (await request(server, 'GET', '/api/health')).json?.activeSessions
  const visible = async (s) => {
    const res = await getSession(server, s.id)
    assertStatus(res, 200, 'GET session')
    return { lastActivity: res.json.lastActivity, users: res.json.users }
  }
  /** GET session until two answers 300 ms apart agree (nothing is still settling). */
  const settled = async (s, what) => {
    let previous = await visible(s)
    return waitFor(async () => {
      await sleep(300)
      const now = await visible(s)
      const same = JSON.stringify(now) === JSON.stringify(previous)
      previous = now
      return same && now
    }, { timeout: 6_000, interval: 0, message: `${what}: the session's lastActivity and users to stay still` })
  }
  /** The document a fresh, unnamed client gets (code, meta, runs). */
  const freshDoc = async (s, label) => {
    const c = await participant(server, s.id, { label })
    const state = docState(c.doc)
    c.destroy()
    tracked.delete(c)
    return state
  }

  test('several reads leave lastActivity, users and the document as they were; after everyone left and the room unloaded, history still has every record, author and event', async () => {
    const s = await create(server, { language: 'python' })
    const a = await participant(server, s.id, { name: 'Ann', color: '#30bced' })
    const b = await participant(server, s.id, { name: 'Bo', color: 7 })
    a.text.insert(0, 'def f(x):\n    return x  # 🙂\n')
    b.text.insert(0, '# 中文\n')
    await waitFor(() => b.text.toString().includes('return x'), { message: 'B to receive A\'s first line' })
    a.text.delete(find(a, '  # 🙂'), 6) // delete-only
    b.text.insert(find(b, 'return x') + 8, ' * 2')
    const text = await converge([a, b], 'A and B to converge', (t) => t.includes(' * 2') && !t.includes('🙂') && t.includes('中文'))
    const first = await historyWithAuthors(server, s, [a, b], 'history before the reads')

    const doc = await freshDoc(s, 'fresh client before the reads')
    assert.deepEqual([doc.code, doc.meta.language], [text, 'python'], 'a fresh client before the reads')
    const before = await settled(s, 'before the reads')
    const reads = []
    for (let i = 0; i < 4; i++) reads.push(decodeHistory(await historyOf(server, s.id, { key: s.interviewerKey }), s, `read ${i + 1}`))
    for (const [i, h] of reads.entries()) {
      assert.deepEqual({ ...h, records: undefined }, { ...reads[0], records: undefined }, `read ${i + 1} differs from read 1: reading history changed it`)
    }
    assert.deepEqual(await visible(s), before, 'GET /api/sessions/:id (lastActivity, users) after reading history')
    assert.deepEqual(await freshDoc(s, 'fresh client after the reads'), doc, 'the document a fresh client gets after the history reads')
    assertPrefix(first, reads[0], 'history after a fresh client came and went')
    assert.deepEqual(docState(replay(reads[0].records, 'replay before unload')), doc, 'replaying the history')

    // Everyone leaves; wait for the room (and the notes room) to unload.
    destroyTracked()
    const unloadedRooms = () => waitFor(async () => (await activeSessions()) === 0, {
      timeout: 15_000, interval: 200, message: 'GET /api/health activeSessions to drop to 0 once everyone left (--room-unload-grace-secs 1)'
    })
    await unloadedRooms()
    const unloaded = await settled(s, 'after the room unloaded')
    await unloadedRooms()
    const h = decodeHistory(await historyOf(server, s.id, { key: s.interviewerKey }), s, 'history of an unloaded room')
    assertPrefix(first, h, 'history of an unloaded room')
    assert.deepEqual(docState(replay(h.records, 'unloaded replay')), doc, 'replaying the history of an unloaded room')
    assert.deepEqual(byClient(h.authors), byClient(first.authors), 'authors of an unloaded room')
    for (const e of first.events) {
      assert.ok(h.events.some((x) => JSON.stringify(x) === JSON.stringify(e)), `event ${JSON.stringify(e)} is missing from the history of the unloaded room: ${JSON.stringify(h.events)}`)
    }
    const { tally } = assertAuthorship(h, [a, b], 'unloaded room')
    assert.ok(tally.get(a).deleteOnly >= 1, 'A\'s delete-only transaction should be attributed to A in the history of an unloaded room')
    assert.deepEqual(await visible(s), unloaded, 'GET /api/sessions/:id after reading the history of an unloaded room')
  })
})

describe('history after a SIGKILL restart', () => {
  let server
  before(async () => { server = await startServer({ args: SERVER_ARGS }) })
  afterEach(destroyTracked)
  after(async () => { await server?.dispose() })

  test('every update a client had seen relayed is in the history after SIGKILL, with the same authors and attribution', async () => {
    const s = await create(server, { language: 'python' })
    const a = await participant(server, s.id, { name: 'Ann', color: '#30bced' })
    const b = await participant(server, s.id, { name: 'Bo', color: 2, key: s.interviewerKey })
    const observer = await participant(server, s.id, { label: 'observer' })
    a.text.insert(0, 'fn main() {\n    println!("héllo 🌍");\n}\n')
    b.text.insert(0, '// 测试 ✓\n')
    await sleep(15)
    a.text.delete(find(a, ' 🌍'), 3)
    b.text.delete(find(b, ' ✓'), 2)
    await converge([a, b, observer], 'A, B and the observer to converge', (t) => !t.includes('🌍') && !t.includes('✓') && t.includes('测试'))
    const earlier = await historyWithAuthors(server, s, [a, b], 'history before the kill')

    // More edits after the join events were stored, then SIGKILL as soon as the observer has them.
    a.text.insert(find(a, '}\n') + 2, '// ｶﾀｶﾅ é\n')
    b.text.delete(find(b, '// 测试'), 3) // delete-only
    await sleep(15)
    a.text.delete(find(a, 'héllo'), 1) // delete-only
    b.text.insert(find(b, 'println'), '/* 🦀 */ ')
    const expected = await converge([a, b, observer], 'A, B and the observer to converge before the kill',
      (t) => t.includes('ｶﾀｶﾅ') && t.includes('/* 🦀 */') && !t.includes('// 测试') && !t.includes('héllo'))
    destroyTracked() // no client may survive to re-upload its copy
    await server.stop('SIGKILL')
    await server.restart()

    const h = decodeHistory(await historyOf(server, s.id, { key: s.interviewerKey }), s, 'history after the SIGKILL restart')
    const replayed = docState(replay(h.records, 'replay after restart'))
    assert.equal(replayed.code, expected, 'replaying the history after SIGKILL should give the text every client had before the kill')
    assert.equal(replayed.meta.language, 'python', 'the language replayed after SIGKILL')
    assertPrefix(earlier, h, 'history after the SIGKILL restart')
    assert.deepEqual(byClient(h.authors), byClient(earlier.authors), 'authors after the SIGKILL restart')
    assertAuthor(h, a, { name: 'Ann', role: 'candidate', color: '#30bced' }, 'authors after the restart')
    assertAuthor(h, b, { name: 'Bo', role: 'interviewer', color: 2 }, 'authors after the restart')
    const { tally } = assertAuthorship(h, [a, b], 'after the SIGKILL restart')
    for (const c of [a, b]) assert.ok(tally.get(c).deleteOnly >= 2, `${c.name}'s two delete-only transactions should be attributed to them after the restart (found ${tally.get(c).deleteOnly})`)

    const fresh = await participant(server, s.id, { label: 'fresh client after the restart' })
    assert.deepEqual(docState(fresh.doc), replayed, 'a fresh client after the restart should have the document the history replays to')
  })
})
