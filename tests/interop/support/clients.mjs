// Client helpers for the interop tests: a stock Yjs + y-websocket client
// (WebsocketProvider over the `ws` package, BroadcastChannel disabled so that
// clients in this process can only reach each other through the server), a raw
// `ws` client that records frames and the close code/reason, and bounded waits.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

export { Y, WebSocket }

/** Default bound for any wait; a wait that runs out fails the test with a message. */
export const WAIT_MS = 8_000

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Polls `predicate` until it returns a truthy value (returned) or `timeout` ms pass
 * (throws `message`, which may be a function for a description of the current state).
 */
export async function waitFor (predicate, { timeout = WAIT_MS, message = 'condition', interval = 15 } = {}) {
  const deadline = Date.now() + timeout
  let lastError
  for (;;) {
    try {
      const value = await predicate()
      if (value) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() >= deadline) {
      const text = typeof message === 'function' ? message() : message
      const err = new Error(`timed out after ${timeout} ms waiting for: ${text}` +
        (lastError ? `\n(last error: ${lastError.message})` : ''))
      throw err
    }
    await sleep(interval)
  }
}

/** Resolves with the promise's value, or throws `message` after `timeout` ms. */
export async function within (promise, { timeout = WAIT_MS, message = 'operation' } = {}) {
  let timer
  const timed = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeout} ms waiting for: ${message}`)), timeout)
  })
  try {
    return await Promise.race([promise, timed])
  } finally {
    clearTimeout(timer)
  }
}

/** A `ws` WebSocket class that sends `headers` (e.g. a Cookie) with its upgrade request. */
function webSocketWithHeaders (headers) {
  if (!headers) return WebSocket
  return class extends WebSocket {
    constructor (url, protocols) {
      super(url, protocols, { headers })
    }
  }
}

/**
 * A stock Yjs client joined to one session through y-websocket's WebsocketProvider.
 * `sessionId` is the room name (`<id>/notes` for the notes document); `params`
 * become the URL query (e.g. `{ key }`), `headers` go with the upgrade request
 * (e.g. `{ cookie: 'name=value' }`, as a browser would send it).
 * @param {{wsBase: string}} server
 * @param {string} sessionId
 */
export function yClient (server, sessionId, { name = 'client', connect = true, params = {}, headers = null } = {}) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(server.wsBase, sessionId, doc, {
    WebSocketPolyfill: webSocketWithHeaders(headers),
    params,
    disableBc: true,
    maxBackoffTime: 500,
    connect
  })
  const closes = []
  provider.on('connection-close', (event) => {
    if (event) closes.push({ code: event.code, reason: event.reason })
  })
  const terminal = []
  provider.on('closed', (event) => terminal.push(event))
  // A browser logs an exception thrown by a WebSocket message handler and carries
  // on; Node would crash the test process instead. Record such exceptions (e.g.
  // y-protocols failing to parse something the server relayed) so a test can
  // report them. setupWS sets onmessage before emitting 'connecting'.
  const messageErrors = []
  provider.on('status', () => {
    const ws = provider.ws
    if (!ws || ws.__pairpadWrapped || typeof ws.onmessage !== 'function') return
    const handler = ws.onmessage
    ws.onmessage = (event) => {
      try {
        handler(event)
      } catch (err) {
        messageErrors.push(err)
      }
    }
    ws.__pairpadWrapped = true
  })
  const client = {
    name,
    doc,
    provider,
    awareness: provider.awareness,
    text: doc.getText('code'),
    meta: doc.getMap('meta'),
    /** Every close the server sent this client: [{code, reason}]. */
    closes,
    /** Closes y-websocket treated as permanent (no reconnect). */
    terminal,
    /** Exceptions the stock client threw while handling a server message. */
    messageErrors,
    /** Resolves once the provider has synced with the server. */
    synced (timeout = WAIT_MS) {
      return waitFor(() => provider.synced, {
        timeout,
        message: () => `${name} to sync with the server (closes so far: ${JSON.stringify(closes)})`
      })
    },
    /** Resolves once this client's text equals `expected`. */
    hasText (expected, timeout = WAIT_MS) {
      return waitFor(() => client.text.toString() === expected, {
        timeout,
        message: () => `${name} to have text ${JSON.stringify(expected)}; it has ${JSON.stringify(client.text.toString())}`
      })
    },
    /**
     * Drops the connection abruptly, as a crashed tab or lost network would: the
     * client sends no goodbye (no awareness removal) and does not reconnect.
     */
    kill () {
      provider.shouldConnect = false
      const ws = provider.ws
      if (ws) ws.terminate()
    },
    destroy () {
      if (client.destroyed) return
      client.destroyed = true
      provider.destroy()
      doc.destroy()
    },
    destroyed: false
  }
  return client
}

/** Hex string ("00 02 ff") or byte array -> Buffer. */
export function bytes (data) {
  if (typeof data === 'string') {
    const hex = data.replace(/[^0-9a-fA-F]/g, '')
    if (hex.length % 2 !== 0) throw new Error(`odd-length hex: ${data}`)
    return Buffer.from(hex, 'hex')
  }
  return Buffer.from(data)
}

/**
 * A raw WebSocket client that records every frame it receives and how the
 * connection closed. `headers` go with the upgrade request (e.g. a Cookie).
 */
export function rawClient (url, { headers } = {}) {
  const ws = headers ? new WebSocket(url, { headers }) : new WebSocket(url)
  ws.binaryType = 'nodebuffer'
  const frames = []
  const errors = []
  ws.on('message', (data, isBinary) => frames.push({ data: Buffer.from(data), isBinary }))
  ws.on('error', (err) => errors.push(err))
  const opened = new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('close', () => reject(new Error('closed before opening')))
  })
  opened.catch(() => {})
  const closed = new Promise((resolve) => {
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }))
  })
  const client = {
    ws,
    frames,
    errors,
    opened,
    closed,
    get isOpen () { return ws.readyState === WebSocket.OPEN },
    open (timeout = WAIT_MS) {
      return within(opened, { timeout, message: `WebSocket ${url} to open` })
    },
    /** Sends a binary frame (hex string, array or Buffer) or, with {text: true}, a text frame. */
    send (data, { text = false } = {}) {
      return new Promise((resolve, reject) => {
        const payload = text ? String(data) : bytes(data)
        ws.send(payload, { binary: !text }, (err) => (err ? reject(err) : resolve()))
      })
    },
    /** Waits for the close and returns {code, reason}. */
    async closeInfo (timeout = WAIT_MS, what = 'the server to close the connection') {
      return within(closed, {
        timeout,
        message: `${what} (${url}; received ${frames.length} frame(s), errors: ${errors.map((e) => e.message).join('; ') || 'none'})`
      })
    },
    /** Resolves with the first received frame matching `predicate`. */
    waitFrame (predicate, timeout = WAIT_MS, what = 'a matching frame') {
      return waitFor(() => frames.find((f) => predicate(f.data)), { timeout, message: what })
    },
    terminate () {
      try { ws.terminate() } catch {}
    }
  }
  return client
}

/**
 * Starts `n` Yjs clients on a session and waits for all of them to sync.
 */
export async function syncedClients (server, sessionId, names) {
  const clients = names.map((name) => yClient(server, sessionId, { name }))
  await Promise.all(clients.map((c) => c.synced()))
  return clients
}

/**
 * Proves the server still works: two fresh Yjs clients on `sessionId` exchange an
 * edit both ways; returns the final text. Cleans up after itself.
 */
export async function assertSessionHealthy (server, sessionId, label = 'health check') {
  const a = yClient(server, sessionId, { name: `${label} A` })
  const b = yClient(server, sessionId, { name: `${label} B` })
  try {
    await Promise.all([a.synced(), b.synced()])
    const tokenA = `[${label}:a:${Math.random().toString(36).slice(2, 8)}]`
    const tokenB = `[${label}:b:${Math.random().toString(36).slice(2, 8)}]`
    a.text.insert(a.text.length, tokenA)
    await waitFor(() => b.text.toString().includes(tokenA), {
      message: () => `${label}: B to receive A's edit ${tokenA}; B has ${JSON.stringify(b.text.toString())}`
    })
    b.text.insert(0, tokenB)
    await waitFor(() => a.text.toString().includes(tokenB), {
      message: () => `${label}: A to receive B's edit ${tokenB}; A has ${JSON.stringify(a.text.toString())}`
    })
    await waitFor(() => a.text.toString() === b.text.toString(), {
      message: () => `${label}: A and B to converge (${JSON.stringify(a.text.toString())} vs ${JSON.stringify(b.text.toString())})`
    })
    return a.text.toString()
  } finally {
    a.destroy()
    b.destroy()
  }
}
