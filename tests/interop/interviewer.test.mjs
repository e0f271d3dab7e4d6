// Interop: the interviewer side of a session (issue 12), against the real binary
// with stock Yjs clients and plain HTTP requests. Covers:
//   - the interviewer key: its format, interviewerUrl, never in a GET answer or
//     on disk; Bearer auth on every key-protected request (401 missing or
//     malformed, 403 wrong or another session's key, 404 unknown session,
//     400 bad id), and a refused request changes nothing;
//   - passwords: the reduced GET, unlock (403 / 204 + HttpOnly SameSite=Strict
//     cookie accepted by GET and the WebSocket, 4401 without it), 429 after 5
//     wrong guesses, PUT (400 limits, old cookies and password stop working),
//     DELETE (the session opens to everyone);
//   - roles the server writes into relayed awareness states;
//   - the notes document (/ws/<id>/notes): key holders only (4403), Y.Text
//     "notes" converges, nothing of it in the main document;
//   - end / reopen (meta.ended, 4409 refusals that reach nobody, 4422 for a
//     client writing meta.ended) and DELETE (404, 4404 for open sockets);
//   - what survives a SIGKILL restart: passwords, the key, the ended flag,
//     deletion, notes.

import { test, describe, before, after, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { startServer } from './support/server.mjs'
import { request, api, assertStatus, assertError, create } from './support/http.mjs'
import { yClient, rawClient, waitFor, Y } from './support/clients.mjs'
import { emptySyncStep1 } from './support/protocol.mjs'

// Up to ~10 stock clients per session from 127.0.0.1; the per-address cap is not under test here.
const SERVER_ARGS = ['--session-ip-connection-limit', '0']

const KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/
const tag = (label) => `${label}-${randomBytes(4).toString('hex')}`
/** A well-formed interviewer key that belongs to no session. */
const randomKey = () => randomBytes(32).toString('base64url')

// ---- HTTP ----------------------------------------------------------------------------------------

const getSession = (server, id, creds = {}) => api(server, 'GET', `/api/sessions/${id}`, creds)
const sessionCount = async (server) => (await request(server, 'GET', '/api/health')).json.sessions

/** The whole record; `expected` fields must match. Never the key. */
function assertFullInfo (res, session, what, expected = {}) {
  assertStatus(res, 200, what)
  for (const field of ['id', 'language', 'users', 'createdAt', 'lastActivity', 'passwordRequired', 'ended']) {
    assert.ok(field in res.json, `${what}: the answer lacks "${field}": ${res.text}`)
  }
  assert.equal(res.json.id, session.id, what)
  for (const [field, value] of Object.entries(expected)) {
    assert.equal(res.json[field], value, `${what}: ${field} should be ${JSON.stringify(value)}: ${res.text}`)
  }
  assert.ok(!res.text.includes(session.interviewerKey), `${what}: the answer contains the interviewer key`)
}

/** What a visitor without the key or an unlock cookie sees of a password-protected session. */
function assertLockedInfo (res, session, what) {
  assertStatus(res, 200, what)
  assert.deepEqual(res.json, { id: session.id, passwordRequired: true },
    `${what}: should be exactly {id, passwordRequired: true}; got ${res.text}`)
}

/** Parses every Set-Cookie header: [{line, name, value, attributes: Map(lowercase name -> value|true)}]. */
function setCookies (res) {
  return [res.headers['set-cookie'] ?? []].flat().map((line) => {
    const [pair, ...attrs] = line.split(';').map((part) => part.trim())
    const eq = pair.indexOf('=')
    const attributes = new Map(attrs.filter(Boolean).map((attr) => {
      const i = attr.indexOf('=')
      return i < 0 ? [attr.toLowerCase(), true] : [attr.slice(0, i).trim().toLowerCase(), attr.slice(i + 1).trim()]
    }))
    return { line, name: pair.slice(0, eq), value: pair.slice(eq + 1), attributes }
  })
}

const unlockCookieName = (id) => `pairpad_unlock_${id}`
const keyCookie = (session) => `pairpad_key_${session.id}=${session.interviewerKey}`

/** POST unlock; the response plus `cookie` (this session's unlock cookie, or null) and `cookieHeader`. */
async function unlock (server, id, password) {
  const res = await api(server, 'POST', `/api/sessions/${id}/unlock`, { body: { password } })
  const cookie = setCookies(res).find((c) => c.name === unlockCookieName(id)) ?? null
  return { ...res, cookie, cookieHeader: cookie && `${cookie.name}=${cookie.value}` }
}

/** Unlocks with the right password and returns the Cookie header value. */
async function unlockedCookie (server, id, password) {
  const res = await unlock(server, id, password)
  assertStatus(res, 204, `unlock ${id} with the right password`)
  assert.ok(res.cookie, `unlock answered 204 without a ${unlockCookieName(id)} cookie; Set-Cookie: ${JSON.stringify(res.headers['set-cookie'])}`)
  return res.cookieHeader
}

// The key-protected requests, as [label, method, path suffix, body].
const KEY_PROTECTED = [
  ['PUT password', 'PUT', '/password', { password: 'a new password' }],
  ['DELETE password', 'DELETE', '/password', undefined],
  ['end', 'POST', '/end', undefined],
  ['reopen', 'POST', '/reopen', undefined],
  ['DELETE session', 'DELETE', '', undefined]
]

// ---- WebSockets ----------------------------------------------------------------------------------

const tracked = new Set()
const track = (client) => { tracked.add(client); return client }
function destroyTracked () {
  for (const c of tracked) c.destroy()
  tracked.clear()
}

/**
 * A stock Yjs client on the main document (or, with `notes`, the notes
 * document) of session `id`, with a `key` param and/or a Cookie header.
 */
function joiner (server, id, { name = 'client', key, cookie, notes = false } = {}) {
  return track(yClient(server, notes ? `${id}/notes` : id, {
    name,
    params: key === undefined ? {} : { key },
    headers: cookie === undefined ? null : { cookie }
  }))
}

/** A joiner that has synced. */
async function synced (server, id, options) {
  const client = joiner(server, id, options)
  await client.synced()
  return client
}

const notesOf = (client) => client.doc.getText('notes')

function hasNotes (client, expected) {
  return waitFor(() => notesOf(client).toString() === expected, {
    message: () => `${client.name} to have notes ${JSON.stringify(expected)}; it has ${JSON.stringify(notesOf(client).toString())}`
  })
}

/** Asserts a close {code, reason} is `code` with a reason (matching `pattern` if given). */
function assertClose (close, code, what, pattern = null) {
  assert.ok(close, `${what}: no close (expected ${code})`)
  assert.equal(close.code, code, `${what}: expected close ${code}, got ${close.code} (reason: ${JSON.stringify(close.reason)})`)
  assert.ok(close.reason.trim().length > 0, `${what}: close ${code} has no reason text`)
  if (pattern) assert.match(close.reason, pattern, `${what}: the close ${code} reason ${JSON.stringify(close.reason)} should match ${pattern}`)
}

/** Waits for the server to close a stock client, and checks the first close. */
async function closedWith (client, code, what, pattern = null) {
  await waitFor(() => client.closes.length > 0, {
    message: `${what}: the server to close ${client.name} (expected ${code})`
  })
  assertClose(client.closes[0], code, what, pattern)
}

/**
 * Connects a raw socket that sends SyncStep1 as soon as it opens (as a stock
 * client does) and returns how the server closed it. No received frame may
 * contain any of the `secrets` (text written into the document or presence).
 */
async function refusal (server, id, { notes = false, key, cookie, secrets = [] } = {}, what) {
  const url = `${server.wsUrl(id)}${notes ? '/notes' : ''}${key === undefined ? '' : `?key=${encodeURIComponent(key)}`}`
  const raw = rawClient(url, cookie === undefined ? {} : { headers: { cookie } })
  raw.ws.once('open', () => { raw.send(emptySyncStep1()).catch(() => {}) })
  try {
    const close = await raw.closeInfo(undefined, `the server to refuse ${what}`)
    for (const secret of secrets) {
      assert.ok(!raw.frames.some((f) => f.data.includes(secret)), `${what}: the refused connection received ${JSON.stringify(secret)}`)
    }
    return close
  } finally {
    raw.terminate()
  }
}

/**
 * Makes sure `observer` has received everything the room relayed so far: a
 * fresh client (with `creds`) announces a marker presence and the observer
 * waits for it. Returns that client, which also shows what the server stored.
 */
async function settle (server, id, observer, creds, label) {
  const probe = await synced(server, id, { ...creds, name: `${label} probe` })
  const marker = tag('settle')
  probe.awareness.setLocalStateField('marker', marker)
  await waitFor(() => observer.awareness.getStates().get(probe.doc.clientID)?.marker === marker, {
    message: `${label}: ${observer.name} to see a later client's presence`
  })
  return probe
}

/** Every file under `dir`, as [path, bytes] (a file that vanishes meanwhile is skipped). */
function filesUnder (dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    try {
      return statSync(path).isDirectory() ? filesUnder(path) : [[path, readFileSync(path)]]
    } catch (err) {
      if (err.code === 'ENOENT') return []
      throw err
    }
  })
}

