//! A real OCI registry for tests: Debian's `docker-registry` (CNCF distribution 2.x, package
//! `docker-registry`, installed by `make skopeo`) on a free 127.0.0.1 port, no auth, storage in
//! a test's scratch directory, killed when the guard drops. Also `skopeo` (the same target
//! installs it) and a tiny HTTP/1.1 GET, so that a test can read what the registry serves
//! exactly as Envoy's `vm_config.code.remote` would. Used by `tests/oci.rs`; meant for an Envoy
//! test too (`blob_url`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The registry's binary: `ZT_DOCKER_REGISTRY` when set, else Debian's.
pub fn registry_binary() -> PathBuf {
    let path =
        std::env::var_os("ZT_DOCKER_REGISTRY").map_or_else(|| PathBuf::from("/usr/bin/docker-registry"), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found: install the Debian packages docker-registry and skopeo (`make skopeo`)",
        path.display()
    );
    path
}

/// A running registry; killed (and waited for) on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    /// Its configuration, storage and log.
    pub dir: PathBuf,
}

impl Registry {
    /// Starts a registry storing under `dir` and waits (at most 15 s) until `/v2/` answers 200.
    pub fn start(dir: &Path) -> Registry {
        let binary = registry_binary();
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        // A free port can be taken between our probe and the registry's bind: try a few.
        let mut last_log = String::new();
        for attempt in 0..3 {
            let port = free_port();
            let config = dir.join(format!("config-{attempt}.yml"));
            std::fs::write(&config, config_yaml(&dir.join("storage"), port)).unwrap();
            let log = dir.join(format!("registry-{attempt}.log"));
            let log_file = std::fs::File::create(&log).unwrap();
            let child = Command::new(&binary)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let mut registry = Registry { child, port, dir: dir.to_owned() };
            if registry.wait_ready(Duration::from_secs(15)) {
                return registry;
            }
            drop(registry);
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("docker-registry did not answer on /v2/ after 3 attempts; last log:\n{last_log}");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok((200, _, _)) = http_get(self.port, "/v2/", &[]) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// `127.0.0.1:<port>`, the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `docker://127.0.0.1:<port>/<name>:<tag>` for skopeo.
    pub fn reference(&self, name: &str, tag: &str) -> String {
        format!("docker://{}/{name}:{tag}", self.host())
    }

    /// The URL of a blob (distribution spec "Pulling blobs"): for the oci variant's module layer,
    /// the raw module, what Envoy's `vm_config.code.remote.http_uri` can fetch with the module's
    /// SHA-256 as `sha256`.
    pub fn blob_url(&self, name: &str, digest: &str) -> String {
        blob_url(self.port, name, digest)
    }

    /// GET on the registry; `(status, headers, body)`.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
        http_get(self.port, path, headers).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `http://127.0.0.1:<port>/v2/<name>/blobs/sha256:<hex>`; `digest` with or without `sha256:`.
pub fn blob_url(port: u16, name: &str, digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("http://127.0.0.1:{port}/v2/{name}/blobs/sha256:{hex}")
}

fn config_yaml(storage: &Path, port: u16) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n",
        storage.display()
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `skopeo` with these arguments; panics with its output when it fails.
pub fn skopeo(args: &[&str]) -> Output {
    let output = Command::new("skopeo")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run skopeo ({e}): install it with `make skopeo`"));
    assert!(
        output.status.success(),
        "skopeo {}\nstdout: {}\nstderr: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A plain HTTP/1.1 GET on 127.0.0.1 (bounded: 5 s to connect, 30 s to read); `(status,
/// headers, body)`, a chunked body decoded.
pub fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> std::io::Result<(u16, String, Vec<u8>)> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no header end"))?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = response[split + 4..].to_vec();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no status"))?;
    let chunked = head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding: chunked"));
    Ok((status, head, if chunked { dechunk(&body).ok_or_else(|| bad("bad chunked body"))? } else { body }))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
