//! One measured run: `wrk` against an Envoy for a fixed time with a fixed connection count, the
//! tokens cycled by a Lua script, and Envoy's CPU time read from `/proc/<pid>/stat` around it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::BedError;

/// What one run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub requests: u64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Responses other than 2xx/3xx (the refusals of an invalid-token workload).
    pub non_2xx: u64,
    /// Envoy's user + system CPU time over the run, per request.
    pub cpu_us_per_request: f64,
}

pub struct LoadSpec<'a> {
    pub port: u16,
    pub envoy_pid: u32,
    pub duration: Duration,
    pub connections: u32,
    /// A Lua script that sets the tokens (see [`write_token_script`]).
    pub script: &'a Path,
}

/// Writes the wrk script that sends `GET <request_path>` with the tokens in turn, one per request.
pub fn write_token_script(path: &Path, tokens: &[String], request_path: &str) -> Result<(), BedError> {
    let mut lua = String::from("local tokens = {\n");
    for token in tokens {
        // Tokens are base64url and dots: safe inside a Lua string literal.
        lua.push_str(&format!("  \"Bearer {token}\",\n"));
    }
    lua.push_str(&format!(
        "}}\nlocal i = 0\nrequest = function()\n  i = i % #tokens + 1\n  \
         return wrk.format(\"GET\", \"{request_path}\", {{ [\"authorization\"] = tokens[i] }})\nend\n",
    ));
    std::fs::write(path, lua).map_err(BedError::io(format!("write {}", path.display())))
}

/// Runs wrk once and measures Envoy's CPU around it.
pub fn run(spec: &LoadSpec<'_>) -> Result<Sample, BedError> {
    let ticks = clock_ticks_per_second()?;
    let before = cpu_ticks(spec.envoy_pid)?;
    let output = Command::new("wrk")
        .args(["-t1", "-c", &spec.connections.to_string(), "-d", &format!("{}s", spec.duration.as_secs().max(1))])
        .args(["--latency", "--timeout", "5s", "-s"])
        .arg(spec.script)
        .arg(format!("http://127.0.0.1:{}/api", spec.port))
        .output()
        .map_err(BedError::io("run wrk (install it: make wrk)"))?;
    let after = cpu_ticks(spec.envoy_pid)?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(BedError::Http(format!("wrk failed: {}{}", text, String::from_utf8_lossy(&output.stderr))));
    }
    let mut sample = parse_wrk(&text).ok_or_else(|| BedError::Http(format!("cannot read wrk's report:\n{text}")))?;
    if sample.requests > 0 {
        let cpu_seconds = after.saturating_sub(before) as f64 / ticks;
        sample.cpu_us_per_request = cpu_seconds * 1e6 / sample.requests as f64;
    }
    Ok(sample)
}

/// Reads requests, requests/s, p50/p99 and non-2xx counts from wrk's `--latency` report.
pub fn parse_wrk(text: &str) -> Option<Sample> {
    let mut sample = Sample::default();
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("50%"), Some(value), _) => sample.p50_ms = milliseconds(value)?,
            (Some("99%"), Some(value), _) => sample.p99_ms = milliseconds(value)?,
            (Some("Requests/sec:"), Some(value), _) => sample.requests_per_second = value.parse().ok()?,
            (Some(count), Some("requests"), Some("in")) => sample.requests = count.parse().ok()?,
            (Some("Non-2xx"), _, _) => sample.non_2xx = line.rsplit(' ').next()?.parse().ok()?,
            _ => {}
        }
    }
    (sample.requests_per_second > 0.0 || sample.requests == 0).then_some(sample)
}

fn milliseconds(value: &str) -> Option<f64> {
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    match unit {
        "us" => Some(number / 1000.0),
        "ms" => Some(number),
        "s" => Some(number * 1000.0),
        "m" => Some(number * 60_000.0),
        _ => None,
    }
}

/// utime + stime of a process, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> Result<u64, BedError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(BedError::io("read /proc/<pid>/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    match (field(14), field(15)) {
        (Some(user), Some(system)) => Ok(user + system),
        _ => Err(BedError::Http(format!("unreadable /proc/{pid}/stat"))),
    }
}

fn clock_ticks_per_second() -> Result<f64, BedError> {
    let output = Command::new("getconf").arg("CLK_TCK").output().map_err(BedError::io("getconf CLK_TCK"))?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| BedError::Http("getconf CLK_TCK gave no number".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let report = "Running 2s test @ http://127.0.0.1:1/api
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms  300.00us   9.00ms   90.00%
    Req/Sec     6.00k   100.00     6.20k    70.00%
  Latency Distribution
     50%  812.00us
     75%    1.30ms
     90%    1.70ms
     99%    2.50ms
  12001 requests in 2.00s, 3.40MB read
  Non-2xx or 3xx responses: 11999
Requests/sec:   6000.50
Transfer/sec:      1.70MB
";
        let sample = parse_wrk(report).unwrap();
        assert_eq!(sample.requests, 12001);
        assert_eq!(sample.non_2xx, 11999);
        assert!((sample.requests_per_second - 6000.5).abs() < 1e-9);
        assert!((sample.p50_ms - 0.812).abs() < 1e-9);
        assert!((sample.p99_ms - 2.5).abs() < 1e-9);
    }
}
