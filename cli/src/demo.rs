//! `ankh demo`: proves that recovery keeps the OS consistent. Phase 1: the
//! conformance suite runs while every server (blk included, under its own policy) is
//! hot-killed mid-request several times (crashes, broken stacks and hangs in turn) and
//! once while idle. Phase 2: after the last recovery, the suite runs again in the same
//! system. The system survived when phase 2 passes every check and every phase-1
//! failure followed an ERESTART (a request the recovery answered with an error);
//! otherwise the verdict says what failed and the exit status is not 0 ([`report`]).
//!
//! Every sentence of the report is computed from what happened: the recovery events
//! and coverage of the system's report, and the suite's lines, each stamped with the
//! count of recoveries done when it was printed (read from a [`ControlHub`], which the
//! VMM updates at every recovery).

mod report;

use std::collections::BTreeMap;
use std::error::Error;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ankh_domains::{Policy, SystemDescription};
use ankh_vmm::console::{ConsoleSink, StdoutConsole};
use ankh_vmm::domain::Substrate;
use ankh_vmm::system::control::ControlHub;
use ankh_vmm::system::injection::{Kind, PlannedKill, When};
use ankh_vmm::system::{self, DomainEnd, SystemOptions, SystemReport, SystemStop};
use ankh_vmm::KvmHost;
use clap::Args;

use self::report::{Evidence, SuiteLine};
use super::run_image::resolve_image;
use super::status;
use super::up::{image_exists, BUILTIN_OS};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Recovery policy of ds, vfs, mm and pm (blk keeps its own, from the system
    /// description).
    #[arg(long, value_enum, default_value = "enhanced")]
    policy: super::up::PolicyArg,
    /// The request numbers at which each server is killed (right after delivery); the
    /// kinds go round: crash, corrupt, hang.
    /// (Each server must get that many requests during phase 1: MM gets about 60 in a
    /// run of the suite.)
    #[arg(long, value_delimiter = ',', default_value = "10,25,40")]
    kill_at: Vec<u64>,
    /// Also crash each server while it is idle, once it has served this many requests
    /// (0: never).
    #[arg(long, default_value_t = 15)]
    idle_kill_after: u64,
    /// What runs each domain: KVM VMs, or Linux processes (the microkernel build).
    #[arg(long, value_enum, default_value_t = Substrate::Kvm)]
    substrate: Substrate,
}

/// The kinds of the mid-request kills, in turn.
const KINDS: [Kind; 3] = [Kind::Crash, Kind::Corrupt, Kind::Hang];

/// The servers whose policy `--policy` sets.
const POLICY_SERVERS: [&str; 4] = ["ds", "vfs", "mm", "pm"];

/// The servers the demo kills: those, and the disk driver.
const SERVERS: [&str; 5] = ["ds", "vfs", "mm", "pm", "blk"];

/// The suite's job: phase 1, then phase 2 (`ankh_apps::suite::runs`).
const SUITE_JOB: &str = "suite --runs 2";

/// The planned kills of the demo.
fn planned_kills(args: &DemoArgs) -> Vec<PlannedKill> {
    let mut kills = Vec::new();
    for server in SERVERS {
        for (n, &at) in args.kill_at.iter().enumerate() {
            let kind = KINDS[n % KINDS.len()];
            kills.push(PlannedKill::new(server, at, When::MidRequest, kind));
        }
        if args.idle_kill_after > 0 {
            // Idle: blocked in receive, no request in hand (`When::Now` could strike
            // in a call the server makes for a request, after its window closed).
            let at = args.idle_kill_after;
            kills.push(PlannedKill::new(server, at, When::Idle, Kind::Crash));
        }
    }
    kills
}

/// Prints every line; keeps the suite's, stamped with the recoveries done so far.
#[derive(Clone)]
struct Tee {
    suite: Arc<Mutex<Vec<SuiteLine>>>,
    hub: Arc<ControlHub>,
}

impl ConsoleSink for Tee {
    fn line(&mut self, domain: &str, line: &str) {
        StdoutConsole.line(domain, line);
        if domain == "suite" {
            let stamped = SuiteLine {
                text: line.to_owned(),
                recoveries_before: recoveries_done(&self.hub),
            };
            self.suite.lock().expect("tee lock").push(stamped);
        }
    }
}

