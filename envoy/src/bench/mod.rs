//! The side-by-side benchmark behind `make bench`: every variant (bare Envoy, native
//! `jwt_authn`, `zt-jwt`) under the same loads, alternated round by round (A B C A B C ...) so
//! that drift of a shared machine hits all alike; medians and ratios go to `BENCHMARKS.md`.

mod load;
mod report;
mod variants;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use load::{Sample, parse_wrk};
pub use report::{Row, document as report_document, markdown, startup_table, svg_chart};
pub use variants::Variant;

use crate::{Alg, BedError, EchoUpstream, Envoy, KeySet, Started, get, tamper, wasm_dir, workspace_root};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// One valid token on every request: what a cache is for.
    Repeated,
    /// A pool of distinct valid tokens larger than any cache: every request a miss.
    Distinct,
    /// One token with a broken signature: every request refused after a verification.
    Invalid,
}

impl Workload {
    pub const ALL: [Workload; 3] = [Workload::Repeated, Workload::Distinct, Workload::Invalid];

    /// The short name `--workloads` takes.
    pub fn id(self) -> &'static str {
        match self {
            Workload::Repeated => "repeated",
            Workload::Distinct => "distinct",
            Workload::Invalid => "invalid",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::Repeated => "repeated valid token",
            Workload::Distinct => "distinct valid tokens",
            Workload::Invalid => "invalid signature",
        }
    }
}

/// Where the measured route sends the request. An upstream's own cost (the echo server's work
/// and Envoy's upstream connection handling) is the same for every variant and dilutes every
/// ratio; a route that answers directly shows the filters' cost alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// `direct_response` from Envoy's router (`/direct`): no upstream.
    Direct,
    /// Proxied to the echo upstream on loopback (`/api`).
    Upstream,
}

impl Target {
    pub const ALL: [Target; 2] = [Target::Direct, Target::Upstream];

    /// The short name `--routes` takes.
    pub fn id(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Upstream => "upstream",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct response",
            Target::Upstream => "echo upstream",
        }
    }

    /// The request path, which the bench configuration routes to this target.
    pub fn path(self) -> &'static str {
        match self {
            Target::Direct => "/direct",
            Target::Upstream => "/api",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub seconds: u64,
    pub rounds: usize,
    pub workers: Vec<u32>,
    pub algs: Vec<Alg>,
    pub variants: Vec<Variant>,
    pub workloads: Vec<Workload>,
    pub targets: Vec<Target>,
    pub connections: u32,
    /// Distinct tokens per algorithm; above both caches' 1024 entries.
    pub pool: usize,
}

/// What a run measured: the load samples, and each Envoy's own start-up time.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub rows: Vec<Row>,
    pub startups: Vec<Startup>,
}

/// `server.initialization_time_ms` as the Envoy of one variant reported it: configuration
/// loading up to the listeners being ready, which for a Wasm filter includes compiling the
/// module and starting its VMs (`on_vm_start`, `on_configure`); and its resident memory after
/// its loads.
#[derive(Clone, Copy, Debug)]
pub struct Startup {
    pub workers: u32,
    pub variant: Variant,
    pub milliseconds: f64,
    pub rss_mib: Option<f64>,
    pub heap: Option<crate::Heap>,
}

/// Runs the plan; every sample is checked (a variant that let an invalid token through or
/// refused a valid one is an error, not a number).
pub fn run(plan: &Plan, mut progress: impl FnMut(&str)) -> Result<Outcome, BedError> {
    let keys = KeySet::generate()?;
    let jwks = keys.jwks();
    let scripts = scripts_dir()?;
    let mut script_paths = Vec::new();
    for &alg in &plan.algs {
        let valid = keys.valid_for(alg, jwt_simple::prelude::Duration::from_hours(1))?;
        for &workload in &plan.workloads {
            let tokens = match workload {
                Workload::Repeated => vec![valid.clone()],
                Workload::Distinct => keys.distinct(alg, plan.pool)?,
                Workload::Invalid => vec![tamper(&valid)?],
            };
            for &target in &plan.targets {
                let path = scripts.join(format!("{alg:?}-{workload:?}-{}.lua", target.id()).to_lowercase());
                load::write_token_script(&path, &tokens, target.path())?;
                script_paths.push((alg, workload, target, path));
            }
        }
    }
    let upstream = EchoUpstream::start()?;
    let mut rows: Vec<Row> = Vec::new();
    let mut startups = Vec::new();
    for &workers in &plan.workers {
        let mut envoys = Vec::new();
        for &variant in &plan.variants {
            let config = variant.config(&jwks, upstream.port(), &wasm_dir())?;
            match Envoy::start(&config, workers)? {
                Started::Ready(envoy) => envoys.push((variant, envoy)),
                Started::Exited { log, .. } => {
                    return Err(BedError::Http(format!("{}: Envoy exited:\n{log}", variant.name())));
                }
            }
        }
        for (_, envoy) in &envoys {
            // Warm-up: V8 compiles lazily, the upstream connection opens.
            for target in &plan.targets {
                let _ = get(envoy.port(), target.path(), &[], Duration::from_secs(5));
            }
        }
        for round in 0..plan.rounds {
            for (alg, workload, target, script) in &script_paths {
                for (variant, envoy) in &envoys {
                    progress(&format!(
                        "workers {workers}, round {}/{}, {alg:?}, {}, {}, {}",
                        round + 1,
                        plan.rounds,
                        workload.name(),
                        target.name(),
                        variant.name()
                    ));
                    let sample = load::run(&load::LoadSpec {
                        port: envoy.port(),
                        envoy_pid: envoy.pid(),
                        duration: Duration::from_secs(plan.seconds),
                        connections: plan.connections,
                        script,
                    })?;
                    check(*variant, *workload, &sample)?;
                    match rows.iter_mut().find(|r| {
                        r.workers == workers
                            && r.alg == *alg
                            && r.workload == *workload
                            && r.target == *target
                            && r.variant == *variant
                    }) {
                        Some(row) => row.samples.push(sample),
                        None => rows.push(Row {
                            workers,
                            alg: *alg,
                            workload: *workload,
                            target: *target,
                            variant: *variant,
                            samples: vec![sample],
                        }),
                    }
                }
            }
        }
        for (variant, envoy) in &envoys {
            if let Some(milliseconds) = envoy.initialization_ms(Duration::from_secs(6)) {
                let (rss_mib, heap) = (envoy.rss_mib(), envoy.heap());
                startups.push(Startup { workers, variant: *variant, milliseconds, rss_mib, heap });
            }
        }
    }
    Ok(Outcome { rows, startups })
}

/// A variant must answer as it should, or its numbers mean nothing.
fn check(variant: Variant, workload: Workload, sample: &Sample) -> Result<(), BedError> {
    let refused_all = sample.non_2xx == sample.requests;
    let ok = match (variant.verifies(), workload) {
        (_, _) if sample.requests == 0 => false,
        (true, Workload::Invalid) => refused_all,
        _ => sample.non_2xx == 0,
    };
    if ok {
        Ok(())
    } else {
        Err(BedError::Http(format!(
            "{} under {}: {} of {} requests were not 2xx",
            variant.name(),
            workload.name(),
            sample.non_2xx,
            sample.requests
        )))
    }
}

fn scripts_dir() -> Result<PathBuf, BedError> {
    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(BedError::io(format!("create {}", dir.display())))?;
    Ok(dir)
}

/// Where the report of a run goes.
pub fn write(path: &Path, text: &str) -> Result<(), BedError> {
    std::fs::write(path, text).map_err(BedError::io(format!("write {}", path.display())))
}
