//! Server-rendered pages and their headers against a real server.

mod common;

use common::{client, create_session, get_text, TestServer};

#[tokio::test]
async fn home_page_offers_to_create_a_session_with_security_headers() {
    let server = TestServer::start(|_| {}).await;
    let response = client().get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self' 'nonce-"), "{csp}");
    assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cross-origin-opener-policy"], "same-origin");
    assert_eq!(headers["cross-origin-embedder-policy"], "require-corp");
    let html = response.text().await.unwrap();
    assert!(html.contains("data-testid=\"create-session\""));
    // The hydration bootstrap carries the nonce the CSP names.
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "bootstrap script lacks the nonce"
    );

    let again = client().get(server.url("/")).send().await.unwrap();
    let other = again.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(csp, other, "every response gets a fresh nonce");
}

#[tokio::test]
async fn session_page_shows_the_share_link_and_language() {
    let server = TestServer::start(|_| {}).await;
    let id = create_session(&server, Some("python")).await;
    let response = client()
        .get(server.url(&format!("/s/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!("value=\"http://{}/s/{id}\"", server.addr)),
        "{html}"
    );
    assert!(html.contains("data-testid=\"share-link\""));
    assert!(html.contains("data-testid=\"copy-link\""));
    assert!(html.contains(">Python<"));
}

#[tokio::test]
async fn pages_with_an_editor_ask_for_monaco_in_their_head_and_others_do_not() {
    use pairpad::interop::editor::MONACO_VS;
    let server = TestServer::start(|_| {}).await;
    let id = create_session(&server, Some("javascript")).await;
    let head_of = |html: String| html.split("</head>").next().unwrap().to_owned();

    for path in [format!("/s/{id}"), format!("/s/{id}/playback")] {
        let head = head_of(get_text(&server, &path).await);
        for (file, kind) in [
            ("loader.js", "script"),
            ("editor/editor.main.js", "script"),
            ("editor/editor.main.css", "style"),
        ] {
            let href = format!("href=\"{MONACO_VS}/{file}\"");
            let link = head
                .split("<link")
                .find(|tag| tag.contains(&href))
                .unwrap_or_else(|| panic!("{path}: no link to {file} in {head}"));
            assert!(link.contains("rel=\"preload\""), "{path}: {link}");
            assert!(link.contains(&format!("as=\"{kind}\"")), "{path}: {link}");
        }
    }
    for path in [
        "/".to_owned(),
        "/s/00000000-0000-4000-8000-000000000000".to_owned(),
    ] {
        let head = head_of(get_text(&server, &path).await);
        assert!(!head.contains(MONACO_VS), "{path} has no editor: {head}");
    }
}

#[tokio::test]
async fn unknown_malformed_and_missing_pages_are_404_with_a_way_out() {
    let server = TestServer::start(|_| {}).await;
    for path in [
        "/s/3f1e8a52-4b7c-4d2e-9f00-1234567890ab".to_owned(),
        "/s/not-a-session".to_owned(),
        "/no/such/page".to_owned(),
    ] {
        let response = client().get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert!(response.headers().contains_key("content-security-policy"));
        let html = response.text().await.unwrap();
        assert!(html.contains("data-testid=\"not-found\""), "{path}: {html}");
        assert!(html.contains("data-testid=\"create-session\""), "{path}");
    }
}

