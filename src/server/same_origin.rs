//! Refusing cross-site requests to endpoints a page on another site could
//! otherwise trigger with a plain form post (creating sessions): the browser's
//! `Sec-Fetch-Site`, else its `Origin`, must say the request came from
//! pairpad's own pages. Requests with neither come from no browser page (curl,
//! scripts) and cannot be forged by another site.

use axum::http::{header, HeaderMap};

/// Whether a browser says the request came from another site's page.
pub fn is_cross_site(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let origin_host = origin.to_str().ok().and_then(authority);
    let own_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.to_ascii_lowercase());
    let public_host = public_url.and_then(authority);
    match origin_host {
        // `Origin: null` (sandboxed frames, file: pages) is never ours.
        None => true,
        Some(origin) => Some(&origin) != own_host.as_ref() && Some(&origin) != public_host.as_ref(),
    }
}

/// The `host[:port]` of an origin or URL, lower-cased.
fn authority(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn other_sites_are_refused_and_own_pages_and_scripts_allowed() {
        let host = ("host", "pad.example:3000");
        assert!(is_cross_site(
            &headers(&[host, ("sec-fetch-site", "cross-site")]),
            None
        ));
        assert!(is_cross_site(
            &headers(&[host, ("sec-fetch-site", "same-site")]),
            None
        ));
        assert!(!is_cross_site(
            &headers(&[host, ("sec-fetch-site", "same-origin")]),
            None
        ));
        assert!(is_cross_site(
            &headers(&[host, ("origin", "http://evil.example")]),
            None
        ));
        assert!(is_cross_site(&headers(&[host, ("origin", "null")]), None));
        assert!(!is_cross_site(
            &headers(&[host, ("origin", "http://pad.example:3000")]),
            None
        ));
        assert!(!is_cross_site(&headers(&[host]), None));
        // Behind a proxy that rewrites Host, the public URL is ours too.
        let proxied = headers(&[("host", "10.0.0.5:3000"), ("origin", "https://pad.example")]);
        assert!(!is_cross_site(&proxied, Some("https://pad.example")));
    }
}
