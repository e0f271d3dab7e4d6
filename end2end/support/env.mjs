// Where the server under test listens. Shared by the config and the tests so
// both agree on the port (PAIRPAD_E2E_PORT overrides the default).

import os from 'node:os';
import path from 'node:path';

export const PORT = Number(process.env.PAIRPAD_E2E_PORT || 3917);
export const HOST = `127.0.0.1:${PORT}`;
export const ORIGIN = `http://${HOST}`;

/// Everything the server prints during a run (serve.sh writes it; the global
/// teardown fails the run if the server panicked).
export const SERVER_LOG =
  process.env.PAIRPAD_E2E_SERVER_LOG_FILE || path.join(os.tmpdir(), `pairpad-e2e-server-${PORT}.log`);

/// Vendored runtime locations (their paths carry the npm versions).
export const MONACO_VS = '/vendor/monaco-editor-0.52.2/min/vs';
export const PYODIDE_DIR = '/vendor/pyodide-314.0.7/';

/// A session id as the server issues it (UUID v4), anchored for URL matching.
export const SESSION_PATH = /^\/s\/([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})$/;
