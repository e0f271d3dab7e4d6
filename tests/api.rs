//! The REST API against a real server: every endpoint and every error it promises.

mod common;

use common::{client, create_session, metrics_text, TestServer};
use serde_json::Value;
use std::time::Duration;

async fn json(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

fn is_v4_uuid(text: &str) -> bool {
    text.len() == 36
        && text.as_bytes()[14] == b'4'
        && text.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test]
async fn create_returns_the_new_session_and_its_share_link() {
    let server = TestServer::start(|_| {}).await;
    let response = client()
        .post(server.url("/api/sessions/create"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body = json(response).await;
    let id = body["id"].as_str().unwrap();
    assert!(is_v4_uuid(id), "{id}");
    assert_eq!(body["url"], format!("http://{}/s/{id}", server.addr));
    assert_eq!(body["language"], "javascript");
    let created = body["createdAt"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");

    let python = client()
        .post(server.url("/api/sessions/create"))
        .json(&serde_json::json!({"language": "python"}))
        .send()
        .await
        .unwrap();
    assert_eq!(python.status(), 201);
    assert_eq!(json(python).await["language"], "python");
}

#[tokio::test]
async fn create_rejects_bad_bodies_with_json_errors() {
    let server = TestServer::start(|_| {}).await;
    let cases: [(&str, u16); 4] = [
        ("{not json", 400),
        (r#"{"language":"cobol"}"#, 400),
        (r#"{"language":42}"#, 400),
        (r#"{"language":"python","admin":true}"#, 400),
    ];
    for (body, status) in cases {
        let response = client()
            .post(server.url("/api/sessions/create"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "body {body}");
        let error = json(response).await;
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{error}"
        );
    }
    let huge = format!(r#"{{"language":"{}"}}"#, "x".repeat(64 * 1024));
    let response = client()
        .post(server.url("/api/sessions/create"))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert!(json(response).await["error"].is_string());
}

#[tokio::test]
async fn get_reports_a_session_and_refuses_unknown_or_malformed_ids() {
    let server = TestServer::start(|_| {}).await;
    let id = create_session(&server, Some("python")).await;
    let response = client()
        .get(server.url(&format!("/api/sessions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    assert_eq!(body["id"], id);
    assert_eq!(body["language"], "python");
    assert_eq!(body["users"], 0);
    assert!(body["createdAt"].is_string());
    assert!(body["lastActivity"].is_string());

    let unknown = client()
        .get(server.url(&format!("/api/sessions/{}", uuid_v4())))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(json(unknown).await["error"]
        .as_str()
        .unwrap()
        .contains("not found"));

    for malformed in ["nope", "123", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"] {
        let response = client()
            .get(server.url(&format!("/api/sessions/{malformed}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{malformed}");
        assert!(json(response).await["error"].is_string());
    }

    let nowhere = client()
        .get(server.url("/api/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), 404);
    assert!(json(nowhere).await["error"].is_string());
}

fn uuid_v4() -> String {
    // Random enough for "unknown": built from the clock, shaped as a v4 UUID.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let hex = format!("{:032x}", nanos ^ 0x5a5a_5a5a_5a5a_5a5a_5a5a_5a5a_5a5a_5a5a);
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

#[tokio::test]
async fn health_and_metrics_report_the_server() {
    let server = TestServer::start(|_| {}).await;
    create_session(&server, None).await;
    create_session(&server, None).await;
    let health = client()
        .get(server.url("/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let body = json(health).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptimeSeconds"].is_u64());
    assert_eq!(body["sessions"], 2);
    assert_eq!(body["connections"], 0);

    let metrics = client().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("pairpad_sessions_created_total 2\n"),
        "{text}"
    );
    assert!(text.contains("pairpad_stored_sessions 2\n"), "{text}");
    assert!(text.contains("pairpad_connections 0\n"), "{text}");
    assert!(
        text.contains("pairpad_http_responses_total{status=\"201\"} 2\n"),
        "{text}"
    );
}

#[tokio::test]
async fn session_creation_is_rate_limited_per_ip() {
    let server = TestServer::start(|config| config.create_limit = 3).await;
    for _ in 0..3 {
        create_session(&server, None).await;
    }
    let response = client()
        .post(server.url("/api/sessions/create"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(json(response).await["error"]
        .as_str()
        .unwrap()
        .contains("try again"));
    // Lookups are not limited.
    let health = client()
        .get(server.url("/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(json(health).await["sessions"], 3);
}

#[tokio::test]
async fn inactive_sessions_expire_and_are_deleted() {
    let server = TestServer::start(|config| {
        config.session_ttl_secs = 1;
        config.expiry_interval_secs = 1;
    })
    .await;
    let id = create_session(&server, None).await;
    let found = client()
        .get(server.url(&format!("/api/sessions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(found.status(), 200);
    // Poll (bounded) until the expiry task has deleted it.
    let mut deleted = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let health = json(
            client()
                .get(server.url("/api/health"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        if health["sessions"] == 0 {
            deleted = true;
            break;
        }
    }
    assert!(deleted, "the expired session was never deleted");
    let gone = client()
        .get(server.url(&format!("/api/sessions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let metrics = metrics_text(&server).await;
    assert!(
        metrics.contains("pairpad_sessions_expired_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let id = create_session(&first, Some("python")).await;
    first.shutdown().await.unwrap();
    let second = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let response = client()
        .get(second.url(&format!("/api/sessions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["language"], "python");
}
