// What the binary says when it starts: the address it actually listens on, as
// a link (`./x run` relies on it instead of announcing a fixed port).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startServer } from './support/server.mjs'

test('the binary announces the link it actually listens on, not a default port', async (t) => {
  const server = await startServer() // --addr 127.0.0.1:0: the kernel picks the port
  t.after(() => server.dispose())
  const announced = server.logs
    .map((line) => { try { return JSON.parse(line).fields ?? {} } catch { return {} } })
    .find((fields) => String(fields.message).startsWith('pairpad listening'))
  assert.ok(announced, `no listening line in:\n${server.logs.join('\n')}`)
  assert.notEqual(server.port, 3000)
  assert.equal(announced.message, `pairpad listening on http://127.0.0.1:${server.port}`)
  const health = await fetch(`${new URL(announced.message.split(' on ')[1])}api/health`)
  assert.equal(health.status, 200)
})
