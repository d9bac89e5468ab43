//! Medians, ratios, the Markdown table and the chart of a benchmark run.

use std::fmt::Write as _;

use super::{Sample, Target, Variant, Workload};
use crate::Alg;

/// Every sample of one variant under one load.
#[derive(Clone, Debug)]
pub struct Row {
    pub workers: u32,
    pub alg: Alg,
    pub workload: Workload,
    pub target: Target,
    pub variant: Variant,
    pub samples: Vec<Sample>,
}

impl Row {
    fn median(&self, field: impl Fn(&Sample) -> f64) -> f64 {
        let mut values: Vec<f64> = self.samples.iter().map(field).collect();
        values.sort_by(f64::total_cmp);
        match values.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => values.get(n / 2).copied().unwrap_or(f64::NAN),
            n => {
                (values.get(n / 2 - 1).copied().unwrap_or(f64::NAN) + values.get(n / 2).copied().unwrap_or(f64::NAN))
                    / 2.0
            }
        }
    }

    pub fn rps(&self) -> f64 {
        self.median(|s| s.requests_per_second)
    }

    pub fn cpu_us(&self) -> f64 {
        self.median(|s| s.cpu_us_per_request)
    }

    pub fn p50(&self) -> f64 {
        self.median(|s| s.p50_ms)
    }

    pub fn p99(&self) -> f64 {
        self.median(|s| s.p99_ms)
    }
}

fn find(rows: &[Row], like: &Row, variant: Variant) -> Option<Row> {
    rows.iter()
        .find(|r| {
            r.workers == like.workers
                && r.alg == like.alg
                && r.workload == like.workload
                && r.target == like.target
                && r.variant == variant
        })
        .cloned()
}

/// One table per worker count: medians, and ratios to bare Envoy and to the native
/// counterpart (throughput: higher is better; CPU per request: lower is better).
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    let mut workers: Vec<u32> = rows.iter().map(|r| r.workers).collect();
    workers.dedup();
    for w in workers {
        let _ = writeln!(out, "\n### Envoy with {w} worker{}\n", if w == 1 { "" } else { "s" });
        out.push_str(
            "| workload | alg | route | variant | req/s | p50 ms | p99 ms | CPU µs/req | CPU µs over bare | req/s ÷ bare | CPU ÷ bare | req/s ÷ native | CPU ÷ native |\n",
        );
        out.push_str("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for row in rows.iter().filter(|r| r.workers == w) {
            let bare = find(rows, row, Variant::Bare);
            let native =
                row.variant.native_counterpart(row.workload == Workload::Distinct).and_then(|n| find(rows, row, n));
            let ratio = |a: f64, b: Option<f64>| b.map_or("—".to_owned(), |b| format!("{:.2}", a / b));
            let over_bare =
                bare.as_ref().map_or("—".to_owned(), |bare| format!("{:+.1}", row.cpu_us() - bare.cpu_us()));
            let _ = writeln!(
                out,
                "| {} | {:?} | {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {over_bare} | {} | {} | {} | {} |",
                row.workload.name(),
                row.alg,
                row.target.name(),
                row.variant.name(),
                row.rps(),
                row.p50(),
                row.p99(),
                row.cpu_us(),
                ratio(row.rps(), bare.as_ref().map(Row::rps)),
                ratio(row.cpu_us(), bare.as_ref().map(Row::cpu_us)),
                ratio(row.rps(), native.as_ref().map(Row::rps)),
                ratio(row.cpu_us(), native.as_ref().map(Row::cpu_us)),
            );
        }
    }
    out
}

