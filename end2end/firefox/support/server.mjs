// The pairpad release binary for the Firefox suite: an OwnServer (see
// end2end/measure/server.mjs) on a free loopback port with its own data
// directory and `--create-limit 0`; target/release/pairpad and target/site, or
// $PAIRPAD_BIN and $PAIRPAD_SITE_ROOT. `stop('SIGINT')` is a graceful shutdown
// (as Ctrl+C) and `start()` brings the server back on the same port and data.

import { before, after } from 'node:test';
import { OwnServer } from '../../measure/server.mjs';

/**
 * Registers node:test hooks giving the calling test file one server: started
 * before its tests, stopped (SIGINT) after them; the file fails if the server
 * panicked at any point. Returns a holder whose `server` is that server.
 */
export function serverForFile({ extraArgs = [] } = {}) {
  const holder = { server: null };
  before(async () => {
    holder.server = await new OwnServer({ extraArgs }).start();
  });
  after(async () => {
    const server = holder.server;
    if (!server) return;
    await server.stop('SIGINT');
    await server.dispose();
    const panics = server.panics();
    if (panics.length) {
      throw new Error(`pairpad panicked during this file's tests:\n${panics.join('\n')}\n--- log ---\n${server.logText()}`);
    }
  });
  return holder;
}