// ---- tests ---------------------------------------------------------------------------------------

describe('the interviewer key', () => {
  let server
  before(async () => { server = await startServer({ args: SERVER_ARGS }) })
  afterEach(destroyTracked)
  after(async () => { await server?.dispose() })

  test('create returns a 43-character base64url key (32 bytes) and interviewerUrl = url + "#key=" + key; the key is in no GET answer and not on disk', async () => {
    const a = await create(server, { language: 'python' })
    const b = await create(server)
    for (const s of [a, b]) {
      assert.match(s.interviewerKey, KEY_PATTERN, `interviewerKey ${JSON.stringify(s.interviewerKey)}`)
      const raw = Buffer.from(s.interviewerKey, 'base64url')
      assert.equal(raw.length, 32, 'the key decodes to 32 bytes')
      assert.equal(raw.toString('base64url'), s.interviewerKey, 'the key is canonical base64url without padding')
      assert.equal(s.interviewerUrl, `${s.url}#key=${s.interviewerKey}`)
      assert.equal(s.passwordRequired, false, 'a session created without a password requires none')
      assert.equal(typeof s.createdAt, 'string')
    }
    assert.equal(a.language, 'python')
    assert.notEqual(a.interviewerKey, b.interviewerKey, 'two sessions got the same key')

    for (const [what, creds] of [['GET without credentials', {}], ['GET with the key', { key: a.interviewerKey }]]) {
      assertFullInfo(await getSession(server, a.id, creds), a, what, { passwordRequired: false, ended: false, language: 'python' })
    }

    // Stored only as a hash: neither the text nor the 32 bytes are in any file.
    const files = filesUnder(server.dataDir)
    assert.ok(files.some(([, bytes]) => bytes.length > 0), `nothing stored under ${server.dataDir}`)
    for (const s of [a, b]) {
      for (const [path, bytes] of files) {
        assert.ok(!bytes.includes(s.interviewerKey), `${path} contains an interviewer key in clear`)
        assert.ok(!bytes.includes(Buffer.from(s.interviewerKey, 'base64url')), `${path} contains an interviewer key's raw bytes`)
      }
    }
  })

  test('create with a password: passwordRequired true; "" means no password; over 256 UTF-8 bytes -> 400 JSON error and no session', async () => {
    const locked = await create(server, { password: 'correct horse' })
    assert.equal(locked.passwordRequired, true)
    assert.match(locked.interviewerKey, KEY_PATTERN)
    assert.equal(locked.interviewerUrl, `${locked.url}#key=${locked.interviewerKey}`)
    assertLockedInfo(await getSession(server, locked.id), locked, 'GET of a session created with a password')

    const empty = await create(server, { password: '' })
    assert.equal(empty.passwordRequired, false)
    assertFullInfo(await getSession(server, empty.id), empty, 'GET of a session created with password ""', { passwordRequired: false })

    const longest = await create(server, { password: 'p'.repeat(256) })
    assert.equal(longest.passwordRequired, true, 'a 256-byte password is allowed')
    assertStatus(await unlock(server, longest.id, 'p'.repeat(256)), 204, 'unlock with the 256-byte password')

    const before = await sessionCount(server)
    for (const [what, password] of [['257 ASCII bytes', 'p'.repeat(257)], ['86 euro signs (86 characters, 258 bytes)', '€'.repeat(86)]]) {
      assertError(await request(server, 'POST', '/api/sessions/create', { body: { password } }), 400, `create with a password of ${what}`)
    }
    assert.equal(await sessionCount(server), before, 'a refused create stored a session')
  })

  test('every key-protected request: missing or malformed Authorization -> 401, a wrong key or another session\'s key -> 403, and a refused request changes nothing; the right key -> 204', async () => {
    const s = await create(server)
    const other = await create(server)
    const path = (suffix) => `/api/sessions/${s.id}${suffix}`
    const badCredentials = [
      [401, 'no Authorization header', {}],
      [401, 'the "Basic" scheme', { authorization: `Basic ${Buffer.from(`interviewer:${s.interviewerKey}`).toString('base64')}` }],
      [401, 'the bare key without "Bearer "', { authorization: s.interviewerKey }],
      [401, '"Bearer" without a key', { authorization: 'Bearer' }],
      [403, 'a random well-formed key', { key: randomKey() }],
      [403, "another session's key", { key: other.interviewerKey }]
    ]
    /** Every bad credential on one request, each answered with its status and a JSON error. */
    const refusedEverywhere = async (label) => {
      const [, method, suffix, body] = KEY_PROTECTED.find(([l]) => l === label)
      for (const [status, what, creds] of badCredentials) {
        assertError(await api(server, method, path(suffix), { ...creds, body }), status, `${label} with ${what}`)
      }
    }
    const withKey = (label, body) => {
      const [, method, suffix, defaultBody] = KEY_PROTECTED.find(([l]) => l === label)
      return api(server, method, path(suffix), { key: s.interviewerKey, body: body ?? defaultBody })
    }

    // PUT password: refused ones set nothing, and change nothing once one is set.
    await refusedEverywhere('PUT password')
    assertFullInfo(await getSession(server, s.id), s, 'GET after refused PUT password', { passwordRequired: false })
    assertStatus(await withKey('PUT password', { password: 'first password' }), 204, 'PUT password with the key')
    assertLockedInfo(await getSession(server, s.id), s, 'GET after PUT password with the key')
    await refusedEverywhere('PUT password')
    assertError(await unlock(server, s.id, 'a new password'), 403, 'unlock with the password a refused PUT tried to set')

    // DELETE password: refused ones leave it locked.
    await refusedEverywhere('DELETE password')
    assertLockedInfo(await getSession(server, s.id), s, 'GET after refused DELETE password')
    assertStatus(await unlock(server, s.id, 'first password'), 204, 'unlock with the password set with the key')
    assertStatus(await withKey('DELETE password'), 204, 'DELETE password with the key')
    assertFullInfo(await getSession(server, s.id), s, 'GET after DELETE password with the key', { passwordRequired: false })

    // end / reopen.
    await refusedEverywhere('end')
    assertFullInfo(await getSession(server, s.id, { key: s.interviewerKey }), s, 'GET after refused end', { ended: false })
    assertStatus(await withKey('end'), 204, 'end with the key')
    assertFullInfo(await getSession(server, s.id, { key: s.interviewerKey }), s, 'GET after end', { ended: true })
    await refusedEverywhere('reopen')
    assertFullInfo(await getSession(server, s.id, { key: s.interviewerKey }), s, 'GET after refused reopen', { ended: true })
    assertStatus(await withKey('reopen'), 204, 'reopen with the key')
    assertFullInfo(await getSession(server, s.id, { key: s.interviewerKey }), s, 'GET after reopen', { ended: false })

    // DELETE session.
    await refusedEverywhere('DELETE session')
    assertFullInfo(await getSession(server, s.id), s, 'GET after refused DELETE session')
    assertStatus(await withKey('DELETE session'), 204, 'DELETE session with the key')
    assertError(await getSession(server, s.id), 404, 'GET after DELETE session')

    // The other session, whose key was tried everywhere, is untouched.
    assertFullInfo(await getSession(server, other.id), other, 'GET of the other session', { passwordRequired: false, ended: false })
  })

  test('unknown session -> 404 and a malformed id -> 400 on every new endpoint, with a JSON error', async () => {
    const unknown = randomUUID()
    const endpoints = [...KEY_PROTECTED, ['unlock', 'POST', '/unlock', { password: 'anything' }]]
    for (const [label, method, suffix, body] of endpoints) {
      assertError(await api(server, method, `/api/sessions/${unknown}${suffix}`, { key: randomKey(), body }), 404, `${label} on an unknown session`)
      assertError(await api(server, method, `/api/sessions/not-a-session-id${suffix}`, { key: randomKey(), body }), 400, `${label} on a malformed id`)
    }
  })

  test('the key needs no password: Bearer on GET, ?key= and the pairpad_key_<id> cookie on the WebSocket; a wrong key -> 4403', async () => {
    const s = await create(server, { password: 'the interviewer never types this' })
    const open = await create(server)

    assertFullInfo(await getSession(server, s.id, { key: s.interviewerKey }), s, 'GET with the key', { passwordRequired: true })
    const viaParam = await synced(server, s.id, { key: s.interviewerKey, name: 'interviewer (?key=)' })
    const viaCookie = await synced(server, s.id, { cookie: keyCookie(s), name: 'interviewer (key cookie)' })
    viaParam.text.insert(0, 'written with the key\n')
    await viaCookie.hasText('written with the key\n')
    assert.deepEqual([...viaParam.closes, ...viaCookie.closes], [], 'a key holder was disconnected')

    for (const [what, key] of [['a random well-formed key', randomKey()], ["another session's key", s.interviewerKey]]) {
      assertClose(await refusal(server, open.id, { key }, `the main document with ${what}`), 4403, `the main document with ${what}`)
    }
  })
})

