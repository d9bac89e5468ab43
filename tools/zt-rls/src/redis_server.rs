//! A throwaway `redis-server` for tests: loopback only, a free port, no persistence, its own
//! temporary directory, killed and reaped on drop. It never touches a Redis it did not start.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::Error;

/// How long `redis-server` gets to answer PING (it takes a few milliseconds when idle).
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports are picked by binding port 0 and releasing it: another process may take the port in
/// between, so a start that fails is retried on a new port this many times in all.
const START_ATTEMPTS: u32 = 3;
const POLL_INTERVAL: Duration = Duration::from_millis(20);
const LOG_TAIL_BYTES: usize = 2_000;

/// Makes directory names unique within this process (the process id makes them unique across).
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// A running `redis-server`, stopped (SIGKILL, then reaped) and its directory removed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts `redis-server` on a free 127.0.0.1 port (`--save "" --appendonly no`) and waits
    /// until it answers PING, at most 10 s per attempt.
    pub fn start() -> Result<Self, Error> {
        let mut attempt = 1;
        loop {
            match Self::start_once() {
                Err(Error::RedisNotReady { .. }) if attempt < START_ATTEMPTS => attempt += 1,
                started => return started,
            }
        }
    }

    /// `redis://127.0.0.1:PORT`, as `--redis` and [`crate::RlsServer::start`] take it.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn start_once() -> Result<Self, Error> {
        let port = free_port().map_err(|e| not_ready(0, format!("no free port: {e}"), String::new()))?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("zt-rls-redis-{}-{id}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| not_ready(port, format!("create {}: {e}", dir.display()), String::new()))?;
        let log_path = dir.join("redis.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| not_ready(port, format!("create {}: {e}", log_path.display()), String::new()))?;
        let log_err = log.try_clone().map_err(|e| not_ready(port, format!("log file: {e}"), String::new()))?;

        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--protected-mode", "yes"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(if e.kind() == std::io::ErrorKind::NotFound {
                    Error::RedisNotInstalled
                } else {
                    not_ready(port, format!("spawn redis-server: {e}"), String::new())
                });
            }
        };
        // From here on, Drop kills the child and removes the directory, whatever happens next.
        let mut server = Self { child, port, dir };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(not_ready(self.port, format!("exited at start ({status})"), self.log_tail()));
            }
            if answers_ping(self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let detail = format!("no PONG within {} s", READY_TIMEOUT.as_secs());
                return Err(not_ready(self.port, detail, self.log_tail()));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read(self.dir.join("redis.log")).unwrap_or_default();
        let start = text.len().saturating_sub(LOG_TAIL_BYTES);
        String::from_utf8_lossy(text.get(start..).unwrap_or_default()).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn not_ready(port: u16, detail: String, log: String) -> Error {
    Error::RedisNotReady { port, detail, log }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// One inline `PING` (Redis accepts commands as plain lines), bounded by short timeouts.
fn answers_ping(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let timeouts = stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_millis(500))));
    if timeouts.is_err() || stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0_u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}
