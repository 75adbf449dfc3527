//! Running one experiment of a campaign in this process: the built-in OS on a fresh
//! temporary disk, on either substrate (on kvm the server under debug runs in kernel
//! mode: guest debugging needs it on these hosts), init running the suite, one fault
//! armed; then its classification. Also the golden run and the profile run.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ankh_domains::{Mode, Policy, Role, SystemDescription};
use serde::{Deserialize, Serialize};

use super::plan::{CampaignProfile, Experiment, Site};
use crate::console::ConsoleSink;
use crate::disk_image::DiskImage;
use crate::domain::debug::{DebugPlan, GuestDebug};
use crate::domain::Substrate;
use crate::image::{GuestImage, ImageError};
use crate::system::{self, DomainEnd, SystemOptions, SystemReport, SystemStop};
use crate::KvmHost;

/// The OS the campaigns boot.
const OS: &str = include_str!("../../../systems/os.toml");

/// The servers a campaign may inject into.
pub const SERVERS: [&str; 5] = ["ds", "vfs", "mm", "pm", "blk"];

/// The servers whose policy a campaign sets (blk keeps its own: stateless).
const POLICY_SERVERS: [&str; 4] = ["ds", "vfs", "mm", "pm"];

/// The workload: init runs the conformance suite once.
const SUITE_JOB: &str = "suite";

/// How a run ended, in OSIRIS's order of precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The suite finished and every check passed.
    Pass,
    /// The suite finished with failed checks.
    Fail,
    /// A controlled shutdown (no consistent recovery existed).
    Shutdown,
    /// The system halted, the VMM failed, or the suite did not finish.
    Crash,
    /// The run did not end before its deadline.
    Timeout,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 5] = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Shutdown,
        Outcome::Crash,
        Outcome::Timeout,
    ];

    /// Its name in results and reports.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Shutdown => "shutdown",
            Outcome::Crash => "crash",
            Outcome::Timeout => "timeout",
        }
    }
}

/// One recovery of a run, as the system's events give it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryRecord {
    /// The server.
    pub domain: String,
    /// Its fault.
    pub fault: String,
    /// What was done.
    pub action: String,
    /// Its window when the fault was detected.
    pub window: String,
}

/// What one experiment gave: everything to replay it, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentResult {
    /// The experiment (replayable as is).
    pub experiment: Experiment,
    /// How the run ended.
    pub outcome: Outcome,
    /// The fault fired (false: its site was not reached `hit` times: "not activated").
    pub activated: bool,
    /// What the fault did, as the VMM applied it.
    pub fired: Option<String>,
    /// Executions of the site seen.
    pub hits: u64,
    /// Every recovery, in order.
    pub recoveries: Vec<RecoveryRecord>,
    /// The window of the target server when its first fault was detected after the
    /// injection (from its first recovery event; `None`: no recovery of it).
    pub window_at_detection: Option<String>,
    /// Checks passed and failed (`None`: the suite did not finish).
    pub checks: Option<(u64, u64)>,
    /// Why the system stopped early, if it did; or the host error.
    pub detail: Option<String>,
    /// Wall-clock time of the run.
    pub millis: u64,
}

/// What one system run of the campaign OS left behind.
pub struct OsRun {
    /// The system's report (`Err`: it could not be booted).
    pub report: Result<SystemReport, String>,
    /// The suite's console lines.
    pub suite: Vec<String>,
}

#[derive(Clone, Default)]
struct SuiteLines(Arc<Mutex<Vec<String>>>);

impl ConsoleSink for SuiteLines {
    fn line(&mut self, domain: &str, line: &str) {
        if domain == "suite" {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line.to_owned());
        }
    }
}

/// The policy called `name`.
pub fn policy_named(name: &str) -> Option<Policy> {
    Some(match name {
        "none" => Policy::None,
        "stateless" => Policy::Stateless,
        "naive" => Policy::Naive,
        "pessimistic" => Policy::Pessimistic,
        "enhanced" => Policy::Enhanced,
        _ => return None,
    })
}

fn builtin_image(name: &str) -> Result<GuestImage, ImageError> {
    let image = ankh_image_catalog::find(name)
        .ok_or_else(|| ImageError::Load(format!("no built-in image {name}")))?;
    GuestImage::parse(image.name, image.elf.to_vec())
}