/// Per server domain, its line of the hub's `status` (see `ankh_vmm::system::control`).
fn hub_status(hub: &ControlHub) -> Vec<serde_json::Value> {
    let status: serde_json::Value =
        serde_json::from_str(&hub.answer(r#"{"cmd":"status"}"#)).unwrap_or_default();
    status["domains"].as_array().cloned().unwrap_or_default()
}

/// The recoveries the VMM has done so far, all servers and actions together.
fn recoveries_done(hub: &ControlHub) -> u64 {
    hub_status(hub)
        .iter()
        .filter_map(|domain| domain["recoveries"].as_object())
        .flat_map(|by_action| by_action.values())
        .filter_map(serde_json::Value::as_u64)
        .sum()
}

/// The requests delivered to each server domain so far.
fn requests_delivered(hub: &ControlHub) -> BTreeMap<String, u64> {
    hub_status(hub)
        .iter()
        .filter_map(|domain| {
            let name = domain["name"].as_str()?.to_owned();
            Some((name, domain["requests"].as_u64()?))
        })
        .collect()
}

pub fn run(args: DemoArgs) -> Result<ExitCode, Box<dyn Error>> {
    let mut description = SystemDescription::from_toml_str(BUILTIN_OS, &image_exists)?;
    let policy: Policy = args.policy.into();
    for spec in &mut description.domains {
        if POLICY_SERVERS.contains(&spec.name.as_str()) {
            spec.policy = policy;
        }
    }
    let policies: Vec<String> = description
        .domains
        .iter()
        .filter(|spec| SERVERS.contains(&spec.name.as_str()))
        .map(|spec| format!("{} {}", spec.name, spec.policy))
        .collect();
    let planned = planned_kills(&args);
    let host = KvmHost::open()?;
    let hub = Arc::new(ControlHub::default());
    let tee = Tee {
        suite: Arc::default(),
        hub: Arc::clone(&hub),
    };
    let sink = tee.clone();
    let disk = super::up::prepare_disk(&description, None, &[SUITE_JOB.to_owned()])?;
    let options = SystemOptions {
        // Injected hangs are caught by the watchdog: keep it short.
        watchdog_timeout: Duration::from_millis(250),
        root_fs: system::root_fs_with_jobs(&[SUITE_JOB])?.into(),
        kills: planned.clone(),
        disk: disk.as_ref().map(|d| d.path().to_owned()),
        control: Some(Arc::clone(&hub)),
        substrate: args.substrate,
        ..SystemOptions::new(Arc::new(move |_| {
            Box::new(sink.clone()) as Box<dyn ConsoleSink>
        }))
    };
    let image_of =
        |name: &str| resolve_image(name).map_err(|e| ankh_vmm::ImageError::Load(e.to_string()));
    let report = system::run_system(&host, &description, &image_of, &options)?;

    let suite = tee.suite.lock().expect("tee lock").clone();
    let evidence = Evidence {
        runs: report::runs(&suite),
        recoveries: recoveries_done(&hub),
        stopped: report.stop.as_ref().map(|stop| stop_words(&report, stop)),
        never_killed: SERVERS
            .iter()
            .filter(|s| !report.recoveries.iter().any(|e| e.domain_name == **s))
            .map(|s| (*s).to_owned())
            .collect(),
        not_serving: SERVERS
            .iter()
            .filter(|s| !matches!(report.end(s), Some(DomainEnd::Waiting(_))))
            .map(|s| (*s).to_owned())
            .collect(),
    };
    let shown = Shown {
        policies,
        planned: planned.len(),
        requests: requests_delivered(&hub),
    };
    print_report(&report, &evidence, &shown)?;
    let verdict = report::verdict(&evidence);
    outln!("{}", verdict.line())?;
    Ok(ExitCode::from(match (&verdict.survived, &report.stop) {
        (true, _) => status::CLEAN,
        (false, Some(SystemStop::Halted { .. })) => status::FAULT,
        (false, Some(SystemStop::Shutdown { .. })) => status::SHUTDOWN,
        (false, None) => status::GUEST_ERROR_CODE,
    }))
}

/// The name of domain `id` in the report.
fn name_of(report: &SystemReport, id: u32) -> &str {
    report
        .domains
        .iter()
        .find(|d| d.id == id)
        .map_or("?", |d| d.name.as_str())
}

/// Why the system stopped, in words.
fn stop_words(report: &SystemReport, stop: &SystemStop) -> String {
    match stop {
        SystemStop::Halted { domain, fault } => {
            format!(
                "{} faulted ({fault}) and its policy halts",
                name_of(report, *domain)
            )
        }
        SystemStop::Shutdown { domain, reason } => format!(
            "controlled shutdown after a fault of {} ({reason})",
            name_of(report, *domain)
        ),
    }
}

/// What the report shows besides the system's report and the evidence.
struct Shown {
    /// `<server> <policy>` for each server killed.
    policies: Vec<String>,
    /// Kills planned.
    planned: usize,
    /// Requests delivered to each server.
    requests: BTreeMap<String, u64>,
}

/// The report: the faults that struck, each recovery, per server its recoveries and
/// coverage, then each phase.
fn print_report(report: &SystemReport, evidence: &Evidence, shown: &Shown) -> std::io::Result<()> {
    let mut struck: BTreeMap<&str, u64> = BTreeMap::new();
    for event in &report.recoveries {
        *struck.entry(event.domain_name.as_str()).or_default() += 1;
    }
    let struck_words: Vec<String> = struck
        .iter()
        .map(|(server, n)| format!("{server} {n}"))
        .collect();
    outln!()?;
    outln!(
        "== ankh demo: {} faults struck ({}; from the recovery events), {} kills planned; policies: {}",
        report.recoveries.len(),
        if struck_words.is_empty() {
            "none".to_owned()
        } else {
            struck_words.join(", ")
        },
        shown.planned,
        shown.policies.join(", ")
    )?;
    outln!(
        "{:<6} {:>8} {:<16} {:<16} {:>10}  window",
        "domain",
        "request",
        "fault",
        "action",
        "latency"
    )?;
    for event in &report.recoveries {
        outln!(
            "{:<6} {:>8} {:<16} {:<16} {:>7.1} us  {}",
            event.domain_name,
            event.request_id.map_or("-".into(), |r| r.to_string()),
            event.fault,
            event.action.to_string(),
            event.latency.as_secs_f64() * 1e6,
            event.window
        )?;
    }
    for server in SERVERS {
        let Some(domain) = report.domain(server) else {
            continue;
        };
        let mut actions: BTreeMap<String, u64> = BTreeMap::new();
        for event in report.recoveries.iter().filter(|e| e.domain_name == server) {
            *actions.entry(event.action.to_string()).or_default() += 1;
        }
        let recoveries: u64 = actions.values().sum();
        let actions: Vec<String> = actions.iter().map(|(a, n)| format!("{n} {a}")).collect();
        let coverage = report.coverage.get(domain.id);
        outln!(
            "{server:<4} requests: {}; recoveries: {recoveries}{}; requests finished inside the window: {} of {} ({:.1}%); run time inside the window: {}",
            shown.requests.get(server).copied().unwrap_or(0),
            if actions.is_empty() {
                String::new()
            } else {
                format!(" ({})", actions.join(", "))
            },
            coverage.open,
            coverage.total(),
            coverage.share_open().unwrap_or(0.0) * 100.0,
            coverage
                .run_share_open()
                .map_or("-".to_owned(), |share| format!("{:.1}%", share * 100.0)),
        )?;
    }
    if let Some(before) = evidence.runs.first().map(|run| run.recoveries_at_start) {
        if before > 0 {
            let before = report::count(before, "recovery", "recoveries");
            outln!("before phase 1 (while the system booted): {before}")?;
        }
    }
    for (n, run) in evidence.runs.iter().enumerate() {
        let phase = n + 1;
        let during = match evidence.runs.get(n + 1) {
            Some(next) => next.recoveries_at_start,
            None => evidence.recoveries,
        }
        .saturating_sub(run.recoveries_at_start);
        let during = report::count(during, "recovery", "recoveries");
        if let Some(clean_up) = &run.clean_up {
            outln!("phase {phase}: {clean_up}")?;
        }
        match run.result {
            Some(result) => outln!(
                "phase {phase}: {} passed, {} failed ({} of the failures after ERESTART; {} calls answered ERESTART, made again); {during} during it",
                result.passed, result.failed, result.after_restart, result.restart_answers
            )?,
            None => outln!("phase {phase}: did not finish; {during} during it")?,
        }
    }
    if let Some(stop) = &evidence.stopped {
        outln!("system: stopped: {stop}")?;
    }
    Ok(())
}