/// Horizontal bars of Envoy CPU per request for each load (one worker), one colour per variant.
pub fn svg_chart(rows: &[Row]) -> String {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.workers == rows.first().map_or(1, |f| f.workers)).collect();
    let colours = [
        "#9e9e9e", "#c7c7c7", "#1f77b4", "#6baed6", "#d62728", "#ff9896", "#2ca02c", "#ff7f0e", "#9467bd", "#e377c2",
        "#17becf", "#bcbd22", "#8c564b", "#393b79",
    ];
    let max = rows.iter().map(|r| r.cpu_us()).filter(|v| v.is_finite()).fold(1.0_f64, f64::max);
    let (bar, gap, label, width) = (14.0, 10.0, 330.0, 420.0);
    let mut y = 40.0;
    let mut body = String::new();
    let mut last_group = None;
    for row in &rows {
        let group = (row.workload, row.alg, row.target);
        if last_group != Some(group) {
            y += gap;
            let _ = writeln!(
                body,
                r#"<text x="4" y="{:.0}" font-weight="bold">{} · {:?} · {}</text>"#,
                y + 10.0,
                row.workload.name(),
                row.alg,
                row.target.name()
            );
            y += bar + 2.0;
            last_group = Some(group);
        }
        let index = Variant::ALL.iter().position(|v| *v == row.variant).unwrap_or(0);
        let colour = colours.get(index).copied().unwrap_or("#000");
        let length = (row.cpu_us() / max * width).max(1.0);
        let _ = writeln!(
            body,
            r#"<text x="16" y="{:.0}">{}</text><rect x="{label}" y="{:.0}" width="{length:.1}" height="{bar}" fill="{colour}"/><text x="{:.1}" y="{:.0}">{:.1} µs · {:.0} req/s</text>"#,
            y + 11.0,
            row.variant.name(),
            y,
            label + length + 4.0,
            y + 11.0,
            row.cpu_us(),
            row.rps()
        );
        y += bar + 3.0;
    }
    let height = y + 20.0;
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="4" y="20" font-size="14" font-weight="bold">Envoy CPU time per request, one worker (median; shorter is better), with req/s</text>
{body}</svg>
"#,
        label + width + 170.0
    )
}

/// The whole `BENCHMARKS.md`: how it was produced, on what, then the chart and the tables.
/// Each variant's Envoy-reported start-up, and what it adds to bare Envoy's.
pub fn startup_table(startups: &[super::Startup]) -> String {
    let mut out = String::from(
        "\n## Start-up as Envoy reports it\n\n\
         `server.initialization_time_ms` (start to listeners ready; for a Wasm filter this includes \
         compiling the module and running `on_vm_start` and `on_configure` on the main thread and \
         each worker), one start per variant and worker count; Envoy's resident memory (`VmRSS`) \
         after that variant's loads, and of it Envoy's heap (admin `/memory`): in use, and held free by \
         the allocator (mapped free pages and thread caches, which `VmRSS` counts: much of it is what V8 \
         freed after compiling a module). The rest of `VmRSS` is the binary, V8's code and isolates.\n\n\
         | workers | variant | ms | over bare | RSS MiB | over bare | heap in use MiB | over bare | heap held free MiB |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for startup in startups {
        let bare = startups.iter().find(|s| s.workers == startup.workers && s.variant == Variant::Bare);
        let ms_over =
            bare.map_or(String::from("–"), |bare| format!("{:+.1}", startup.milliseconds - bare.milliseconds));
        let rss = startup.rss_mib.map_or(String::from("–"), |rss| format!("{rss:.1}"));
        let rss_over = match (startup.rss_mib, bare.and_then(|bare| bare.rss_mib)) {
            (Some(rss), Some(bare)) => format!("{:+.1}", rss - bare),
            _ => String::from("–"),
        };
        let in_use = startup.heap.map_or(String::from("–"), |heap| format!("{:.1}", heap.in_use_mib));
        let in_use_over = match (startup.heap, bare.and_then(|bare| bare.heap)) {
            (Some(heap), Some(bare)) => format!("{:+.1}", heap.in_use_mib - bare.in_use_mib),
            _ => String::from("–"),
        };
        let held = startup.heap.map_or(String::from("–"), |heap| format!("{:.1}", heap.held_free_mib));
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {ms_over} | {rss} | {rss_over} | {in_use} | {in_use_over} | {held} |",
            startup.workers,
            startup.variant.name(),
            startup.milliseconds
        );
    }
    out
}

