//! A real pairpad server on 127.0.0.1:0 for integration tests, with its own
//! temporary data dir, stopped gracefully when the test ends.

#![allow(dead_code)]

pub mod yclient;

use pairpad::{
    server::{config::Config, serve_with},
    storage::{EmbeddedStorage, Storage},
};
use std::{net::SocketAddr, path::PathBuf, sync::Arc};
use tokio::{sync::oneshot, task::JoinHandle};

pub struct TestServer {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts a server with default settings changed by `configure`.
    pub async fn start(configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Self::start_in(dir.path().to_path_buf(), configure).await;
        server._dir = Some(dir);
        server
    }

    /// Starts a server on an existing data dir (to test restarts).
    pub async fn start_in(data_dir: PathBuf, configure: impl FnOnce(&mut Config)) -> Self {
        let storage = EmbeddedStorage::open(&data_dir).unwrap();
        Self::start_with(data_dir, Arc::new(storage), configure).await
    }

    /// Starts a server on `storage` (a wrapper that injects faults, say).
    pub async fn start_with(
        data_dir: PathBuf,
        storage: Arc<dyn Storage>,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config::defaults();
        config.data_dir = data_dir.clone();
        config.site_root = data_dir.join("no-site");
        config.create_limit = 0;
        configure(&mut config);
        let listener = pairpad::server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(config, storage, listener, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            data_dir,
            _dir: None,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops gracefully and waits until the server has flushed and exited.
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap(),
            None => Ok(()),
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A request that hangs fails its test instead of hanging the suite.
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Creates a session through the REST API and returns its id.
pub async fn create_session(server: &TestServer, language: Option<&str>) -> String {
    let request = client().post(server.url("/api/sessions/create"));
    let request = match language {
        Some(language) => request.json(&serde_json::json!({ "language": language })),
        None => request,
    };
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// The body of a GET of `path`, whatever its status.
pub async fn get_text(server: &TestServer, path: &str) -> String {
    client()
        .get(server.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The server's `/metrics` text.
pub async fn metrics_text(server: &TestServer) -> String {
    get_text(server, "/metrics").await
}
