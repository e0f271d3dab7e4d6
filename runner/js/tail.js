// pairpad: JavaScript runner, the bundle's last part: starts the worker. Runs once, when the
// script loads, after evaluate.js's top level (which has taken what the runner needs) and
// before any program: the wasm is compiled from the bytes in this bundle (the worker's CSP
// allows no fetch), the Rust side registers with gloo-worker (which tells the page it is
// ready, through postMessage), then the lockdown removes postMessage and the rest.
{
  const binary = atob(WASM_BASE64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  glue.initSync({ module: bytes });

  glue.start_javascript(evaluator, captured.setTimeout, captured.now, captured.post);
  const left = glue.lockdown();
  if (left.length) glue.refuse(`could not remove: ${left.join(', ')}`);

  // gloo-worker's handler (set by start) takes the bridge's messages, which are bytes. The
  // page posts the run's shared output channel beside the bridge: a SharedArrayBuffer cannot
  // pass through gloo-worker's codec. Anything else is dropped, not fed to the decoder.
  const fromBridge = self.onmessage;
  const isShared = (value) => typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer;
  self.onmessage = (event) => {
    const data = event.data;
    if (data instanceof Uint8Array) apply(fromBridge, self, [event]);
    else if (isShared(data)) glue.attach_channel(data);
  };
}