pub fn document(
    plan: &super::Plan,
    outcome: &super::Outcome,
    chart: &std::path::Path,
    elapsed: std::time::Duration,
    smoke: bool,
) -> String {
    // The first non-empty line a program prints (Envoy starts `--version` with an empty line).
    let command_output = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .map(|o| {
                String::from_utf8_lossy(if o.stdout.is_empty() { &o.stderr } else { &o.stdout })
                    .lines()
                    .map(str::trim)
                    .find(|line| !line.is_empty())
                    .unwrap_or("")
                    .to_owned()
            })
            .unwrap_or_else(|_| "unknown".to_owned())
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let envoy = crate::envoy_binary().ok().map_or("unknown".to_owned(), |bin| {
        command_output(&bin.to_string_lossy(), &["--version"]).split("version: ").nth(1).unwrap_or("unknown").to_owned()
    });
    let wrk = command_output("wrk", &["-v"]);
    let chart_name = chart.file_name().map_or("chart.svg".into(), |n| n.to_string_lossy().into_owned());
    format!(
        "# Benchmarks{smoke}\n\n\
         Produced by `make bench` (`cargo run -p zt-envoy-tests --bin zt-bench -- --seconds {seconds} --rounds {rounds}`) \
         in {minutes:.1} min.\n\n\
         - Machine: {cpu}, {cores} cores (shared; numbers move between runs, ratios less so).\n\
         - Envoy: {envoy}; load: {wrk}, 1 thread, {connections} connections, {seconds} s per run, \
           variants alternated round by round ({rounds} rounds), medians reported.\n\
         - Routes: *direct response* (`/direct`, answered by Envoy's router with `direct_response`, so the \
           filters' cost is not diluted by an upstream's) and *echo upstream* (`/api`, the test bed's echo \
           server on loopback). CPU per request is Envoy's user + system time from `/proc/<pid>/stat` over \
           the run, divided by the requests: the steadiest figure here; *CPU µs over bare* is what a \
           variant adds to bare Envoy on the same route in the same run.\n\
         - Tokens: a fresh RSA-2048 / P-256 / Ed25519 key per run; *distinct* cycles {pool} tokens per \
           algorithm, more than either cache holds (1024), so every request is a miss; *invalid* is one \
           token with a tampered payload, refused after a signature check.\n\
         - Variants: bare Envoy (router only); a no-op Wasm filter (test fixture: the floor any Wasm \
           filter pays in Envoy); native `jwt_authn` with `jwt_cache_config` (1024) and without; \
           `zt-jwt` with its defaults (RS*/ES* through Envoy's `verify_signature`, EdDSA in the module, \
           cache 1024); `zt-jwt` with `signature_verifier: in_module` and the cache off; native `jwt_authn` (cache, \
           payload in metadata) + `rbac` on the `sub` claim against `zt-jwt` + `zt-authz` with the same \
           rule; `local_ratelimit` against `zt-ratelimit` (one bucket that never runs dry, headers on); \
           Envoy's file access log with a JSON format of the audit fields against `zt-audit` (records \
           to Envoy's log); the native chain (`jwt_authn` + cache, `rbac`, `local_ratelimit`, the JSON \
           access log) against the suite's (`zt-jwt`, `zt-authz`, `zt-ratelimit`, `zt-audit`). \
           Ratios to native compare `zt-jwt` with `jwt_authn` + cache for repeated and invalid \
           tokens, without cache for distinct ones, the in-module variant with `jwt_authn` without \
           cache, `zt-jwt` + `zt-authz` with `jwt_authn` + `rbac`, and each later pair as listed. The modules are those `make build` \
           ships (after `wasm-opt -O3`).\n\n\
         ![Envoy CPU per request]({chart_name})\n{tables}",
        smoke = if smoke { " (smoke run: numbers not meaningful)" } else { "" },
        seconds = plan.seconds,
        rounds = plan.rounds,
        minutes = elapsed.as_secs_f64() / 60.0,
        connections = plan.connections,
        pool = plan.pool,
        tables = markdown(&outcome.rows) + &startup_table(&outcome.startups),
    )
}
