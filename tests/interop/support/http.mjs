// Plain HTTP for the interop tests: one request with exactly the headers
// given, requests with the interviewer's credentials, JSON error assertions
// and session creation.

import assert from 'node:assert/strict'
import http from 'node:http'

/** One HTTP request with exactly these headers; resolves {status, headers, text, json}. */
export function request (server, method, path, { headers = {}, body } = {}) {
  const payload = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body)
  const all = { 'content-length': Buffer.byteLength(payload), ...headers }
  if (payload) all['content-type'] = 'application/json'
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, method, path, headers: all }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { text += d })
      res.on('end', () => {
        let json = null
        try { json = JSON.parse(text) } catch {}
        resolve({ status: res.statusCode, headers: res.headers, text, json })
      })
    })
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)))
    req.on('error', reject)
    req.end(payload)
  })
}

/** A request with credentials: `key` (Bearer), a raw `authorization` header, a `cookie` header. */
export function api (server, method, path, { key, authorization, cookie, body } = {}) {
  const headers = {}
  if (key !== undefined) headers.authorization = `Bearer ${key}`
  else if (authorization !== undefined) headers.authorization = authorization
  if (cookie !== undefined) headers.cookie = cookie
  return request(server, method, path, { headers, body })
}

export const describeRes = (res) => `${res.status} ${res.text.slice(0, 300)}`

export function assertStatus (res, status, what) {
  assert.equal(res.status, status, `${what}: expected ${status}, got ${describeRes(res)}`)
}

/** `status` with a JSON body {error: "<non-empty text>"}. */
export function assertError (res, status, what) {
  assertStatus(res, status, what)
  assert.equal(typeof res.json?.error, 'string', `${what}: the ${status} body should be JSON with an "error" string; got ${res.text.slice(0, 300)}`)
  assert.ok(res.json.error.trim().length > 0, `${what}: empty error text`)
}

/** POST /api/sessions/create with `body`; returns the 201 body. */
export async function create (server, body = {}) {
  const res = await request(server, 'POST', '/api/sessions/create', { body })
  assertStatus(res, 201, `create ${JSON.stringify(body).slice(0, 80)}`)
  return res.json
}