/// Boots the campaign OS on `substrate` under `policy` with the debug plans `debug`,
/// runs it to the end.
pub fn run_os(
    host: &KvmHost,
    substrate: Substrate,
    policy: Policy,
    debug: Vec<(String, Arc<GuestDebug>)>,
) -> Result<OsRun, Box<dyn std::error::Error>> {
    let mut description =
        SystemDescription::from_toml_str(OS, &|n| ankh_image_catalog::find(n).is_some())?;
    for spec in &mut description.domains {
        if POLICY_SERVERS.contains(&spec.name.as_str()) {
            spec.policy = policy;
        }
        // Guest debugging of a VM works at CPL0 only on these hosts (see
        // `domain::debug`), where the code is emulated: only the server under debug
        // pays for it. A process domain is debugged in user mode.
        if substrate == Substrate::Kvm
            && spec.role != Role::Process
            && debug.iter().any(|(name, _)| *name == spec.name)
        {
            spec.mode = Mode::Kernel;
        }
    }
    let disk = DiskImage::temporary()?;
    disk.write_file(
        system::INIT_JOBS,
        system::init_jobs(&[SUITE_JOB])?.as_bytes(),
    )?;
    let suite = SuiteLines::default();
    let sink = suite.clone();
    let options = SystemOptions {
        watchdog_timeout: Duration::from_millis(500),
        root_fs: system::root_fs_with_jobs(&[SUITE_JOB])?.into(),
        disk: Some(disk.path().to_owned()),
        guest_debug: debug,
        substrate,
        ..SystemOptions::new(Arc::new(move |_| {
            Box::new(sink.clone()) as Box<dyn ConsoleSink>
        }))
    };
    let report =
        system::run_system(host, &description, &builtin_image, &options).map_err(|e| e.to_string());
    let suite = suite.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(OsRun { report, suite })
}

/// `N passed, M failed` from the suite's lines.
pub fn checks(suite: &[String]) -> Option<(u64, u64)> {
    suite.iter().rev().find_map(|line| {
        let (passed, failed) = line.strip_suffix(" failed")?.split_once(" passed, ")?;
        Some((passed.parse().ok()?, failed.parse().ok()?))
    })
}

/// The outcome of a run that ended (a timeout is the runner's to decide).
pub fn classify(run: &OsRun) -> (Outcome, Option<String>) {
    let report = match &run.report {
        Ok(report) => report,
        Err(error) => return (Outcome::Crash, Some(format!("host error: {error}"))),
    };
    match &report.stop {
        Some(SystemStop::Shutdown { domain, reason }) => {
            return (
                Outcome::Shutdown,
                Some(format!("domain {domain}: {reason}")),
            )
        }
        Some(SystemStop::Halted { domain, fault }) => {
            return (
                Outcome::Crash,
                Some(format!("domain {domain} halted: {fault}")),
            )
        }
        None => {}
    }
    if let Some(d) = report
        .domains
        .iter()
        .find(|d| matches!(d.end, DomainEnd::HostError(_)))
    {
        return (Outcome::Crash, Some(format!("host error in {}", d.name)));
    }
    match checks(&run.suite) {
        None => {
            // Say where it stood: stopped, or blocked (a quiet system: a deadlock).
            let end = |name: &str| match report.end(name) {
                Some(DomainEnd::Stopped(exit)) => exit.to_string(),
                Some(DomainEnd::Waiting(wait)) => format!("waiting ({wait:?})"),
                Some(DomainEnd::HostError(error)) => format!("host error: {error}"),
                None => "never started".to_owned(),
            };
            let detail = format!(
                "the suite did not finish (suite: {}; init: {})",
                end("suite"),
                end("init")
            );
            (Outcome::Crash, Some(detail))
        }
        Some((_, 0)) => (Outcome::Pass, None),
        Some((_, failed)) => (Outcome::Fail, Some(format!("{failed} checks failed"))),
    }
}

