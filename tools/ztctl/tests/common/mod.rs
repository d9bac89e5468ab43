//! Shared by the CLI tests: records built by the audit format in filters/zt-audit/README.md, the
//! three forms they appear in, and a runner for the built binary; `registry`, a real OCI
//! registry and skopeo for the image tests.
#![allow(dead_code)]

pub mod registry;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

pub const CHAIN_A: &str = "5f0c1d2e3a4b5c6d7e8f901a2b3c4d5e";
pub const CHAIN_B: &str = "0123456789abcdef0123456789abcdef";

/// Builds one chain: `seq` 0, 1, …; `prev` the SHA-256 of the previous record's exact text, or
/// its HMAC-SHA-256 under the chain key for a keyed chain.
pub struct ChainBuilder {
    chain: &'static str,
    seq: u64,
    prev: String,
    key: Option<zt_core::audit::ChainKey>,
}

impl ChainBuilder {
    pub fn new(chain: &'static str) -> Self {
        Self { chain, seq: 0, prev: "0".repeat(64), key: None }
    }

    /// A keyed chain, as the filter writes it with `chain_key` configured.
    #[allow(dead_code)] // Not every test binary uses it.
    pub fn keyed(chain: &'static str, key: &[u8]) -> Self {
        Self { key: Some(zt_core::audit::ChainKey::from_secret(key).unwrap()), ..Self::new(chain) }
    }

    /// The next record, with these members after `v`, `chain`, `seq`, `prev` (and `prev_alg`).
    pub fn next(&mut self, members: &str) -> Entry {
        let alg = if self.key.is_some() { r#""prev_alg":"hmac-sha256","# } else { "" };
        let text =
            format!(r#"{{"v":1,"chain":"{}","seq":{},"prev":"{}",{alg}{members}}}"#, self.chain, self.seq, self.prev);
        self.prev = match &self.key {
            Some(key) => hex(&key.mac(text.as_bytes())),
            None => hex(&Sha256::digest(text.as_bytes())),
        };
        let entry = Entry { text, record: Some((self.chain, self.seq)) };
        self.seq += 1;
        entry
    }

    /// The checkpoint the filter would send to its collector now.
    #[allow(dead_code)]
    pub fn checkpoint(&self) -> Entry {
        let alg = if self.key.is_some() { "hmac-sha256" } else { "sha256" };
        let text = format!(
            r#"{{"checkpoint":{{"v":1,"chain":"{}","seq":{},"head":"{}","prev_alg":"{alg}","time":"2026-11-23T19:56:40.000Z"}}}}"#,
            self.chain,
            self.seq - 1,
            self.prev
        );
        Entry { text, record: None }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One line of a log: a record (its chain and seq) or an unrelated line.
#[derive(Clone, Debug)]
pub struct Entry {
    pub text: String,
    pub record: Option<(&'static str, u64)>,
}

impl Entry {
    pub fn other(text: &str) -> Self {
        Self { text: text.to_owned(), record: None }
    }
}

/// A request as the audit filter would record it.
pub fn request(sub: &str, method: &str, path: &str, route: Option<&str>, status: u16, outcome: &str) -> String {
    let route = route.map(|r| format!(r#""route":"{r}","#)).unwrap_or_default();
    let identity = match sub {
        "" => String::new(),
        sub => format!(
            r#""identity":{{"provider":"corp","iss":"https://issuer.example","sub":"{sub}","scopes":["orders:read"]}},"#
        ),
    };
    format!(
        r#""time":"2026-11-23T19:56:31.123Z","request_id":"r1","source":{{"address":"127.0.0.1","port":45710}},"authority":"api.example.com","method":"{method}","path":"{path}",{route}"cluster":"backend","status":{status},"duration_ms":2.5,{identity}"outcome":"{outcome}""#
    )
}

/// Two interleaved chains of six records each (A: alice reading orders, the record of seq 2 a
/// 403; B: bob and anonymous health checks), among unrelated Envoy log lines.
pub fn two_chains() -> Vec<Entry> {
    let (mut a, mut b) = (ChainBuilder::new(CHAIN_A), ChainBuilder::new(CHAIN_B));
    let mut log = vec![Entry::other("[2026-11-23 19:56:30.001][1][info][main] [source/server/server.cc:428] starting")];
    for i in 0..6u64 {
        let status = if i == 2 { 403 } else { 200 };
        let outcome = if i == 2 { "deny" } else { "allow" };
        log.push(a.next(&request("alice", "GET", &format!("/orders/{i}?full=1"), Some("orders"), status, outcome)));
        if i % 2 == 0 {
            log.push(Entry::other("[2026-11-23 19:56:31.200][1234][debug][http] [source/common/http/conn_manager_impl.cc:1150] request end"));
        }
        log.push(b.next(&request(if i % 2 == 0 { "bob" } else { "" }, "GET", "/health", None, 200, "allow")));
    }
    log
}

/// Envoy's log line for a record (spec, "Where records appear" 1).
pub fn envoy_line(record: &str) -> String {
    format!(
        "[2026-11-23 19:56:31.123][1234][info][wasm] [source/extensions/common/wasm/context.cc:1192] wasm log zt-audit zt-audit: zt.audit.v1 {record}"
    )
}

/// The log as Envoy writes it.
pub fn as_envoy_log(log: &[Entry]) -> String {
    log.iter().map(|e| if e.record.is_some() { envoy_line(&e.text) } else { e.text.clone() } + "\n").collect()
}

/// The records alone, one per line.
pub fn as_ndjson(log: &[Entry]) -> String {
    records(log).map(|e| e.text.clone() + "\n").collect()
}

/// OTLP/HTTP JSON export requests of `batch` records each, one per line.
pub fn as_otlp(log: &[Entry], batch: usize) -> String {
    let records: Vec<&Entry> = records(log).collect();
    records.chunks(batch).map(|chunk| otlp_request(chunk).to_string() + "\n").collect()
}

pub fn otlp_request(records: &[&Entry]) -> serde_json::Value {
    let log_records: Vec<serde_json::Value> = records
        .iter()
        .map(|e| {
            serde_json::json!({"timeUnixNano": "1795470991123000000", "severityText": "INFO",
                               "body": {"stringValue": e.text}, "attributes": []})
        })
        .collect();
    serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "zt-audit"}}]},
        "scopeLogs": [{"scope": {"name": "zt-audit"}, "logRecords": log_records}]}]})
}

pub fn records(log: &[Entry]) -> impl Iterator<Item = &Entry> {
    log.iter().filter(|e| e.record.is_some())
}

/// 1-based line of a record in the Envoy log form.
pub fn line_of(log: &[Entry], chain: &str, seq: u64) -> usize {
    log.iter().position(|e| e.record == Some((chain_static(chain), seq))).map(|i| i + 1).expect("record in log")
}

fn chain_static(chain: &str) -> &'static str {
    if chain == CHAIN_A { CHAIN_A } else { CHAIN_B }
}

pub fn index_of(log: &[Entry], chain: &str, seq: u64) -> usize {
    line_of(log, chain, seq) - 1
}

/// A fresh directory per test, under Cargo's scratch directory for integration tests.
pub fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ztctl-tests").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_owned()
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the built `ztctl` with these arguments and standard input.
pub fn ztctl(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ztctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A run that does not read standard input closes it early: a broken pipe here is fine.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}