#[tokio::test]
async fn the_create_form_works_without_javascript() {
    let server = TestServer::start(|_| {}).await;
    let response = client()
        .post(server.url("/_sfn/create_session"))
        // What a browser sends when it posts the form before hydration.
        .header("accept", "text/html,application/xhtml+xml")
        .header("referer", server.url("/"))
        .form(&[("language", "python")])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let id = location
        .strip_prefix("/s/")
        .expect("redirects to the session page");
    let session = client()
        .get(server.url(&format!("/api/sessions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 200);
    let body: serde_json::Value = session.json().await.unwrap();
    assert_eq!(body["language"], "python");
}

#[tokio::test]
async fn the_create_form_is_rate_limited_too() {
    let server = TestServer::start(|config| config.create_limit = 1).await;
    create_session(&server, None).await;
    let response = client()
        .post(server.url("/_sfn/create_session"))
        .header("accept", "application/json")
        .form(&[("language", "javascript")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
}

/// A site whose bundle has `pairpad.js` and a `pairpad.js.br` holding
/// `marker`, the variant an hour older than the file or the file an hour older
/// than the variant.
fn site_with_precompressed_bundle(marker: &str, variant_is_older: bool) -> tempfile::TempDir {
    use std::time::{Duration, SystemTime};
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("pairpad.js"), "export const x = 1;\n".repeat(200)).unwrap();
    std::fs::write(pkg.join("pairpad.js.br"), marker).unwrap();
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let aged = if variant_is_older {
        "pairpad.js.br"
    } else {
        "pairpad.js"
    };
    std::fs::File::options()
        .write(true)
        .open(pkg.join(aged))
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    site
}

#[tokio::test]
async fn the_bundle_goes_out_as_its_precompressed_file_unless_that_is_stale() {
    for (variant_is_older, expect_variant) in [(false, true), (true, false)] {
        let marker = "bytes of the precompressed file";
        let site = site_with_precompressed_bundle(marker, variant_is_older);
        let root = site.path().to_path_buf();
        let server = TestServer::start(move |config| config.site_root = root).await;
        let response = client()
            .get(server.url("/pkg/pairpad.js"))
            .header("accept-encoding", "br")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-encoding"], "br");
        let body = response.bytes().await.unwrap();
        assert_eq!(
            body == marker.as_bytes(),
            expect_variant,
            "variant older than its file: {variant_is_older}; a stale variant must not be \
             sent in place of the rebuilt file"
        );
    }
}

#[tokio::test]
async fn static_files_revalidate_with_304_and_carry_cache_policies() {
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(site.path().join("pkg")).unwrap();
    std::fs::create_dir_all(site.path().join("runner")).unwrap();
    std::fs::create_dir_all(site.path().join("vendor/pyodide-314.0.7")).unwrap();
    for file in ["pyodide.mjs", "memory-snapshot.bin"] {
        std::fs::write(site.path().join("vendor/pyodide-314.0.7").join(file), "x").unwrap();
    }
    std::fs::write(
        site.path().join("pkg/pairpad.js"),
        "export const x = 1;\n".repeat(200),
    )
    .unwrap();
    std::fs::write(
        site.path().join("runner/js-worker.js"),
        "self.onmessage = () => {};",
    )
    .unwrap();
    let root = site.path().to_path_buf();
    let server = TestServer::start(move |config| config.site_root = root).await;

    let first = client()
        .get(server.url("/pkg/pairpad.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "no-cache");
    let modified = first.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_owned();
    let again = client()
        .get(server.url("/pkg/pairpad.js"))
        .header("if-modified-since", &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        304,
        "an unchanged bundle is not downloaded again"
    );

    // Pyodide's files never change under their versioned path; Python's memory
    // snapshot beside them is remade by each build, so it is revalidated.
    for (file, policy) in [
        ("pyodide.mjs", "public, max-age=31536000, immutable"),
        ("memory-snapshot.bin", "no-cache"),
    ] {
        let response = client()
            .get(server.url(&format!("/vendor/pyodide-314.0.7/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{file}");
        assert_eq!(response.headers()["cache-control"], policy, "{file}");
    }

    let worker = client()
        .get(server.url("/runner/js-worker.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(worker.status(), 200);
    let csp = worker.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        csp, "default-src 'none'; script-src 'unsafe-eval'",
        "user code may not connect, nor load any script"
    );
    assert_eq!(
        worker.headers()["cross-origin-embedder-policy"],
        "require-corp"
    );
}
