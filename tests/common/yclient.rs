//! A minimal y-websocket client over a yrs document, for integration tests.

use super::TestServer;
use futures_util::{SinkExt, StreamExt};
use pairpad::sync::{
    protocol::{decode_frame, encode_sync_step1, encode_update, ClientMessage},
    SessionDoc,
};
use std::time::Duration;
use tokio_tungstenite::{connect_async, tungstenite::Message, MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A minimal y-websocket client over a yrs document.
pub struct Client {
    pub socket: Socket,
    pub doc: SessionDoc,
}

impl Client {
    pub async fn connect(server: &TestServer, session: &str) -> Self {
        let (socket, _) = connect_async(format!("ws://{}/ws/{session}", server.addr))
            .await
            .unwrap();
        let mut client = Self {
            socket,
            doc: SessionDoc::new(),
        };
        let step1 = encode_sync_step1(&client.doc.state_vector());
        client.socket.send(Message::binary(step1)).await.unwrap();
        client
    }

    /// Asks the server for what this client lacks (a SyncStep1).
    pub async fn request_sync(&mut self) {
        let step1 = encode_sync_step1(&self.doc.state_vector());
        self.socket.send(Message::binary(step1)).await.unwrap();
    }

    /// Reads and handles one frame, if one arrives within `wait`.
    pub async fn read_one(&mut self, wait: Duration) {
        if let Ok(Some(Ok(frame))) = tokio::time::timeout(wait, self.socket.next()).await {
            self.handle(frame).await;
        }
    }

    pub async fn send_update(&mut self, update: Vec<u8>) {
        self.socket
            .send(Message::binary(encode_update(&update)))
            .await
            .unwrap();
    }

    pub async fn insert(&mut self, index: u32, text: &str) {
        let update = self.doc.insert_code(index, text);
        self.send_update(update).await;
    }

    /// Reads frames (answering the server's SyncStep1) until the code equals
    /// `expected`, or fails after a bounded wait.
    pub async fn wait_for_code(&mut self, expected: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.doc.code() != expected {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "timed out: code is {:?}, want {expected:?}",
                        self.doc.code()
                    )
                })
                .expect("socket ended")
                .expect("socket error");
            self.handle(frame).await;
        }
    }

    pub async fn handle(&mut self, frame: Message) {
        let Message::Binary(bytes) = frame else {
            return;
        };
        for message in decode_frame(&bytes).unwrap() {
            match message {
                ClientMessage::SyncStep1(remote) => {
                    let reply = pairpad::sync::protocol::encode_sync_step2(&self.doc.diff(&remote));
                    self.socket.send(Message::binary(reply)).await.unwrap();
                }
                ClientMessage::SyncStep2(update) | ClientMessage::Update(update) => {
                    self.doc.apply(&update).unwrap();
                }
                _ => {}
            }
        }
    }

    /// Waits for the server to close the connection; returns code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("timed out waiting for a close");
            match next {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (frame.code.into(), frame.reason.to_string())
                }
                Some(Ok(Message::Close(None))) | None => return (1005, String::new()),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("socket error before close: {e}"),
            }
        }
    }
}
