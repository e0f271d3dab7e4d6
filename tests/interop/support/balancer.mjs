// A plain TCP load balancer for cluster tests: each new connection goes to the
// next backend in turn (no sticky sessions), skipping backends that refuse
// connections (an instance that was killed). Bytes are copied both ways.

import net from 'node:net'

/**
 * Starts a balancer over `ports` (127.0.0.1). Returns
 * `{ port, url, wsBase, close() }`, shaped like a server for the test clients.
 */
export async function startBalancer (ports) {
  let next = 0
  const sockets = new Set()
  const connectTo = (port) => new Promise((resolve) => {
    const upstream = net.connect(port, '127.0.0.1')
    upstream.once('connect', () => resolve(upstream))
    upstream.once('error', () => resolve(null))
  })
  const server = net.createServer(async (client) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    client.on('error', () => {})
    client.pause()
    for (let tried = 0; tried < ports.length; tried++) {
      const port = ports[next++ % ports.length]
      const upstream = await connectTo(port)
      if (!upstream) continue
      sockets.add(upstream)
      upstream.on('close', () => { sockets.delete(upstream); client.destroy() })
      upstream.on('error', () => {})
      client.on('close', () => upstream.destroy())
      client.pipe(upstream)
      upstream.pipe(client)
      client.resume()
      return
    }
    client.destroy()
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    wsBase: `ws://127.0.0.1:${port}/ws`,
    async close () {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    }
  }
}
