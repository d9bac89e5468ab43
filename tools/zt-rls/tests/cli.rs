//! The `zt-rls` binary: the one stdout line, a call, and a clean exit on SIGTERM. The process is
//! killed on drop whatever happens, and every wait is bounded.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use zt_rls::RlsClient;
use zt_rls::proto::{Code, RateLimitRequest};

type TestResult = Result<(), Box<dyn std::error::Error>>;

// Async tests run on a multi-thread runtime: a server's graceful stop waits for the client to close
// its connection, which a current-thread runtime blocked in the stop could not do.

/// Kills the child (if still running) and reaps it.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            return Err(format!("still running after {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn prints_its_address_serves_and_stops_on_sigterm() -> TestResult {
    let dir = std::env::temp_dir().join(format!("zt-rls-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let limits = dir.join("limits.yaml");
    std::fs::write(&limits, "- {namespace: cli, max_value: 1, seconds: 60, conditions: [], variables: []}\n")?;

    let child = Command::new(env!("CARGO_BIN_EXE_zt-rls"))
        .arg("--limits")
        .arg(&limits)
        .env("ZT_RLS_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut child = Guard(child);
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let first = lines.recv_timeout(Duration::from_secs(10))??;
    let address: SocketAddr = first.strip_prefix("listening on ").ok_or(format!("first line: {first:?}"))?.parse()?;
    assert!(address.ip().is_loopback() && address.port() != 0, "{address}");

    let mut client = RlsClient::connect(address).await?;
    let request = RateLimitRequest::single("cli", &[("generic_key", "x")]);
    assert_eq!(client.should_rate_limit(request.clone()).await?.overall_code, Code::Ok as i32);
    assert_eq!(client.should_rate_limit(request).await?.overall_code, Code::OverLimit as i32);
    drop(client);

    let killed = Command::new("kill").arg("-TERM").arg(child.0.id().to_string()).status()?;
    assert!(killed.success());
    let status = wait_exit(&mut child.0, Duration::from_secs(10))?;
    assert!(status.success(), "exit status {status}");
    assert!(lines.recv_timeout(Duration::from_secs(1)).is_err(), "exactly one line on stdout");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn a_missing_limits_file_is_a_clear_error() -> TestResult {
    let output = Command::new(env!("CARGO_BIN_EXE_zt-rls"))
        .args(["--limits", "/nonexistent/limits.yaml"])
        .stdin(Stdio::null())
        .output()?;
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read the limits file /nonexistent/limits.yaml"), "{stderr}");
    Ok(())
}
