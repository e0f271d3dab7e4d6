//! The WebSocket sync endpoint against a real server, spoken by a yrs client:
//! sync and relay, persistence across restarts, and bad input closing only the
//! offending connection.

mod common;

use common::{create_session, yclient::Client, TestServer};
use futures_util::{SinkExt, StreamExt};
use pairpad::sync::protocol::{decode_frame, ClientMessage};
use tokio_tungstenite::{connect_async, tungstenite::Message};

#[tokio::test]
async fn the_first_frame_is_the_servers_sync_step1() {
    let server = TestServer::start(|_| {}).await;
    let id = create_session(&server, None).await;
    let (mut socket, _) = connect_async(format!("ws://{}/ws/{id}", server.addr))
        .await
        .unwrap();
    let first = socket.next().await.unwrap().unwrap();
    let messages = decode_frame(&first.into_data()).unwrap();
    assert_eq!(messages.len(), 1, "one message per frame");
    assert!(matches!(messages[0], ClientMessage::SyncStep1(_)));
}

#[tokio::test]
async fn edits_are_relayed_and_late_joiners_get_the_whole_document() {
    let server = TestServer::start(|_| {}).await;
    let id = create_session(&server, Some("python")).await;
    let mut alice = Client::connect(&server, &id).await;
    let mut bob = Client::connect(&server, &id).await;
    alice.insert(0, "print('hi')").await;
    bob.wait_for_code("print('hi')").await;
    bob.insert(0, "# 漢字 😀\n").await;
    alice.wait_for_code("# 漢字 😀\nprint('hi')").await;
    let mut carol = Client::connect(&server, &id).await;
    carol.wait_for_code("# 漢字 😀\nprint('hi')").await;
    assert_eq!(
        carol.doc.language(),
        Some(pairpad::domain::Language::Python)
    );
}

#[tokio::test]
async fn a_client_joining_right_after_edits_gets_them_in_its_first_sync() {
    // The server relays edits at once but applies them to its own copy of the
    // document in batches; a join must see every edit already relayed.
    let server = TestServer::start(|_| {}).await;
    let id = create_session(&server, None).await;
    let mut alice = Client::connect(&server, &id).await;
    let mut observer = Client::connect(&server, &id).await;
    let mut expected = String::new();
    for word in ["one ", "two ", "three "] {
        alice.insert(expected.len() as u32, word).await;
        expected.push_str(word);
    }
    // Relayed, so accepted by the server; the late joiner asks right away.
    observer.wait_for_code(&expected).await;
    let mut late = Client::connect(&server, &id).await;
    late.wait_for_code(&expected).await;
}

#[tokio::test]
async fn documents_survive_a_graceful_restart_and_clients_hear_1001() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let id = create_session(&server, None).await;
    let mut alice = Client::connect(&server, &id).await;
    let mut bob = Client::connect(&server, &id).await;
    alice.insert(0, "let x = 1;").await;
    bob.wait_for_code("let x = 1;").await;
    let shutdown = tokio::spawn(async move {
        server.shutdown().await.unwrap();
    });
    let (code, reason) = alice.closed().await;
    assert_eq!(code, 1001, "{reason}");
    shutdown.await.unwrap();
    let server = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let mut carol = Client::connect(&server, &id).await;
    carol.wait_for_code("let x = 1;").await;
}

#[tokio::test]
async fn unknown_and_malformed_sessions_are_closed_with_a_reason() {
    let server = TestServer::start(|_| {}).await;
    let mut unknown = Client::connect(&server, "3f1e8a52-4b7c-4d2e-9f00-1234567890ab").await;
    assert_eq!(unknown.closed().await.0, 4404);
    let mut malformed = Client::connect(&server, "not-a-session").await;
    let (code, reason) = malformed.closed().await;
    assert_eq!(code, 4400);
    assert!(!reason.is_empty());
}

#[tokio::test]
async fn a_malformed_frame_closes_only_its_own_connection() {
    let server = TestServer::start(|_| {}).await;
    let id = create_session(&server, None).await;
    let mut alice = Client::connect(&server, &id).await;
    let mut bob = Client::connect(&server, &id).await;
    alice.insert(0, "before").await;
    bob.wait_for_code("before").await;

    let mut mallory = Client::connect(&server, &id).await;
    mallory
        .socket
        .send(Message::binary(vec![0u8, 2, 5, 0xff, 0xff]))
        .await
        .unwrap();
    let (code, reason) = mallory.closed().await;
    assert_eq!(code, 1007, "{reason}");

    let mut texter = Client::connect(&server, &id).await;
    texter.socket.send(Message::text("hello")).await.unwrap();
    assert_eq!(texter.closed().await.0, 1003);

    alice.insert(6, " and after").await;
    bob.wait_for_code("before and after").await;
}

#[tokio::test]
async fn updates_past_the_document_limit_are_rejected_and_not_stored() {
    let server = TestServer::start(|config| config.max_document_bytes = 1000).await;
    let id = create_session(&server, None).await;
    let mut alice = Client::connect(&server, &id).await;
    alice.insert(0, "small").await;
    let mut bob = Client::connect(&server, &id).await;
    bob.wait_for_code("small").await;
    alice.insert(5, &"x".repeat(2000)).await;
    let (code, reason) = alice.closed().await;
    assert_eq!(code, 4413, "{reason}");
    let mut carol = Client::connect(&server, &id).await;
    carol.wait_for_code("small").await;
    // Bob never saw the rejected text either: a new edit from him arrives alone.
    bob.insert(5, "!").await;
    carol.wait_for_code("small!").await;
}
