//! `zt-rls --limits FILE [--redis URL] [--listen ADDRESS]`: the test rate-limit service as a
//! process. Prints exactly one line to stdout, `listening on 127.0.0.1:PORT`, once it serves (so a
//! test can read the port when `--listen` has port 0); logs go to stderr (level from `ZT_RLS_LOG`:
//! error, warn, info (default), debug, trace). Stops on SIGTERM or SIGINT, exit status 0.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};
use tracing::level_filters::LevelFilter;

const USAGE: &str = "usage: zt-rls --limits FILE [--redis redis://HOST:PORT] [--listen 127.0.0.1:PORT]

  --limits FILE     Limitador limits file (YAML list of limits; README.md)
  --redis URL       keep counters in Redis (shared between instances); default: in memory
  --listen ADDRESS  where to serve gRPC; default 127.0.0.1:0 (a free port, printed on stdout)";

struct Args {
    limits: String,
    redis: Option<String>,
    listen: SocketAddr,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut limits, mut redis) = (None, None);
    let mut listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--limits" => limits = Some(value()?),
            "--redis" => redis = Some(value()?),
            "--listen" => {
                let text = value()?;
                listen = text.parse().map_err(|e| format!("--listen {text}: {e} (want IP:PORT)"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let limits = limits.ok_or("--limits FILE is required")?;
    Ok(Args { limits, redis, listen })
}

fn log_level() -> LevelFilter {
    match std::env::var("ZT_RLS_LOG").unwrap_or_default().to_ascii_lowercase().as_str() {
        "error" => LevelFilter::ERROR,
        "warn" => LevelFilter::WARN,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        "off" => LevelFilter::OFF,
        _ => LevelFilter::INFO,
    }
}

/// Completes on the first SIGTERM or SIGINT.
async fn stop_signal(mut terminate: tokio::signal::unix::Signal, mut interrupt: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
        _ = interrupt.recv() => tracing::info!("SIGINT: stopping"),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(log_level()).init();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            if message.is_empty() {
                let _ = writeln!(std::io::stdout(), "{USAGE}");
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(std::io::stderr(), "zt-rls: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !args.listen.ip().is_loopback() {
        tracing::warn!("listening on {}, not loopback: this test service has no authentication", args.listen);
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "zt-rls: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), zt_rls::Error> {
    let yaml = std::fs::read_to_string(&args.limits)
        .map_err(|source| zt_rls::Error::LimitsUnreadable { path: args.limits.clone(), source })?;
    let runtime = zt_rls::cli::runtime()?;
    runtime.block_on(async {
        // Installed before the port is printed, so a signal sent right after it is not lost.
        let terminate = signal(SignalKind::terminate()).map_err(zt_rls::Error::Runtime)?;
        let interrupt = signal(SignalKind::interrupt()).map_err(zt_rls::Error::Runtime)?;
        let on_listening = |address: SocketAddr| {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "listening on {address}");
            let _ = stdout.flush();
            tracing::info!("serving {} on {address}", zt_rls::SHOULD_RATE_LIMIT_PATH);
        };
        let storage = args.redis.as_deref().map_or_else(|| "memory".to_owned(), zt_rls::cli::redact);
        tracing::info!("limits from {}, counters in {storage}", args.limits);
        zt_rls::cli::run(&yaml, args.redis.as_deref(), args.listen, on_listening, stop_signal(terminate, interrupt))
            .await
    })
}
