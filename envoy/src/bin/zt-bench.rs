//! `make bench` (and its smoke run in `make test`): see `zt_envoy_tests::bench`.
//!
//! zt-bench [--smoke] [--seconds N] [--rounds N] [--workers 1,2] [--algs rs256,es256,eddsa]
//!          [--variants bare,noop,native-cached,native,zt-jwt,zt-jwt-in-module,native-rbac,zt-authz,
//!                      native-ratelimit,zt-ratelimit]
//!          [--workloads repeated,distinct,invalid] [--routes direct,upstream] [--out FILE]

use std::process::ExitCode;

use zt_envoy_tests::bench::{self, Plan, Target, Variant, Workload};
use zt_envoy_tests::{Alg, workspace_root};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let smoke = args.iter().any(|a| a == "--smoke");
    let plan = Plan {
        seconds: value("--seconds").and_then(|v| v.parse().ok()).unwrap_or(if smoke { 1 } else { 3 }),
        rounds: value("--rounds").and_then(|v| v.parse().ok()).unwrap_or(if smoke { 1 } else { 3 }),
        workers: value("--workers")
            .map(|v| v.split(',').filter_map(|w| w.parse().ok()).collect())
            .unwrap_or_else(|| if smoke { vec![1] } else { vec![1, 2] }),
        algs: value("--algs").map_or_else(
            || if smoke { vec![Alg::Es256] } else { Alg::ALL.to_vec() },
            |v| {
                Alg::ALL
                    .into_iter()
                    .filter(|alg| v.to_lowercase().contains(&format!("{alg:?}").to_lowercase()))
                    .collect()
            },
        ),
        // Listed names, in the canonical order (so tables read the same whatever the order given).
        variants: value("--variants").map_or_else(
            || Variant::ALL.to_vec(),
            |v| Variant::ALL.into_iter().filter(|x| v.split(',').any(|id| id == x.id())).collect(),
        ),
        workloads: value("--workloads").map_or_else(
            || Workload::ALL.to_vec(),
            |v| Workload::ALL.into_iter().filter(|x| v.split(',').any(|id| id == x.id())).collect(),
        ),
        targets: value("--routes").map_or_else(
            || Target::ALL.to_vec(),
            |v| Target::ALL.into_iter().filter(|x| v.split(',').any(|id| id == x.id())).collect(),
        ),
        connections: 16,
        pool: if smoke { 1100 } else { 4000 },
    };
    let out = value("--out").map_or_else(
        || workspace_root().join(if smoke { "target/bench/smoke.md" } else { "BENCHMARKS.md" }),
        Into::into,
    );
    let started = std::time::Instant::now();
    let outcome = match bench::run(&plan, |step| eprintln!("zt-bench: {step}")) {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("zt-bench: {error}");
            return ExitCode::FAILURE;
        }
    };
    let chart = out.with_extension("svg");
    let report = bench::report_document(&plan, &outcome, &chart, started.elapsed(), smoke);
    if let Err(error) =
        bench::write(&out, &report).and_then(|()| bench::write(&chart, &bench::svg_chart(&outcome.rows)))
    {
        eprintln!("zt-bench: {error}");
        return ExitCode::FAILURE;
    }
    println!("{}{}", bench::markdown(&outcome.rows), bench::startup_table(&outcome.startups));
    eprintln!("zt-bench: wrote {} and {}", out.display(), chart.display());
    ExitCode::SUCCESS
}
