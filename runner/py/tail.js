// pairpad: Python runner, the bundle's last part: starts the worker. Runs once, when the
// script loads, after python.js's top level (which has taken what the runner needs) and
// before anything else: the wasm is compiled from the bytes in this bundle, the Rust side
// registers with gloo-worker (which tells the page it is ready, through postMessage); Pyodide
// loads when the page's Start arrives, and the lockdown follows it (python.js, load()).
{
  const binary = atob(WASM_BASE64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  glue.initSync({ module: bytes });

  glue.start_python(pythonRunner, realSetTimeout, now, post);

  // gloo-worker's handler (set by start_python as onmessage) takes the bridge's messages,
  // which are bytes. It is kept here only, not on the global object, where Python's `js`
  // module could call it. Beside the bridge the page posts a run's shared output channel and,
  // before Start, the interrupt buffer as {interrupt}: a SharedArrayBuffer cannot pass
  // through gloo-worker's codec. Only the page's own messages count (a program can dispatch
  // MessageEvents at this scope); anything else is dropped, not fed to the decoder.
  const fromBridge = G.onmessage;
  G.onmessage = null;
  listen('message', (event) => {
    if (!event.isTrusted) return;
    const data = event.data;
    if (data instanceof Uint8Array) apply(fromBridge, G, [event]);
    else if (isShared(data)) glue.attach_channel(data);
    else if (data !== null && typeof data === 'object' && isShared(data.interrupt)) {
      pythonRunner.attachInterrupt(data.interrupt);
    }
  });
}