describe('passwords', () => {
  let server
  before(async () => { server = await startServer({ args: SERVER_ARGS }) })
  afterEach(destroyTracked)
  after(async () => { await server?.dispose() })

  test('a password-protected session shows only {id, passwordRequired: true} without the key or an unlock cookie; the key holder sees the whole record', async () => {
    const s = await create(server, { password: 'pw for GET', language: 'python' })
    assertLockedInfo(await getSession(server, s.id), s, 'GET without credentials')
    assertLockedInfo(await getSession(server, s.id, { cookie: `${unlockCookieName(s.id)}=forged` }), s, 'GET with a forged unlock cookie')
    assertFullInfo(await getSession(server, s.id, { key: s.interviewerKey }), s, 'GET with the key',
      { passwordRequired: true, ended: false, language: 'python', users: 0 })
  })

  test('unlock: a wrong password -> 403; the right one -> 204 and an HttpOnly SameSite=Strict cookie that GET and the WebSocket accept; without it the WebSocket closes 4401', async () => {
    const password = 'open sesame'
    const s = await create(server, { password })
    const code = tag('candidate-code')
    const presence = tag('candidate-name')
    const interviewer = await synced(server, s.id, { key: s.interviewerKey, name: 'interviewer' })
    const witness = await synced(server, s.id, { key: s.interviewerKey, name: 'witness' })
    interviewer.text.insert(0, code)
    interviewer.awareness.setLocalStateField('user', { name: presence })
    await witness.hasText(code)

    const locked = await refusal(server, s.id, { secrets: [code, presence] }, 'the main document without a cookie')
    assertClose(locked, 4401, 'the main document of a password-protected session without a cookie', /password/i)
    assertClose(await refusal(server, s.id, { cookie: `${unlockCookieName(s.id)}=forged`, secrets: [code, presence] }, 'a forged unlock cookie'),
      4401, 'the main document with a forged unlock cookie', /password/i)

    const wrong = await unlock(server, s.id, 'open sesame!')
    assertError(wrong, 403, 'unlock with a wrong password')
    assert.equal(wrong.cookie, null, `a wrong password set an unlock cookie: ${wrong.cookie?.line}`)

    const right = await unlock(server, s.id, password)
    assertStatus(right, 204, 'unlock with the right password')
    assert.ok(right.cookie, `no ${unlockCookieName(s.id)} cookie; Set-Cookie: ${JSON.stringify(right.headers['set-cookie'])}`)
    const attributes = right.cookie.attributes
    assert.ok(right.cookie.value.length > 0, 'the unlock cookie is empty')
    assert.ok(!right.cookie.value.includes('sesame'), `the unlock cookie carries the password: ${right.cookie.line}`)
    assert.equal(attributes.get('path'), '/', `Path=/ in ${right.cookie.line}`)
    assert.equal(attributes.get('httponly'), true, `HttpOnly in ${right.cookie.line}`)
    assert.equal(String(attributes.get('samesite')).toLowerCase(), 'strict', `SameSite=Strict in ${right.cookie.line}`)
    assert.equal(attributes.has('secure'), false, `Secure on a plain http answer: ${right.cookie.line}`)

    assertFullInfo(await getSession(server, s.id, { cookie: right.cookieHeader }), s, 'GET with the unlock cookie', { passwordRequired: true })
    const candidate = await synced(server, s.id, { cookie: right.cookieHeader, name: 'candidate (unlock cookie)' })
    await candidate.hasText(code)
    candidate.text.insert(candidate.text.length, '\ncandidate was here')
    await interviewer.hasText(`${code}\ncandidate was here`)
    assert.deepEqual(candidate.closes, [], 'the unlocked candidate was disconnected')

    // The cookie unlocks this session only, even where the password is the same.
    const twin = await create(server, { password })
    const transplanted = `${unlockCookieName(twin.id)}=${right.cookie.value}`
    assertLockedInfo(await getSession(server, twin.id, { cookie: transplanted }), twin, "GET of another session with this session's token")
    assertClose(await refusal(server, twin.id, { cookie: transplanted }, "another session with this session's token"),
      4401, "another session's main document with this session's token", /password/i)
    assertClose(await refusal(server, twin.id, { cookie: right.cookieHeader }, "another session with this session's cookie"),
      4401, "another session's main document with this session's cookie", /password/i)
  })

  test('unlock on a session without a password -> 204 and no cookie', async () => {
    const s = await create(server)
    const res = await unlock(server, s.id, 'anything')
    assertStatus(res, 204, 'unlock without a password set')
    assert.equal(res.cookie, null, `an unlock cookie for a session without a password: ${res.cookie?.line}`)
  })

  test('the 6th wrong guess within a minute -> 429 with Retry-After, even when it is right; other sessions and the key holder are not affected', async () => {
    const s = await create(server, { password: 'guess me' })
    const neighbour = await create(server, { password: 'guess me' })
    for (let i = 1; i <= 5; i++) {
      assertError(await unlock(server, s.id, `wrong guess ${i}`), 403, `wrong guess ${i} of 5`)
    }
    const sixth = await unlock(server, s.id, 'guess me')
    assertError(sixth, 429, 'the right password after 5 wrong guesses')
    assert.equal(sixth.cookie, null, `a 429 set the unlock cookie: ${sixth.cookie?.line}`)
    const retryAfter = sixth.headers['retry-after']
    assert.match(String(retryAfter), /^\d+$/, `Retry-After should be whole seconds; got ${JSON.stringify(retryAfter)}`)
    assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60, `Retry-After ${retryAfter} should be within the minute`)

    await unlockedCookie(server, neighbour.id, 'guess me')
    assertFullInfo(await getSession(server, s.id, { key: s.interviewerKey }), s, 'GET with the key of the guessed session')
  })

  test('PUT password: 400 when empty or over 256 UTF-8 bytes; setting one locks an open session; changing it invalidates earlier cookies and the old password', async () => {
    const s = await create(server)
    const put = (password) => api(server, 'PUT', `/api/sessions/${s.id}/password`, { key: s.interviewerKey, body: { password } })
    for (const [what, password] of [['an empty password', ''], ['257 ASCII bytes', 'x'.repeat(257)], ['86 euro signs (258 bytes)', '€'.repeat(86)]]) {
      assertError(await put(password), 400, `PUT password with ${what}`)
    }
    assertFullInfo(await getSession(server, s.id), s, 'GET after refused PUT password', { passwordRequired: false })

    assertStatus(await put('first secret'), 204, 'PUT the first password')
    assertLockedInfo(await getSession(server, s.id), s, 'GET after setting a password')
    assertClose(await refusal(server, s.id, {}, 'no cookie after a password was set'), 4401, 'the main document once a password is set', /password/i)
    const first = await unlockedCookie(server, s.id, 'first secret')
    await synced(server, s.id, { cookie: first, name: 'candidate with the first cookie' })

    assertStatus(await put('second secret'), 204, 'PUT a new password')
    assertLockedInfo(await getSession(server, s.id, { cookie: first }), s, 'GET with a cookie from before the change')
    assertClose(await refusal(server, s.id, { cookie: first }, 'a cookie from before the change'), 4401, 'the main document with a cookie from before the change', /password/i)
    assertError(await unlock(server, s.id, 'first secret'), 403, 'unlock with the old password')
    const second = await unlockedCookie(server, s.id, 'second secret')
    assert.notEqual(second, first, 'the new password unlocks with the same cookie as the old one')
    assertFullInfo(await getSession(server, s.id, { cookie: second }), s, 'GET with the new cookie', { passwordRequired: true })
    await synced(server, s.id, { cookie: second, name: 'candidate with the new cookie' })

    // Setting the same password again also invalidates earlier cookies.
    assertStatus(await put('second secret'), 204, 'PUT the same password again')
    assertLockedInfo(await getSession(server, s.id, { cookie: second }), s, 'GET with a cookie from before the password was set again')

    assertStatus(await put('y'.repeat(256)), 204, 'PUT a 256-byte password')
    await unlockedCookie(server, s.id, 'y'.repeat(256))
  })

  test('DELETE password opens the session to everyone: GET, the WebSocket without a cookie, unlock without a cookie; DELETE again -> 204', async () => {
    const s = await create(server, { password: 'temporary' })
    const interviewer = await synced(server, s.id, { key: s.interviewerKey, name: 'interviewer' })
    interviewer.text.insert(0, 'visible once the password is gone')
    const del = () => api(server, 'DELETE', `/api/sessions/${s.id}/password`, { key: s.interviewerKey })

    assertStatus(await del(), 204, 'DELETE password')
    assertFullInfo(await getSession(server, s.id), s, 'GET without credentials after DELETE password', { passwordRequired: false })
    const visitor = await synced(server, s.id, { name: 'visitor without a cookie' })
    await visitor.hasText('visible once the password is gone')
    const res = await unlock(server, s.id, 'temporary')
    assertStatus(res, 204, 'unlock after DELETE password')
    assert.equal(res.cookie, null, 'unlock set a cookie on a session without a password')
    assertStatus(await del(), 204, 'DELETE password when none is set')
  })
})

