//! Runs Envoy as a child process under a guard that always kills it on drop (also when a test
//! panics), and shows its log when a test fails.
//!
//! Each instance gets its own directory (config, log, admin address) and runs with
//! `--disable-hot-restart`: no shared memory and no base id, so any number of test Envoys run side
//! by side. Templates rendered with port 0 let the kernel choose the ports; the guard then reads
//! the admin address from `--admin-address-path` and the listener's port from the admin API, so
//! no port is ever guessed (and raced for).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{BedError, envoy_binary, get};

/// How long Envoy may take to become ready; V8 compiles each module at start, and a test machine
/// may be busy compiling in parallel.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `envoy --mode validate` may take.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);
/// Lines of the log shown with a failure.
const LOG_TAIL_LINES: usize = 150;

/// The outcome of a start: a serving Envoy, or the exit of one that refused its configuration.
pub enum Started {
    Ready(Envoy),
    Exited { status: ExitStatus, log: String },
}

pub struct Envoy {
    child: Child,
    dir: PathBuf,
    admin_port: u16,
    listener_port: u16,
}

impl Envoy {
    /// Starts Envoy on a rendered configuration with `concurrency` workers and waits, at most
    /// [`READY_TIMEOUT`], until it is ready or has exited.
    pub fn start(config: &str, concurrency: u32) -> Result<Started, BedError> {
        // The main logger lists every compiled-in extension at info: noise in a failure report.
        Self::start_logging(config, concurrency, &["-l", "info", "--component-log-level", "main:warning"])
    }

    /// The same with Envoy's logging options `log_args` (`-l`, `--component-log-level`,
    /// `--log-format`), as a deployment such as Istio's sets them.
    pub fn start_logging(config: &str, concurrency: u32, log_args: &[&str]) -> Result<Started, BedError> {
        Self::start_with(config, concurrency, log_args, &Surroundings::default())
    }

