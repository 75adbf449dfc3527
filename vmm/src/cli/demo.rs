//! `ankh demo`: the OS runs its conformance suite while every server is hot-killed
//! mid-request several times (crashes, broken stacks and hangs in turn) and once
//! while idle; then a recovery report.

use std::error::Error;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ankh_domains::{Policy, SystemDescription};
use ankh_vmm::console::{ConsoleSink, StdoutConsole};
use ankh_vmm::system::injection::{Kind, PlannedKill, When};
use ankh_vmm::system::{self, DomainEnd, SystemOptions};
use ankh_vmm::KvmHost;
use clap::Args;

use super::run_image::resolve_image;
use super::status;
use super::up::{image_exists, BUILTIN_OS};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Recovery policy of every server.
    #[arg(long, value_enum, default_value = "enhanced")]
    policy: super::up::PolicyArg,
    /// The request numbers at which each server is killed (right after delivery); the
    /// kinds go round: crash, corrupt, hang.
    #[arg(long, value_delimiter = ',', default_value = "10,40,90")]
    kill_at: Vec<u64>,
    /// Also crash each server while it is idle, once it has served this many requests
    /// (0: never).
    #[arg(long, default_value_t = 25)]
    idle_kill_after: u64,
}

/// The kinds of the mid-request kills, in turn.
const KINDS: [Kind; 3] = [Kind::Crash, Kind::Corrupt, Kind::Hang];

/// The planned kills of the demo.
fn planned_kills(args: &DemoArgs) -> Vec<PlannedKill> {
    let mut kills = Vec::new();
    for server in SERVERS {
        for (n, &at) in args.kill_at.iter().enumerate() {
            let kind = KINDS[n % KINDS.len()];
            kills.push(PlannedKill::new(server, at, When::MidRequest, kind));
        }
        if args.idle_kill_after > 0 {
            let at = args.idle_kill_after;
            kills.push(PlannedKill::new(server, at, When::Now, Kind::Crash));
        }
    }
    kills
}

/// The servers the demo kills.
const SERVERS: [&str; 4] = ["ds", "vfs", "mm", "pm"];

/// Keeps the suite's lines (to report how it ended) and prints everything.
#[derive(Clone, Default)]
struct Tee {
    suite: Arc<Mutex<Vec<String>>>,
}

impl ConsoleSink for Tee {
    fn line(&mut self, domain: &str, line: &str) {
        StdoutConsole.line(domain, line);
        if domain == "suite" {
            self.suite.lock().expect("tee lock").push(line.to_owned());
        }
    }
}

pub fn run(args: DemoArgs) -> Result<ExitCode, Box<dyn Error>> {
    let mut description = SystemDescription::from_toml_str(BUILTIN_OS, &image_exists)?;
    let policy: Policy = args.policy.into();
    for spec in &mut description.domains {
        spec.policy = policy;
    }
    let host = KvmHost::open()?;
    let tee = Tee::default();
    let sink = tee.clone();
    let disk = super::up::prepare_disk(&description, None, &["suite".to_owned()])?;
    let options = SystemOptions {
        // Injected hangs are caught by the watchdog: keep it short.
        watchdog_timeout: Duration::from_millis(250),
        root_fs: system::root_fs_with_jobs(&["suite"])?.into(),
        kills: planned_kills(&args),
        disk: disk.as_ref().map(|d| d.path().to_owned()),
        ..SystemOptions::new(Arc::new(move |_| {
            Box::new(sink.clone()) as Box<dyn ConsoleSink>
        }))
    };
    let image_of =
        |name: &str| resolve_image(name).map_err(|e| ankh_vmm::ImageError::Load(e.to_string()));
    let report = system::run_system(&host, &description, &image_of, &options)?;

    println!();
    println!(
        "== ankh demo: recovery report (policy {policy}; each of {SERVERS:?} killed mid-request at requests {:?} ({}), and idle after request {})",
        args.kill_at,
        KINDS.map(|k| k.to_string()).join(", "),
        args.idle_kill_after
    );
    println!(
        "{:<6} {:>8} {:<16} {:<16} {:>10}  window",
        "domain", "request", "fault", "action", "latency"
    );
    for event in &report.recoveries {
        println!(
            "{:<6} {:>8} {:<16} {:<16} {:>7.1} us  {}",
            event.domain_name,
            event.request_id.map_or("-".into(), |r| r.to_string()),
            event.fault,
            event.action.to_string(),
            event.latency.as_secs_f64() * 1e6,
            event.window
        );
    }
    let error_replies = report
        .recoveries
        .iter()
        .filter(|e| e.action.to_string() == "rollback+error")
        .count();
    println!(
        "recoveries: {} ({} error-virtualized requests answered ERESTART, each once)",
        report.recoveries.len(),
        error_replies
    );
    for (id, coverage) in report.coverage.iter() {
        let name = report
            .domains
            .iter()
            .find(|d| d.id == id)
            .map_or("?", |d| d.name.as_str());
        println!(
            "coverage {name:<4} requests finished inside the window: {} of {} ({:.1}%)",
            coverage.open,
            coverage.total(),
            coverage.share_open().unwrap_or(0.0) * 100.0
        );
    }
    let suite = tee.suite.lock().expect("tee lock");
    let result = suite.iter().rev().find(|l| l.ends_with(" failed")).cloned();
    println!("suite: {}", result.as_deref().unwrap_or("did not finish"));
    let survived = report.stop.is_none()
        && SERVERS
            .iter()
            .all(|s| matches!(report.end(s), Some(DomainEnd::Waiting(_))));
    match &report.stop {
        Some(stop) => println!("system: stopped ({stop:?})"),
        None if survived => println!("system: survived, every server still serving"),
        None => println!("system: a server did not survive"),
    }
    Ok(ExitCode::from(if survived {
        status::CLEAN
    } else {
        status::FAULT
    }))
}