/// Runs `experiment` in this process.
pub fn execute(host: &KvmHost, experiment: &Experiment) -> ExperimentResult {
    let started = Instant::now();
    let debug = GuestDebug::new(DebugPlan::Inject(experiment.fault.plan.clone()));
    let policy = policy_named(&experiment.policy).unwrap_or(Policy::Enhanced);
    let target = experiment.fault.server.clone();
    let run = run_os(
        host,
        experiment.substrate,
        policy,
        vec![(target.clone(), Arc::clone(&debug))],
    );
    let record = debug.record();
    let (outcome, detail, recoveries, checks) = match &run {
        Ok(run) => {
            let (outcome, detail) = classify(run);
            let recoveries = run
                .report
                .as_ref()
                .map(|r| {
                    r.recoveries
                        .iter()
                        .map(|e| RecoveryRecord {
                            domain: e.domain_name.clone(),
                            fault: e.fault.clone(),
                            action: e.action.to_string(),
                            window: e.window.to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            (outcome, detail, recoveries, self::checks(&run.suite))
        }
        Err(error) => (
            Outcome::Crash,
            Some(format!("host error: {error}")),
            Vec::new(),
            None,
        ),
    };
    let window_at_detection = recoveries
        .iter()
        .find(|r: &&RecoveryRecord| r.domain == target)
        .map(|r| r.window.clone());
    ExperimentResult {
        experiment: experiment.clone(),
        outcome,
        activated: record.fired.is_some(),
        fired: record.fired,
        hits: record.hits,
        recoveries,
        window_at_detection,
        checks,
        detail,
        millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// The golden run: no fault, no debugging. Its checks, which must all pass.
pub fn golden(host: &KvmHost, substrate: Substrate, policy: Policy) -> Result<(u64, u64), String> {
    let run = run_os(host, substrate, policy, Vec::new()).map_err(|e| e.to_string())?;
    match classify(&run) {
        (Outcome::Pass, _) => Ok(checks(&run.suite).unwrap_or_default()),
        (outcome, detail) => Err(format!(
            "the golden run did not pass ({}: {})",
            outcome.name(),
            detail.unwrap_or_default()
        )),
    }
}

/// The profile run: every server in `servers` single-stepped from its first message,
/// up to `max_steps` each.
pub fn profile(
    host: &KvmHost,
    substrate: Substrate,
    servers: &[String],
    max_steps: u64,
) -> Result<CampaignProfile, String> {
    let mut profile = CampaignProfile::default();
    // One run per server: only the server under debug runs emulated.
    for server in servers {
        let debug = GuestDebug::new(DebugPlan::Profile { max_steps });
        let plans = vec![(server.clone(), Arc::clone(&debug))];
        let run = run_os(host, substrate, Policy::Enhanced, plans).map_err(|e| e.to_string())?;
        let (outcome, detail) = classify(&run);
        if outcome != Outcome::Pass {
            return Err(format!(
                "the profile run of {server} did not pass ({}: {})",
                outcome.name(),
                detail.unwrap_or_default()
            ));
        }
        if let Ok(report) = &run.report {
            if let Some(domain) = report.domain(server) {
                let coverage = report.coverage.get(domain.id);
                profile.instructions_in_window.insert(
                    server.clone(),
                    (coverage.instructions_open, coverage.instructions_closed),
                );
            }
        }
        let server = server.clone();
        let taken = debug.profile();
        let mut sites: Vec<Site> = taken
            .sites
            .into_iter()
            .map(|(address, site)| Site {
                address,
                count: site.count,
                bytes: site.bytes,
            })
            .collect();
        sites.sort_by_key(|s| s.address);
        profile.truncated.insert(server.clone(), taken.truncated);
        profile.servers.insert(server, sites);
    }
    Ok(profile)
}

/// Request-level recovery coverage of one server in a golden run: requests that
/// finished with the window still open, of all it finished.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerCoverage {
    /// The server.
    pub server: String,
    /// Requests finished inside the window.
    pub open: u64,
    /// Requests finished.
    pub total: u64,
    /// The share of its run time (with a request in hand) inside an open window:
    /// OSIRIS's coverage, with time for instructions (see `ankh_recovery::coverage`).
    #[serde(default)]
    pub run_share: Option<f64>,
}

/// A golden run under `policy` (no fault, no debugging): each server's coverage.
pub fn coverage(
    host: &KvmHost,
    substrate: Substrate,
    policy: Policy,
) -> Result<Vec<ServerCoverage>, String> {
    let run = run_os(host, substrate, policy, Vec::new()).map_err(|e| e.to_string())?;
    let report = run.report.as_ref().map_err(Clone::clone)?;
    Ok(SERVERS
        .iter()
        .filter_map(|&server| {
            let domain = report.domain(server)?;
            let coverage = report.coverage.get(domain.id);
            Some(ServerCoverage {
                server: server.to_owned(),
                open: coverage.open,
                total: coverage.total(),
                run_share: coverage.run_share_open(),
            })
        })
        .collect())
}
