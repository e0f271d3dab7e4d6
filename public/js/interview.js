// The interview side of the session page, as browser services for the Rust
// page (src/interop/interview.rs): the interviewer key (taken from the link's
// fragment and remembered), JSON requests to the REST API, downloads, and
// watching whether this tab has the user's attention.

const keyName = (id) => `pairpad.key.${id}`;

/**
 * The interviewer key for session `id`, if this browser has one: a `#key=`
 * fragment (the interviewer link) is remembered and taken off the address
 * bar, so it is not shown, bookmarked or shared by accident; and it is set as
 * the cookie the session's WebSockets present.
 */
export function takeKey(id) {
  let key = '';
  const match = /(?:^#|&)key=([A-Za-z0-9_-]+)/.exec(window.location.hash);
  if (match) {
    key = match[1];
    try { window.localStorage.setItem(keyName(id), key); } catch {}
    const clean = window.location.pathname + window.location.search;
    window.history.replaceState(window.history.state, '', clean);
  } else {
    try { key = window.localStorage.getItem(keyName(id)) || ''; } catch {}
  }
  if (key) {
    // The WebSocket presents the key as a cookie sent only to /ws/<id>, so no
    // request line (and no proxy's access log) ever carries it.
    const secure = window.location.protocol === 'https:' ? '; Secure' : '';
    document.cookie = `pairpad_key_${id}=${key}; Path=/ws/${id}; SameSite=Strict${secure}`;
  }
  return key;
}

/**
 * Sends a JSON request (the key, if any, as a Bearer token). Resolves to
 * `[status, responseText]`; a network failure is status 0.
 */
export async function sendJson(method, url, key, body) {
  const headers = { 'Content-Type': 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  try {
    const response = await fetch(url, {
      method,
      headers,
      body: body === '' ? undefined : body,
      credentials: 'same-origin',
    });
    return [response.status, await response.text()];
  } catch (e) {
    return [0, String(e)];
  }
}

/**
 * Fetches a session's history for playback with the key. Resolves to
 * `[status, text, updates]`: for a 200, `text` is the history's JSON without
 * its packed updates, which come decoded from base64 as a Uint8Array; for
 * anything else `text` is the error body and `updates` is empty. A network
 * failure is status 0.
 */
export async function fetchHistory(url, key) {
  try {
    const response = await fetch(url, {
      headers: key ? { Authorization: `Bearer ${key}` } : {},
      credentials: 'same-origin',
      cache: 'no-store',
    });
    if (response.status !== 200) return [response.status, await response.text(), new Uint8Array()];
    const history = await response.json();
    const packed = atob(history.updates || '');
    delete history.updates;
    const updates = new Uint8Array(packed.length);
    for (let i = 0; i < packed.length; i++) updates[i] = packed.charCodeAt(i);
    return [200, JSON.stringify(history), updates];
  } catch (e) {
    return [0, String(e), new Uint8Array()];
  }
}

/** Offers `text` as a file named `name`. */
export function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Calls `onChange(false)` when this tab loses the user's attention (window
 * focus or page visibility) after having had it, and `onChange(true)` when it
 * gets it back: a page opened in the background does not count as coming back.
 */
export function watchAttention(onChange) {
  const attentive = () => document.visibilityState !== 'hidden' && document.hasFocus();
  let focused = attentive();
  let away = false;
  const check = () => {
    const now = attentive();
    if (now === focused) return;
    focused = now;
    if (!now) {
      away = true;
      onChange(false);
    } else if (away) {
      away = false;
      onChange(true);
    }
  };
  window.addEventListener('blur', check);
  window.addEventListener('focus', check);
  document.addEventListener('visibilitychange', check);
}