describe('roles in awareness', () => {
  let server
  before(async () => { server = await startServer({ args: SERVER_ARGS }) })
  afterEach(destroyTracked)
  after(async () => { await server?.dispose() })

  test('a candidate writing role "interviewer" is seen as "candidate"; key holders (param or cookie) are seen as "interviewer", also by a late joiner', async () => {
    const s = await create(server, { password: 'roles' })
    const cookie = await unlockedCookie(server, s.id, 'roles')
    const observer = await synced(server, s.id, { key: s.interviewerKey, name: 'observer (interviewer)' })
    const claimant = await synced(server, s.id, { cookie, name: 'candidate claiming "interviewer"' })
    const plain = await synced(server, s.id, { cookie, name: 'candidate' })
    const byCookie = await synced(server, s.id, { cookie: keyCookie(s), name: 'interviewer (key cookie)' })
    const modest = await synced(server, s.id, { key: s.interviewerKey, name: 'interviewer claiming "candidate"' })

    claimant.awareness.setLocalState({ user: { name: 'Claimant' }, role: 'interviewer' })
    plain.awareness.setLocalState({ user: { name: 'Plain' } })
    byCookie.awareness.setLocalState({ user: { name: 'ByCookie' } })
    modest.awareness.setLocalState({ user: { name: 'Modest' }, role: 'candidate' })
    const expected = [[claimant, 'candidate'], [plain, 'candidate'], [byCookie, 'interviewer'], [modest, 'interviewer']]

    const checkRoles = async (viewer) => {
      const seen = () => JSON.stringify([...viewer.awareness.getStates()])
      await waitFor(() => expected.every(([c]) => viewer.awareness.getStates().get(c.doc.clientID)?.user?.name), {
        message: () => `${viewer.name} to see everyone's presence; it sees ${seen()}`
      })
      for (const [c, role] of expected) {
        if (c === viewer) continue
        assert.equal(viewer.awareness.getStates().get(c.doc.clientID)?.role, role,
          `${viewer.name} should see ${c.name} as "${role}"; it sees ${seen()}`)
      }
    }
    await checkRoles(observer)
    await checkRoles(plain)

    // A later change of the claimant's state is stamped again.
    claimant.awareness.setLocalStateField('cursor', { anchor: 1, head: 2 })
    await waitFor(() => observer.awareness.getStates().get(claimant.doc.clientID)?.cursor?.head === 2, { message: "the observer to see the claimant's cursor" })
    assert.equal(observer.awareness.getStates().get(claimant.doc.clientID)?.role, 'candidate', 'a later state change lost the stamped role')

    // A late joiner gets the states on connect, roles included.
    await checkRoles(await synced(server, s.id, { cookie, name: 'late candidate' }))
  })
})

