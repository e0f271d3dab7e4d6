//! Response headers: security headers on every response (with cross-origin
//! isolation so `SharedArrayBuffer` is available to stop Python runs), the page
//! Content-Security-Policy, and cache lifetimes by kind of asset.

use axum::{
    extract::Request,
    http::{header, HeaderMap, HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};

/// URL prefix of third-party assets copied from npm; their paths carry the
/// package version, so they never change and may be cached for a year.
pub const VENDOR_PREFIX: &str = "/vendor/";
/// URL prefix of the build's own bundle (names not hashed: revalidate).
pub const PKG_PREFIX: &str = "/pkg/";

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
    let mut response = next.run(request).await;
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
        let policy = if path.starts_with(VENDOR_PREFIX) && response.status().is_success() {
            "public, max-age=31536000, immutable"
        } else if path.starts_with(PKG_PREFIX) {
            "no-cache"
        } else {
            "no-store"
        };
        set(response.headers_mut(), header::CACHE_CONTROL, policy);
    }
    response
}
