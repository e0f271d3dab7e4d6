//! Response headers: security headers on every response (with cross-origin
//! isolation so `SharedArrayBuffer` is available to stop Python runs), the page
//! Content-Security-Policy, the code-runner workers' stricter policies, and cache
//! lifetimes by kind of asset.

use axum::{
    extract::Request,
    http::{header, HeaderMap, HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};

/// URL prefix of third-party assets copied from npm; their paths carry the
/// package version, so they never change and may be cached for a year (all
/// but [`PYTHON_SNAPSHOT`]).
pub const VENDOR_PREFIX: &str = "/vendor/";
/// URL prefix of the build's own bundle (names not hashed: revalidate).
pub const PKG_PREFIX: &str = "/pkg/";

/// URL prefix of the code-runner worker scripts.
pub const RUNNER_PREFIX: &str = "/runner/";
/// Where Pyodide's core files are served (the npm version pinned in
/// package.json; scripts/vendor.mjs names the directory after it).
pub const PYODIDE_DIR: &str = "/vendor/pyodide-314.0.7/";
/// Python's memory snapshot, made by each build (scripts/python-snapshot.mjs)
/// beside Pyodide's files: what is in it can change while Pyodide's version
/// does not (how the build makes it), and a browser restoring an old one would
/// give its pages another Python than the build's, so it is revalidated.
pub const PYTHON_SNAPSHOT: &str = "/vendor/pyodide-314.0.7/memory-snapshot.bin";

/// The JavaScript runner is one self-contained script (its wasm, the glue and
/// Node's inspect are inside it: scripts/runner-bundle.mjs), so it may load
/// nothing at all and connect nowhere; it may only compile the user's code
/// (and its own wasm, which 'unsafe-eval' covers).
pub const JS_WORKER_CSP: &str = "default-src 'none'; script-src 'unsafe-eval'";

/// Whether `host` (a request's Host) can go into a policy as a source: no
/// spaces, quotes or semicolons that would add directives.
fn safe_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// The Python runner may load and compile Pyodide's own files and nothing else.
/// `host` is the request's Host; a scheme-less source matches http and https.
fn python_worker_csp(host: &str) -> Option<String> {
    safe_host(host).then(|| {
        format!(
            "default-src 'none'; script-src {host}{PYODIDE_DIR} 'wasm-unsafe-eval'; \
             connect-src {host}{PYODIDE_DIR}"
        )
    })
}

/// The page CSP: scripts only from this origin or the page's inline bootstrap
/// (by nonce), WebAssembly compilation allowed, connections only back home.
/// Styles allow inline because Monaco sets style attributes and style elements.
pub fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
         connect-src 'self'; worker-src 'self' blob:; frame-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// For HTML that did not set its own CSP (error pages): nothing may run.
const FALLBACK_CSP: &str = "default-src 'self'; script-src 'none'; object-src 'none'; \
                            base-uri 'none'; frame-ancestors 'none'";

fn set(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    headers.insert(name, HeaderValue::from_static(value));
}

/// Adds security and caching headers to every response.
pub async fn apply(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut response = next.run(request).await;
    // Worker scripts get their own, much tighter policy: user code runs there.
    let worker_csp = match path.as_str() {
        "/runner/js-worker.js" => Some(JS_WORKER_CSP.to_owned()),
        // Without a usable Host: the narrowest policy that still loads Pyodide.
        "/runner/py-worker.js" => Some(python_worker_csp(&host).unwrap_or_else(|| {
            "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'".into()
        })),
        _ => None,
    };
    if let Some(Ok(policy)) = worker_csp.map(|p| HeaderValue::from_str(&p)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    let headers = response.headers_mut();
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Session links are capabilities: never leak them in a Referer.
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(
        headers,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-embedder-policy"),
        "require-corp",
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        set(headers, header::CONTENT_SECURITY_POLICY, FALLBACK_CSP);
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        let policy = if path == PYTHON_SNAPSHOT {
            "no-cache"
        } else if path.starts_with(VENDOR_PREFIX) && response.status().is_success() {
            "public, max-age=31536000, immutable"
        } else if path.starts_with(PKG_PREFIX) || path.starts_with(RUNNER_PREFIX) {
            // Revalidated, not re-downloaded: a JS run starts a fresh worker each time.
            "no-cache"
        } else {
            "no-store"
        };
        set(response.headers_mut(), header::CACHE_CONTROL, policy);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_python_worker_may_only_reach_pyodide() {
        let csp = python_worker_csp("127.0.0.1:3000").unwrap();
        assert!(
            csp.contains("connect-src 127.0.0.1:3000/vendor/pyodide-314.0.7/"),
            "{csp}"
        );
        assert!(!csp.contains("'unsafe-eval'"));
    }

    #[test]
    fn hosts_that_could_inject_directives_are_refused() {
        assert_eq!(python_worker_csp("evil.com; script-src *"), None);
        assert_eq!(python_worker_csp(""), None);
        assert!(python_worker_csp("[::1]:8080").is_some());
    }

    /// The version of npm package `name` that package.json pins.
    fn pinned_version(name: &str) -> &'static str {
        let manifest = include_str!("../../package.json");
        let pinned = manifest
            .lines()
            .find(|line| line.trim_start().starts_with(&format!("\"{name}\"")))
            .unwrap_or_else(|| panic!("{name} is pinned in package.json"));
        pinned.split('"').nth(3).unwrap()
    }

    #[test]
    fn the_pyodide_directory_matches_the_pinned_package() {
        let version = pinned_version("pyodide");
        assert_eq!(PYODIDE_DIR, format!("/vendor/pyodide-{version}/"));
        assert_eq!(
            PYTHON_SNAPSHOT,
            format!("{PYODIDE_DIR}memory-snapshot.bin"),
            "scripts/python-snapshot.mjs writes the snapshot there"
        );
    }
}