describe('the notes document', () => {
  let server
  before(async () => { server = await startServer({ args: SERVER_ARGS }) })
  afterEach(destroyTracked)
  after(async () => { await server?.dispose() })

  test('notes without the key -> 4403 (reason mentions "interviewer"): no credentials, an unlock cookie, a wrong key, another session\'s key', async () => {
    const open = await create(server)
    const locked = await create(server, { password: 'notes pw' })
    const cookie = await unlockedCookie(server, locked.id, 'notes pw')
    const secrets = []
    for (const s of [open, locked]) {
      const writer = await synced(server, s.id, { notes: true, key: s.interviewerKey, name: 'notes writer' })
      const reader = await synced(server, s.id, { notes: true, key: s.interviewerKey, name: 'notes reader' })
      const secret = tag('private-note')
      notesOf(writer).insert(0, secret)
      await hasNotes(reader, secret)
      secrets.push(secret)
    }
    const cases = [
      ['no credentials', open, {}],
      ['a wrong key', open, { key: randomKey() }],
      ["another session's key", open, { key: locked.interviewerKey }],
      ['an unlock cookie (right password)', locked, { cookie }]
    ]
    for (const [what, s, creds] of cases) {
      const close = await refusal(server, s.id, { notes: true, ...creds, secrets }, `the notes document with ${what}`)
      assertClose(close, 4403, `the notes document with ${what}`, /interviewer/i)
    }
    // The same unlock cookie still opens the main document.
    await synced(server, locked.id, { cookie, name: 'candidate on the main document' })
  })

  test('two key holders converge on Y.Text "notes" and a late key holder gets them; the main document never contains them', async () => {
    const s = await create(server)
    const a = await synced(server, s.id, { notes: true, key: s.interviewerKey, name: 'interviewer A (notes, ?key=)' })
    const b = await synced(server, s.id, { notes: true, cookie: keyCookie(s), name: 'interviewer B (notes, key cookie)' })
    const noteA = tag('NOTE-A')
    const noteB = tag('NOTE-B')

    notesOf(a).insert(0, `${noteA}\n`)
    await hasNotes(b, `${noteA}\n`)
    notesOf(b).insert(notesOf(b).length, `${noteB}\n`)
    await hasNotes(a, `${noteA}\n${noteB}\n`)
    // Concurrent edits from both sides.
    notesOf(a).insert(0, 'strong hire? ')
    notesOf(b).insert(notesOf(b).length, 'asked about complexity')
    await waitFor(() => notesOf(a).toString() === notesOf(b).toString() && notesOf(a).toString().includes('complexity') && notesOf(a).toString().startsWith('strong'), {
      message: () => `A and B to converge: ${JSON.stringify(notesOf(a).toString())} vs ${JSON.stringify(notesOf(b).toString())}`
    })
    const final = notesOf(a).toString()
    assert.deepEqual([...a.closes, ...b.closes], [], 'a notes client was disconnected')
    await hasNotes(await synced(server, s.id, { notes: true, key: s.interviewerKey, name: 'late interviewer (notes)' }), final)

    // The main document: a candidate and an interviewer, and what a raw connection receives.
    const candidate = await synced(server, s.id, { name: 'candidate (main document)' })
    const interviewer = await synced(server, s.id, { key: s.interviewerKey, name: 'interviewer (main document)' })
    candidate.text.insert(0, 'def solve():\n')
    await interviewer.hasText('def solve():\n')
    for (const viewer of [candidate, interviewer]) {
      assert.equal(viewer.doc.share.has('notes'), false, `${viewer.name}'s main document has a "notes" type`)
      assert.equal(viewer.text.toString(), 'def solve():\n')
      const state = Buffer.from(Y.encodeStateAsUpdate(viewer.doc))
      for (const note of [noteA, noteB, 'strong hire?', 'asked about complexity']) {
        assert.ok(!state.includes(note), `${viewer.name}'s main document contains the note ${JSON.stringify(note)}`)
      }
    }
    const raw = rawClient(server.wsUrl(s.id))
    try {
      await raw.open()
      await raw.send(emptySyncStep1())
      await raw.waitFrame((data) => data[0] === 0 && data[1] === 1, undefined, "the server's SyncStep2 for the main document")
      for (const note of [noteA, noteB, 'strong hire?']) {
        assert.ok(!raw.frames.some((f) => f.data.includes(note)), `a main-document connection received the note ${JSON.stringify(note)}`)
      }
    } finally {
      raw.terminate()
    }
  })
})

