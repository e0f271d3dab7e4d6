//! A Redis server of a test's own: Debian's `redis-server` on a unix socket in
//! a temporary directory, AOF on (`appendfsync always`), no TCP port, never one
//! already running. Killed when dropped.
//!
//! Without `redis-server` on the PATH the Redis tests are skipped with a
//! message, except under `CI=true`, where that is a failure (`./x test`
//! installs it).

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// How long a server may take to answer PING after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(10);

pub struct TestRedis {
    child: Child,
    dir: tempfile::TempDir,
}

impl TestRedis {
    /// Starts a server, or returns None (with a message) when `redis-server`
    /// is not installed outside CI.
    pub fn start() -> Option<Self> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let child = Self::spawn(&dir)?;
        let server = Self { child, dir };
        server.wait_until_up();
        Some(server)
    }

    /// `kill -9`, then a new server on the same directory (it reads its AOF).
    pub fn kill_and_restart(&mut self) {
        self.kill();
        self.restart();
    }

    /// Starts the server again on the same directory (after [`Self::kill`]).
    pub fn restart(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        self.child = Self::spawn(&self.dir).expect("redis-server ran a moment ago");
        self.wait_until_up();
    }

    /// `kill -9` (the socket file stays, nothing answers on it).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn spawn(dir: &tempfile::TempDir) -> Option<Child> {
        let spawned = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(dir.path().join("redis.sock"))
            .args(["--unixsocketperm", "700", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir.path())
            .args(["--daemonize", "no", "--logfile"])
            .arg(dir.path().join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "redis-server is not installed (apt-get install -y redis-server)"
                );
                eprintln!(
                    "skipped: redis-server is not installed (apt-get install -y redis-server)"
                );
                return None;
            }
            Err(e) => panic!("redis-server did not start: {e}"),
        };
        Some(child)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// The URL pairpad is given.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let client = redis::Client::open(self.url()).expect("a valid url");
        loop {
            let answered = client
                .get_connection()
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if answered.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING: {:?}\n{}",
                answered.err(),
                std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