    /// The same with Envoy's process environment and working directory as `around` says.
    pub fn start_with(
        config: &str,
        concurrency: u32,
        log_args: &[&str],
        around: &Surroundings<'_>,
    ) -> Result<Started, BedError> {
        let dir = instance_dir()?;
        let config_path = write(&dir, "envoy.yaml", config)?;
        let log_path = dir.join("envoy.log");
        let log = File::create(&log_path).map_err(BedError::io("create Envoy log"))?;
        let log_err = log.try_clone().map_err(BedError::io("clone Envoy log"))?;
        let child = Command::new(envoy_binary()?)
            .arg("-c")
            .arg(&config_path)
            .args(["--disable-hot-restart", "--concurrency", &concurrency.to_string()])
            .args(log_args)
            .envs(around.env.iter().copied())
            .current_dir(around.dir.unwrap_or(Path::new(".")))
            .arg("--admin-address-path")
            .arg(dir.join("admin.addr"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(BedError::io("spawn Envoy"))?;
        // From here on the guard owns the child: every early return kills it.
        let mut envoy = Envoy { child, dir, admin_port: 0, listener_port: 0 };
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            if let Some(status) = envoy.child.try_wait().map_err(BedError::io("wait for Envoy"))? {
                return Ok(Started::Exited { status, log: envoy.log() });
            }
            if envoy.admin_port == 0 {
                envoy.admin_port = read_admin_port(&envoy.dir).unwrap_or(0);
            } else if envoy.admin_get("/ready").is_some_and(|r| r.status == 200) {
                let listeners = envoy.admin_get("/listeners?format=json").map(|r| r.body).unwrap_or_default();
                envoy.listener_port = first_listener_port(&listeners)
                    .ok_or_else(|| BedError::Http(format!("no listener port in {listeners}")))?;
                return Ok(Started::Ready(envoy));
            }
            std::thread::sleep(POLL);
        }
        Err(BedError::EnvoyNotReady { waited: READY_TIMEOUT, log: envoy.log() })
    }

    /// Starts Envoy and requires it to become ready.
    pub fn serve(config: &str) -> Result<Envoy, BedError> {
        match Self::start(config, 1)? {
            Started::Ready(envoy) => Ok(envoy),
            Started::Exited { status, log } => Err(BedError::EnvoyExited { status, log: tail(&log) }),
        }
    }

    /// The port of the (first) listener.
    pub fn port(&self) -> u16 {
        self.listener_port
    }

    /// The port of the listener called `name` (for templates with several listeners).
    pub fn listener_port(&self, name: &str) -> Option<u16> {
        let listeners = self.admin_get("/listeners?format=json")?.body;
        let value: serde_json::Value = serde_json::from_str(&listeners).ok()?;
        let listener = value
            .get("listener_statuses")?
            .as_array()?
            .iter()
            .find(|l| l.get("name").and_then(serde_json::Value::as_str) == Some(name))?;
        listener.pointer("/local_address/socket_address/port_value")?.as_u64()?.try_into().ok()
    }

    /// The process id, for reading its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident memory now (`VmRSS` of `/proc/<pid>/status`), in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let kib: f64 =
            status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib / 1024.0)
    }

    /// Envoy's heap as its allocator reports it (admin `/memory`): what is in use, and what it
    /// holds free (free pages still mapped, and per-thread caches), in MiB. The part of `VmRSS`
    /// outside the heap is the binary, V8's code and isolate memory, and stacks.
    pub fn heap(&self) -> Option<Heap> {
        let body = self.admin_get("/memory")?.body;
        let memory: serde_json::Value = serde_json::from_str(&body).ok()?;
        // Envoy prints these 64-bit counters as JSON strings.
        let mib = |field: &str| Some(memory.get(field)?.as_str()?.parse::<f64>().ok()? / (1024.0 * 1024.0));
        Some(Heap { in_use_mib: mib("allocated")?, held_free_mib: mib("pageheap_free")? + mib("total_thread_cache")? })
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// `true` while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops Envoy as an orchestrator does (`SIGTERM`), waiting at most `wait` for it to exit;
    /// answers whether it exited by itself (else it is killed).
    pub fn terminate(&mut self, wait: Duration) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().is_ok_and(|s| s.success());
        let deadline = Instant::now() + wait;
        while sent && Instant::now() < deadline {
            if !self.running() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    /// Everything Envoy has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// The log once `ready` holds for it, or after 5 s. Audit records reach the log a batch at
    /// a time, at most a batch age (200 ms by default) after their request: a test that reads
    /// the record of a request it just sent waits for it here.
    pub fn log_when(&self, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            if ready(&log) || Instant::now() >= deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A counter or gauge from the admin API (Wasm metrics carry the `wasmcustom.` prefix);
    /// `None` when Envoy does not report it.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let answer = self.admin_get(&format!("/stats?filter=^{name}$"))?;
        answer.body.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(": ")?.trim().parse().ok())
    }

    /// The one sample of `server.initialization_time_ms` (start to listeners ready), once a
    /// stats flush (every 5 s by default) has merged it; `None` if it does not show within `wait`.
    pub fn initialization_ms(&self, wait: Duration) -> Option<f64> {
        let deadline = Instant::now() + wait;
        loop {
            let value = self
                .admin_get("/stats?filter=^server.initialization_time_ms$")
                .and_then(|answer| cumulative_median(&answer.body));
            if value.is_some() || Instant::now() >= deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Envoy's statistics as Prometheus scrapes them (admin `/stats/prometheus`).
    pub fn prometheus(&self) -> Option<String> {
        self.admin_get("/stats/prometheus").map(|response| response.body)
    }

    /// Envoy's admin `/config_dump`, as an operator (or anyone reaching the admin port) sees it.
    pub fn config_dump(&self) -> Option<String> {
        self.admin_get("/config_dump").map(|response| response.body)
    }

    fn admin_get(&self, path: &str) -> Option<crate::Response> {
        get(self.admin_port, path, &[], Duration::from_secs(2)).ok()
    }
}

/// Envoy's heap ([`Envoy::heap`]).
#[derive(Debug, Clone, Copy)]
pub struct Heap {
    pub in_use_mib: f64,
    pub held_free_mib: f64,
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // The test harness shows this only for the failed test.
            eprintln!("--- Envoy log ({}) ---\n{}", self.dir.display(), tail(&self.log()));
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The cumulative median of a histogram line of `/stats`: `name: P0(nan,4) P25(nan,4.1) P50(nan,4.2) ...`.
fn cumulative_median(stats: &str) -> Option<f64> {
    let after = stats.split("P50(").nth(1)?;
    after.split(')').next()?.split(',').nth(1)?.trim().parse().ok()
}

/// What Envoy starts with besides its configuration: variables in its process environment (what
/// a Kubernetes Secret mapped to an environment variable of the proxy's container gives it), and
/// the directory it starts in (relative paths in the configuration resolve from there; default
/// the test's own).
#[derive(Debug, Default)]
pub struct Surroundings<'a> {
    pub env: &'a [(&'a str, &'a str)],
    pub dir: Option<&'a Path>,
}

/// `envoy --mode validate` on a rendered configuration: its exit status and output.
pub fn validate(config: &str) -> Result<(ExitStatus, String), BedError> {
    validate_with(config, &Surroundings::default())
}

/// The same with Envoy's environment and working directory as `around` says.
pub fn validate_with(config: &str, around: &Surroundings<'_>) -> Result<(ExitStatus, String), BedError> {
    let dir = instance_dir()?;
    let config_path = write(&dir, "envoy.yaml", config)?;
    let log_path = dir.join("validate.log");
    let log = File::create(&log_path).map_err(BedError::io("create validate log"))?;
    let log_err = log.try_clone().map_err(BedError::io("clone validate log"))?;
    let mut child = Command::new(envoy_binary()?)
        .args(["--mode", "validate", "--disable-hot-restart", "-l", "warn", "-c"])
        .arg(&config_path)
        .envs(around.env.iter().copied())
        .current_dir(around.dir.unwrap_or(Path::new(".")))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(BedError::io("spawn envoy --mode validate"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(BedError::io("wait for envoy --mode validate"))? {
            break status;
        }
        if started.elapsed() > VALIDATE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(BedError::EnvoyNotReady { waited: VALIDATE_TIMEOUT, log });
        }
        std::thread::sleep(POLL);
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    Ok((status, output))
}

/// A fresh directory per instance: tests in one process and concurrent test processes never share one.
fn instance_dir() -> Result<PathBuf, BedError> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("zt-envoy-tests/{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(BedError::io(format!("create {}", dir.display())))?;
    Ok(dir)
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf, BedError> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(BedError::io(format!("write {}", path.display())))?;
    Ok(path)
}

/// `--admin-address-path` holds `127.0.0.1:PORT` once the admin listener is bound.
fn read_admin_port(dir: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(dir.join("admin.addr")).ok()?;
    text.trim().rsplit_once(':')?.1.parse().ok().filter(|port| *port != 0)
}

/// The bound port of the first listener in the admin's `/listeners?format=json`.
fn first_listener_port(json: &str) -> Option<u16> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let port = value.get("listener_statuses")?.get(0)?.pointer("/local_address/socket_address/port_value")?;
    port.as_u64()?.try_into().ok()
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines.get(lines.len().saturating_sub(LOG_TAIL_LINES)..).unwrap_or_default().join("\n")
}