describe('end and reopen', () => {
  let server
  before(async () => { server = await startServer({ args: SERVER_ARGS }) })
  afterEach(destroyTracked)
  after(async () => { await server?.dispose() })

  const end = (s) => api(server, 'POST', `/api/sessions/${s.id}/end`, { key: s.interviewerKey })
  const reopen = (s) => api(server, 'POST', `/api/sessions/${s.id}/reopen`, { key: s.interviewerKey })
  const seesEnded = (client, ended = true) => waitFor(() => (client.meta.get('ended') === true) === ended, {
    message: () => `${client.name} to see meta.ended ${ended ? 'true' : 'false or absent'}; it has ${JSON.stringify(client.meta.get('ended'))}`
  })

  test('end -> 204 twice: connected clients see meta.ended true, GET says ended, a fresh client syncs with meta.ended true; nobody who only watches is disconnected', async () => {
    const s = await create(server)
    const candidate = await synced(server, s.id, { name: 'candidate' })
    const interviewer = await synced(server, s.id, { key: s.interviewerKey, name: 'interviewer' })
    candidate.text.insert(0, 'before the end\n')
    await interviewer.hasText('before the end\n')
    assert.notEqual(candidate.meta.get('ended'), true, 'a new session is already ended')
    assertFullInfo(await getSession(server, s.id), s, 'GET before the end', { ended: false })

    assertStatus(await end(s), 204, 'end')
    assertStatus(await end(s), 204, 'end again')
    await seesEnded(candidate)
    await seesEnded(interviewer)
    assertFullInfo(await getSession(server, s.id), s, 'GET after the end', { ended: true })
    assertFullInfo(await getSession(server, s.id, { key: s.interviewerKey }), s, 'GET with the key after the end', { ended: true })

    const fresh = await synced(server, s.id, { name: 'fresh candidate' })
    assert.equal(fresh.meta.get('ended'), true, 'a client that synced after the end has no meta.ended true')
    assert.equal(fresh.text.toString(), 'before the end\n')
    const probe = await settle(server, s.id, candidate, {}, 'ended session')
    for (const c of [candidate, interviewer, fresh, probe]) {
      assert.deepEqual(c.closes, [], `${c.name} was disconnected from an ended session without editing`)
    }
  })

  test('while ended, edits from a candidate and from an interviewer close 4409 (reason mentions "ended") and reach nobody, not even a later client', async () => {
    const s = await create(server, { language: 'javascript' })
    const candidate = await synced(server, s.id, { name: 'candidate' })
    const interviewer = await synced(server, s.id, { key: s.interviewerKey, name: 'interviewer' })
    const switcher = await synced(server, s.id, { name: 'candidate changing the language' })
    const observer = await synced(server, s.id, { name: 'observer' })
    candidate.text.insert(0, 'kept\n')
    await observer.hasText('kept\n')
    assertStatus(await end(s), 204, 'end')
    for (const c of [candidate, interviewer, switcher, observer]) await seesEnded(c)

    const late = tag('candidate-after-end')
    candidate.text.insert(candidate.text.length, late)
    await closedWith(candidate, 4409, "a candidate's edit after the end", /ended/i)
    const sneaky = tag('interviewer-after-end')
    interviewer.text.insert(0, sneaky)
    await closedWith(interviewer, 4409, "an interviewer's edit after the end", /ended/i)
    switcher.meta.set('language', 'python')
    await closedWith(switcher, 4409, 'a language change after the end', /ended/i)

    const probe = await settle(server, s.id, observer, {}, 'after the refused edits')
    for (const c of [observer, probe]) {
      assert.equal(c.text.toString(), 'kept\n', `${c.name} received a refused edit`)
      assert.equal(c.meta.get('language'), 'javascript', `${c.name} received a refused language change`)
    }
    assert.deepEqual(observer.closes, [], 'the observer was disconnected')

    // Nothing refused was stored: after reopening, a new client has only what was there before.
    for (const c of [candidate, interviewer, switcher]) c.destroy()
    assertStatus(await reopen(s), 204, 'reopen')
    const reader = await synced(server, s.id, { name: 'client after reopen' })
    assert.equal(reader.text.toString(), 'kept\n', 'a refused edit was stored')
    assert.equal(reader.meta.get('language'), 'javascript', 'a refused language change was stored')
  })

  test('notes stay writable for interviewers after the end', async () => {
    const s = await create(server)
    const a = await synced(server, s.id, { notes: true, key: s.interviewerKey, name: 'interviewer A (notes)' })
    notesOf(a).insert(0, 'before the end. ')
    const main = await synced(server, s.id, { key: s.interviewerKey, name: 'interviewer (main document)' })
    assertStatus(await end(s), 204, 'end')
    await seesEnded(main)
    notesOf(a).insert(notesOf(a).length, 'after the end.')
    const b = await synced(server, s.id, { notes: true, key: s.interviewerKey, name: 'interviewer B (notes, joined after the end)' })
    await hasNotes(b, 'before the end. after the end.')
    notesOf(b).insert(0, '[B] ')
    await hasNotes(a, '[B] before the end. after the end.')
    assert.deepEqual([...a.closes, ...b.closes], [], 'a notes client was disconnected after the end')
  })

  test('reopen -> 204 twice: meta.ended clears for connected and new clients, GET says not ended, edits flow again', async () => {
    const s = await create(server)
    const candidate = await synced(server, s.id, { name: 'candidate' })
    const interviewer = await synced(server, s.id, { key: s.interviewerKey, name: 'interviewer' })
    assertStatus(await end(s), 204, 'end')
    await seesEnded(candidate)
    assertStatus(await reopen(s), 204, 'reopen')
    assertStatus(await reopen(s), 204, 'reopen again')
    await seesEnded(candidate, false)
    await seesEnded(interviewer, false)
    assertFullInfo(await getSession(server, s.id), s, 'GET after reopen', { ended: false })

    candidate.text.insert(0, 'candidate after reopen\n')
    await interviewer.hasText('candidate after reopen\n')
    interviewer.text.insert(interviewer.text.length, 'interviewer after reopen\n')
    await candidate.hasText('candidate after reopen\ninterviewer after reopen\n')
    assert.deepEqual([...candidate.closes, ...interviewer.closes], [], 'a client was disconnected after reopen')
    const fresh = await synced(server, s.id, { name: 'fresh client' })
    assert.notEqual(fresh.meta.get('ended'), true, 'a client that synced after reopen sees the session ended')
  })

  test('a client writing meta.ended itself -> 4422; nobody sees it and the session is not ended', async () => {
    const s = await create(server)
    const candidate = await synced(server, s.id, { name: 'candidate writing meta.ended' })
    const interviewer = await synced(server, s.id, { key: s.interviewerKey, name: 'interviewer writing meta.ended' })
    const observer = await synced(server, s.id, { name: 'observer' })

    candidate.meta.set('ended', true)
    await closedWith(candidate, 4422, 'a candidate writing meta.ended')
    interviewer.meta.set('ended', true)
    await closedWith(interviewer, 4422, 'an interviewer writing meta.ended')

    const probe = await settle(server, s.id, observer, {}, 'after meta.ended writes')
    for (const c of [observer, probe]) {
      assert.notEqual(c.meta.get('ended'), true, `${c.name} received a client's meta.ended`)
    }
    assertFullInfo(await getSession(server, s.id), s, 'GET after clients wrote meta.ended', { ended: false })
    observer.text.insert(0, 'still open')
    await probe.hasText('still open')
    assert.deepEqual(observer.closes, [], 'the observer was disconnected')
  })
})

describe('deleting a session', () => {
  let server
  before(async () => { server = await startServer({ args: SERVER_ARGS }) })
  afterEach(destroyTracked)
  after(async () => { await server?.dispose() })

  test('DELETE -> 204: open main and notes connections close 4404; GET and every endpoint -> 404; new connections -> 4404', async () => {
    const s = await create(server)
    const candidate = await synced(server, s.id, { name: 'candidate' })
    const interviewer = await synced(server, s.id, { key: s.interviewerKey, name: 'interviewer' })
    const notes = await synced(server, s.id, { notes: true, key: s.interviewerKey, name: 'interviewer (notes)' })

    assertStatus(await api(server, 'DELETE', `/api/sessions/${s.id}`, { key: s.interviewerKey }), 204, 'DELETE session')
    for (const c of [candidate, interviewer, notes]) await closedWith(c, 4404, `${c.name} of a deleted session`)

    assertError(await getSession(server, s.id), 404, 'GET of a deleted session')
    assertError(await getSession(server, s.id, { key: s.interviewerKey }), 404, 'GET of a deleted session with its key')
    for (const [label, method, suffix, body] of [...KEY_PROTECTED, ['unlock', 'POST', '/unlock', { password: 'x' }]]) {
      assertError(await api(server, method, `/api/sessions/${s.id}${suffix}`, { key: s.interviewerKey, body }), 404, `${label} of a deleted session`)
    }
    assertClose(await refusal(server, s.id, {}, 'the main document of a deleted session'), 4404, 'the main document of a deleted session')
    assertClose(await refusal(server, s.id, { notes: true, key: s.interviewerKey }, 'the notes of a deleted session'), 4404, 'the notes of a deleted session')
  })
})

describe('after a restart (SIGKILL)', () => {
  let server
  before(async () => { server = await startServer({ args: SERVER_ARGS }) })
  afterEach(destroyTracked)
  after(async () => { await server?.dispose() })

  const restart = async () => {
    destroyTracked() // no client may survive to re-upload its copy
    await server.stop('SIGKILL')
    await server.restart()
  }
  const put = (s, password) => api(server, 'PUT', `/api/sessions/${s.id}/password`, { key: s.interviewerKey, body: { password } })

  test('passwords (set at create, set later, changed, removed) and the key survive', async () => {
    const atCreate = await create(server, { password: 'set at create' })
    const later = await create(server)
    assertStatus(await put(later, 'set later'), 204, 'PUT password')
    const changed = await create(server, { password: 'to be changed' })
    assertStatus(await put(changed, 'changed'), 204, 'PUT a new password')
    const removed = await create(server, { password: 'to be removed' })
    assertStatus(await api(server, 'DELETE', `/api/sessions/${removed.id}/password`, { key: removed.interviewerKey }), 204, 'DELETE password')

    await restart()

    for (const s of [atCreate, later, changed]) {
      assertLockedInfo(await getSession(server, s.id), s, 'GET without credentials after the restart')
      assertClose(await refusal(server, s.id, {}, 'no cookie after the restart'), 4401, 'the main document without a cookie after the restart', /password/i)
    }
    await synced(server, atCreate.id, { cookie: await unlockedCookie(server, atCreate.id, 'set at create'), name: 'candidate after the restart' })
    await unlockedCookie(server, later.id, 'set later')
    assertError(await unlock(server, changed.id, 'to be changed'), 403, 'the replaced password after the restart')
    await unlockedCookie(server, changed.id, 'changed')
    assertFullInfo(await getSession(server, removed.id), removed, 'GET of the session whose password was removed', { passwordRequired: false })
    await synced(server, removed.id, { name: 'visitor of the session whose password was removed' })

    assertFullInfo(await getSession(server, atCreate.id, { key: atCreate.interviewerKey }), atCreate, 'GET with the key after the restart', { passwordRequired: true })
    await synced(server, atCreate.id, { key: atCreate.interviewerKey, name: 'interviewer after the restart' })
    await synced(server, atCreate.id, { notes: true, key: atCreate.interviewerKey, name: 'interviewer (notes) after the restart' })
    assertClose(await refusal(server, removed.id, { key: atCreate.interviewerKey }, "another session's key after the restart"), 4403, "another session's key after the restart")
  })

  test('the ended flag and a deletion survive; reopen works afterwards', async () => {
    const s = await create(server)
    const interviewer = await synced(server, s.id, { key: s.interviewerKey, name: 'interviewer' })
    const witness = await synced(server, s.id, { name: 'witness' })
    interviewer.text.insert(0, 'final answer\n')
    await witness.hasText('final answer\n')
    assertStatus(await api(server, 'POST', `/api/sessions/${s.id}/end`, { key: s.interviewerKey }), 204, 'end')
    await waitFor(() => witness.meta.get('ended') === true, { message: 'the witness to see meta.ended' })
    const gone = await create(server)
    assertStatus(await api(server, 'DELETE', `/api/sessions/${gone.id}`, { key: gone.interviewerKey }), 204, 'DELETE session')

    await restart()

    assertFullInfo(await getSession(server, s.id), s, 'GET after the restart', { ended: true })
    const candidate = await synced(server, s.id, { name: 'candidate after the restart' })
    assert.equal(candidate.meta.get('ended'), true, 'meta.ended after the restart')
    assert.equal(candidate.text.toString(), 'final answer\n')
    candidate.text.insert(0, 'too late')
    await closedWith(candidate, 4409, 'an edit to an ended session after the restart', /ended/i)

    assertError(await getSession(server, gone.id), 404, 'GET of a deleted session after the restart')
    assertClose(await refusal(server, gone.id, {}, 'a deleted session after the restart'), 4404, 'a deleted session after the restart')

    assertStatus(await api(server, 'POST', `/api/sessions/${s.id}/reopen`, { key: s.interviewerKey }), 204, 'reopen after the restart')
    const a = await synced(server, s.id, { name: 'A after reopen' })
    const b = await synced(server, s.id, { name: 'B after reopen' })
    assert.notEqual(a.meta.get('ended'), true, 'meta.ended after reopen')
    a.text.insert(a.text.length, 'reopened\n')
    await b.hasText('final answer\nreopened\n')
  })

  test('notes survive', async () => {
    const s = await create(server)
    const a = await synced(server, s.id, { notes: true, key: s.interviewerKey, name: 'interviewer A (notes)' })
    const b = await synced(server, s.id, { notes: true, key: s.interviewerKey, name: 'interviewer B (notes)' })
    const note = tag('note-before-restart')
    notesOf(a).insert(0, note)
    await hasNotes(b, note)

    await restart()

    await hasNotes(await synced(server, s.id, { notes: true, key: s.interviewerKey, name: 'interviewer (notes) after the restart' }), note)
  })
})

describe('events and the exported record', () => {
  let server
  before(async () => { server = await startServer({ args: SERVER_ARGS }) })
  afterEach(destroyTracked)
  after(async () => { await server?.dispose() })

  const report = (id, body, creds = {}) => api(server, 'POST', `/api/sessions/${id}/events`, { ...creds, body })
  const exportOf = (id, creds, format = '') => api(server, 'GET', `/api/sessions/${id}/export${format}`, creds)

  test('events: a participant reports blur, focus and large pastes (204); unknown kinds -> 400; a locked session without the cookie -> 401; interviewers see them in the notes document, the candidate\'s main document never holds them', async () => {
    const s = await create(server)
    const notes = await synced(server, s.id, { notes: true, key: s.interviewerKey, name: 'interviewer (notes)' })
    const candidate = await synced(server, s.id, { name: 'candidate' })
    assertStatus(await report(s.id, { kind: 'blur', name: 'Cam' }), 204, 'blur')
    assertStatus(await report(s.id, { kind: 'focus', name: 'Cam' }), 204, 'focus')
    assertStatus(await report(s.id, { kind: 'paste', name: 'Cam', chars: 320 }), 204, 'paste')
    assertError(await report(s.id, { kind: 'keylogger', name: 'Cam' }), 400, 'an unknown kind')
    assertError(await report(s.id, 'not json'), 400, 'a malformed body')
    const events = notes.doc.getArray('events')
    await waitFor(() => events.toArray().filter((e) => ['blur', 'focus', 'paste'].includes(e.kind)).length === 3,
      { message: 'the three events in the notes document' })
    const paste = events.toArray().find((e) => e.kind === 'paste')
    assert.equal(paste.name, 'Cam')
    assert.equal(paste.role, 'candidate')
    assert.equal(paste.chars, 320)
    assert.ok(!JSON.stringify(candidate.doc.toJSON()).includes('paste'), 'the candidate document holds an event')

    const locked = await create(server, { password: 'secret pass' })
    assertError(await report(locked.id, { kind: 'blur', name: 'Cam' }), 401, 'an event for a locked session without the cookie')
  })

  test('export: missing key -> 401, wrong key -> 403, the key -> the record (code, participants with join and leave, runs, notes, events), and ?format=html escapes what it shows', async () => {
    const s = await create(server)
    assertError(await exportOf(s.id, {}), 401, 'export without the key')
    assertError(await exportOf(s.id, { key: randomKey() }), 403, 'export with a wrong key')

    const cam = await synced(server, s.id, { name: 'candidate Cam' })
    cam.awareness.setLocalStateField('user', { name: 'Cam', color: 1 })
    const note = tag('<b>note</b>')
    const notes = await synced(server, s.id, { notes: true, key: s.interviewerKey, name: 'interviewer (notes)' })
    notesOf(notes).insert(0, note)
    cam.text.insert(0, 'print("<img src=x onerror=alert(1)>")\n')
    cam.doc.getArray('runs').push([{
      id: 'r1', by: 'Cam', language: 'python', startedAt: Date.now(), durationMs: 12, status: 'ok',
      output: [{ stream: 'stdout', text: 'out-42\n' }], truncated: false
    }])
    assertStatus(await report(s.id, { kind: 'paste', name: 'Cam', chars: 300 }), 204, 'paste')
    await waitFor(async () => (await exportOf(s.id, { key: s.interviewerKey })).json?.participants?.length === 1,
      { message: 'Cam in the record once named' })
    cam.destroy()
    await waitFor(async () => (await exportOf(s.id, { key: s.interviewerKey })).json?.participants?.[0]?.leftAt != null,
      { message: 'Cam\'s leave time in the record' })

    const record = (await exportOf(s.id, { key: s.interviewerKey })).json
    assert.equal(record.id, s.id)
    assert.equal(record.code, 'print("<img src=x onerror=alert(1)>")\n')
    assert.equal(record.notes, note)
    assert.equal(record.participants[0].name, 'Cam')
    assert.equal(record.participants[0].role, 'candidate')
    assert.ok(Date.parse(record.participants[0].joinedAt) <= Date.parse(record.participants[0].leftAt))
    assert.equal(record.runs.length, 1)
    assert.equal(record.runs[0].output[0].text, 'out-42\n')
    assert.deepEqual(record.events.map((e) => [e.kind, e.chars]), [['paste', 300]])

    const html = await exportOf(s.id, { key: s.interviewerKey }, '?format=html')
    assertStatus(html, 200, 'the HTML record')
    assert.match(html.headers['content-type'], /^text\/html/)
    assert.ok(html.text.includes('out-42'), 'the run output is in the HTML record')
    assert.ok(html.text.includes('&lt;img src=x onerror=alert(1)&gt;'), 'the code is escaped')
    assert.ok(!html.text.includes('<img'), 'raw markup from the code made it into the HTML record')
    assert.ok(!html.text.includes('<b>note'), 'raw markup from the notes made it into the HTML record')
    assertError(await exportOf(s.id, { key: s.interviewerKey }, '?format=pdf'), 400, 'an unknown format')
    assertError(await exportOf(s.id, { key: s.interviewerKey }, '?format=%ZZ'), 400, 'a malformed format')
    assertError(await exportOf(s.id, { key: s.interviewerKey }, '?format=html&format=json'), 400, 'the format given twice')
  })
})

describe('event reports are bounded per session', () => {
  let server
  // Behind a (pretend) proxy, so reports can come from many addresses.
  before(async () => { server = await startServer({ args: [...SERVER_ARGS, '--trusted-proxy', '127.0.0.1/32'] }) })
  afterEach(destroyTracked)
  after(async () => { await server?.dispose() })

  const reportFrom = (address, id) => request(server, 'POST', `/api/sessions/${id}/events`, {
    headers: { 'x-forwarded-for': address },
    body: { kind: 'blur', name: 'Flood' }
  })

  test('61 reports into one session within a minute from 61 addresses: the 61st -> 429 with Retry-After and a JSON error; another session still takes reports; the notes document holds at most 60 of them', async () => {
    const flooded = await create(server)
    const other = await create(server)
    for (let i = 1; i <= 60; i++) {
      assertStatus(await reportFrom(`10.1.0.${i}`, flooded.id), 204, `report ${i} from its own address`)
    }
    const refused = await reportFrom('10.1.1.1', flooded.id)
    assertError(refused, 429, 'the 61st report into one session, from a fresh address')
    assert.ok(Number(refused.headers['retry-after']) >= 1, `no Retry-After on the 429: ${JSON.stringify(refused.headers)}`)
    assertStatus(await reportFrom('10.1.1.2', other.id), 204, 'a report into another session')
    const notes = await synced(server, flooded.id, { notes: true, key: flooded.interviewerKey, name: 'interviewer (notes)' })
    const blurs = () => notes.doc.getArray('events').toArray().filter((e) => e.kind === 'blur').length
    await waitFor(() => blurs() === 60, { message: 'the 60 admitted reports in the notes document' })
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(blurs(), 60, 'a refused report reached the notes document')
  })
})
