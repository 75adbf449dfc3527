//! `ankh campaign`: fault-injection campaigns (see docs/campaigns.md). `run` profiles
//! the golden run, plans the faults from a seed, and runs each experiment in a child
//! `ankh campaign exec` with a deadline (a hung run is killed: timeout; a VMM that
//! dies: crash), `--jobs` at a time; `replay`, `merge`, `report` and `profile` work on
//! its directory.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ankh_vmm::campaign::plan::{self, CampaignProfile, Experiment, PlanSpec};
use ankh_vmm::campaign::report;
use ankh_vmm::campaign::results::{self, CampaignFile};
use ankh_vmm::campaign::run::{self as experiment, ExperimentResult, Outcome, SERVERS};
use ankh_vmm::chart::ChartError;
use ankh_vmm::domain::debug::decode::FaultType;
use ankh_vmm::domain::Substrate;
use ankh_vmm::KvmHost;
use clap::{Args, Subcommand};

use super::status;

#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Plan and run a campaign into DIR.
    Run(RunArgs),
    /// Run one experiment of DIR again, exactly as planned, and print its result.
    Replay {
        /// The campaign directory.
        dir: PathBuf,
        /// The experiment id (`<policy>-<fault index>`).
        id: String,
    },
    /// Merge shard directories of one campaign into one.
    Merge {
        /// The shard directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The merged directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the survivability tables (Markdown) of DIR.
    Report {
        /// The campaign directory.
        dir: PathBuf,
        /// CSV instead of Markdown.
        #[arg(long)]
        csv: bool,
        /// Also write stacked bars per policy to this SVG file.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
    /// Profile the golden run and print each server's executed instructions, then
    /// each server's recovery coverage under each policy (requests finished in the
    /// window, and run time inside it).
    Profile {
        /// Servers to profile (default: every server on `process`; mm,blk on `kvm`,
        /// the two that run fast enough in kernel mode on these hosts).
        #[arg(long, value_delimiter = ',')]
        servers: Vec<String>,
        /// Single-steps per server at most.
        #[arg(long, default_value_t = 20_000_000)]
        max_steps: u64,
        /// What the OS runs on.
        #[arg(long, value_enum, default_value = "kvm")]
        substrate: Substrate,
    },
    /// (internal) Run the experiment given as JSON on stdin; print its result.
    #[command(hide = true)]
    Exec,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workload (only the conformance suite for now).
    #[arg(long, default_value = "suite")]
    workload: String,
    /// Recovery policy of ds, vfs, mm and pm, or `all` (each gets the same faults).
    #[arg(long, default_value = "enhanced")]
    policy: String,
    /// Faults per policy.
    #[arg(long, default_value_t = 100)]
    faults: u64,
    /// Fault types: `all`, or a list (fail-stop, flip-branch, no-load, no-store,
    /// rnd-load, corrupt-pointer, corrupt-index, corrupt-integer, stuck-at-loop).
    #[arg(long, default_value = "fail-stop")]
    types: String,
    /// Servers to inject into (default: every server on `process`; mm,blk on `kvm`,
    /// the two that run fast enough in kernel mode on these hosts).
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
    /// The seed of the fault list.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Experiments run in parallel.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// The largest hit count drawn.
    #[arg(long, default_value_t = 1000)]
    max_hit: u64,
    /// Each experiment's deadline, in seconds.
    #[arg(long, default_value_t = 30)]
    deadline_s: u64,
    /// Run only shard i of N (0-based): `--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`.
    #[arg(long)]
    shard: Option<String>,
    /// Reuse this profile (profile.json of an earlier run) instead of profiling: every
    /// shard of a campaign must plan from the same profile.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// What the OS runs on: `kvm` (the server under test runs in kernel mode, where
    /// guest debugging works on these hosts) or `process` (every server in user mode,
    /// breakpoints through perf events).
    #[arg(long, value_enum, default_value = "kvm")]
    substrate: Substrate,
    /// The results directory.
    #[arg(long)]
    out: PathBuf,
}

/// A usage error of `ankh campaign`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CampaignUsage(pub String);

const POLICIES: [&str; 5] = ["none", "stateless", "naive", "pessimistic", "enhanced"];

pub fn run(command: CampaignCommand) -> Result<ExitCode, Box<dyn Error>> {
    match command {
        CampaignCommand::Run(args) => run_campaign(args),
        CampaignCommand::Exec => exec(),
        CampaignCommand::Replay { dir, id } => replay(&dir, &id),
        CampaignCommand::Merge { dirs, out } => {
            let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
            let (campaign, profile, merged) = results::merge(&dirs)?;
            std::fs::create_dir_all(&out)?;
            results::write_json(&out.join("campaign.json"), &campaign)?;
            results::write_json(&out.join("profile.json"), &profile)?;
            let path = out.join("results.jsonl");
            let _ = std::fs::remove_file(&path);
            for result in &merged {
                results::append(&path, result)?;
            }
            println!("merged {} experiments into {}", merged.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Report { dir, csv, svg } => {
            let all = results::read_results(&dir.join("results.jsonl"))?;
            if let Some(path) = svg {
                let chart = report::svg(&all).map_err(|error| match error {
                    // No results yet: the person's to fix (run the campaign first).
                    ChartError::Empty(_) => Box::new(CampaignUsage(format!(
                        "{}: no results to chart",
                        dir.display()
                    ))) as Box<dyn Error>,
                    other => Box::new(other),
                })?;
                std::fs::write(&path, chart)?;
            }
            print!(
                "{}",
                if csv {
                    report::csv(&all)
                } else {
                    report::markdown(&all)
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Profile {
            servers,
            max_steps,
            substrate,
        } => {
            let servers = servers_or_default(servers, substrate);
            check_servers(&servers)?;
            let host = KvmHost::open()?;
            let started = Instant::now();
            let profile = experiment::profile(&host, substrate, &servers, max_steps)?;
            println!(
                "profile of the suite in {:.1} s:",
                started.elapsed().as_secs_f64()
            );
            for (server, sites) in &profile.servers {
                let executed: u64 = sites.iter().map(|s| s.count).sum();
                let in_window = match profile.instructions_in_window.get(server) {
                    Some(&(open, closed)) if open + closed > 0 => format!(
                        "; with a request in hand {} of {} inside the window under enhanced ({:.1}%)",
                        open,
                        open + closed,
                        100.0 * open as f64 / (open + closed) as f64
                    ),
                    _ => String::new(),
                };
                println!(
                    "{server:<4} {} distinct instructions, {executed} executed{}{in_window}",
                    sites.len(),
                    if profile.truncated[server] {
                        " (bound reached: partial)"
                    } else {
                        ""
                    }
                );
            }
            println!(
                "\nrecovery coverage, golden run per policy: requests finished inside the window; \
                 run time inside the window (OSIRIS's measure, time for instructions):"
            );
            println!("| policy | {} |", SERVERS.join(" | "));
            println!("|---|{}", "---:|".repeat(SERVERS.len()));
            for policy in POLICIES {
                let policy_value = experiment::policy_named(policy).expect("a known policy");
                let cells: Vec<String> = experiment::coverage(&host, substrate, policy_value)?
                    .iter()
                    .map(|c| {
                        let run = c
                            .run_share
                            .map_or("-".to_owned(), |share| format!("{:.1}%", share * 100.0));
                        match c.total {
                            0 => format!("- / run {run}"),
                            total => format!(
                                "{}/{total} ({:.1}%) / run {run}",
                                c.open,
                                100.0 * c.open as f64 / total as f64
                            ),
                        }
                    })
                    .collect();
                println!("| {policy} | {} |", cells.join(" | "));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The profile of the campaign `dir` already holds, if it holds one: it must be the
/// same plan (`spec`) on this build's images, or the person is told to choose another
/// directory.
fn resumed(dir: &Path, spec: &PlanSpec) -> Result<Option<CampaignProfile>, Box<dyn Error>> {
    let campaign_path = dir.join("campaign.json");
    if !campaign_path.exists() {
        return Ok(None);
    }
    let campaign: CampaignFile = results::read_json(&campaign_path)?;
    results::check_images(&campaign, dir)?;
    // Fault i depends on the seed, i and the profile only: a campaign may grow (or be
    // cut) by `--faults`; anything else is another campaign.
    let same_faults = PlanSpec {
        faults: spec.faults,
        ..campaign.spec.clone()
    };
    if same_faults != *spec {
        return Err(CampaignUsage(format!(
            "{}: holds another campaign (its plan differs: seed, types, servers, policies, \
             hit bound or substrate); choose a new --out",
            dir.display()
        ))
        .into());
    }
    Ok(Some(results::read_json(&dir.join("profile.json"))?))
}

/// Process-substrate campaigns need perf breakpoints: say so once, before any run.
fn check_breakpoints() -> Result<(), CampaignUsage> {
    ankh_vmm::domain::debug::process_breakpoints_available().map_err(|error| {
        let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
            .map_or("unknown".to_owned(), |s| s.trim().to_owned());
        CampaignUsage(format!(
            "this host refuses perf breakpoints ({error}; kernel.perf_event_paranoid is \
             {paranoid}, it must be 2 or less: sysctl kernel.perf_event_paranoid=2)"
        ))
    })
}

/// `servers`, or the substrate's default when none were named.
fn servers_or_default(servers: Vec<String>, substrate: Substrate) -> Vec<String> {
    match (servers.is_empty(), substrate) {
        (false, _) => servers,
        (true, Substrate::Process) => SERVERS.iter().map(|s| (*s).to_owned()).collect(),
        (true, Substrate::Kvm) => vec!["mm".to_owned(), "blk".to_owned()],
    }
}

fn check_servers(servers: &[String]) -> Result<(), CampaignUsage> {
    match servers.iter().find(|s| !SERVERS.contains(&s.as_str())) {
        Some(bad) => Err(CampaignUsage(format!(
            "unknown server {bad:?} (expected {})",
            SERVERS.join(", ")
        ))),
        None => Ok(()),
    }
}

fn parse_types(text: &str) -> Result<Vec<FaultType>, CampaignUsage> {
    if text == "all" {
        return Ok(FaultType::ALL.to_vec());
    }
    text.split(',')
        .map(|name| {
            FaultType::from_name(name.trim()).ok_or_else(|| {
                let known: Vec<&str> = FaultType::ALL.iter().map(|t| t.name()).collect();
                CampaignUsage(format!(
                    "unknown fault type {name:?} (expected all or {})",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

fn parse_policies(text: &str) -> Result<Vec<String>, CampaignUsage> {
    if text == "all" {
        return Ok(POLICIES.iter().map(|p| (*p).to_owned()).collect());
    }
    text.split(',')
        .map(|p| match experiment::policy_named(p.trim()) {
            Some(_) => Ok(p.trim().to_owned()),
            None => Err(CampaignUsage(format!(
                "unknown policy {p:?} (expected all or {})",
                POLICIES.join(", ")
            ))),
        })
        .collect()
}

fn run_campaign(mut args: RunArgs) -> Result<ExitCode, Box<dyn Error>> {
    args.servers = servers_or_default(std::mem::take(&mut args.servers), args.substrate);
    if args.workload != "suite" {
        return Err(
            CampaignUsage(format!("unknown workload {:?} (only suite)", args.workload)).into(),
        );
    }
    check_servers(&args.servers)?;
    let spec = PlanSpec {
        faults: args.faults,
        seed: args.seed,
        types: parse_types(&args.types)?,
        servers: args.servers.clone(),
        policies: parse_policies(&args.policy)?,
        max_hit: args.max_hit.max(1),
        substrate: args.substrate,
    };
    let shard = args
        .shard
        .as_deref()
        .map(plan::parse_shard)
        .transpose()
        .map_err(CampaignUsage)?;
    if args.substrate == Substrate::Process {
        check_breakpoints()?;
    }
    // A directory that holds a campaign is resumed: same plan, same images, and the
    // profile it was planned from (a new profile would plan other faults).
    let existing = resumed(&args.out, &spec)?;
    std::fs::create_dir_all(&args.out)?;
    let host = KvmHost::open()?;
    let golden = experiment::golden(&host, args.substrate, ankh_domains::Policy::Enhanced)?;
    println!("golden run: {} passed, {} failed", golden.0, golden.1);
    let profile: CampaignProfile = match (&args.profile, existing) {
        (Some(path), existing) => {
            let profile: CampaignProfile = results::read_json(path)?;
            if existing.is_some_and(|saved| saved != profile) {
                return Err(CampaignUsage(format!(
                    "{}: holds a campaign planned from another profile than {}; choose a new --out",
                    args.out.display(),
                    path.display()
                ))
                .into());
            }
            profile
        }
        (None, Some(saved)) => saved,
        (None, None) => {
            let started = Instant::now();
            let profile = experiment::profile(&host, args.substrate, &args.servers, 20_000_000)?;
            println!(
                "profiled the golden run in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            profile
        }
    };
    results::write_json(&args.out.join("profile.json"), &profile)?;
    results::write_json(
        &args.out.join("campaign.json"),
        &CampaignFile {
            spec: spec.clone(),
            golden,
            shard: args.shard.clone(),
            images: Some(results::images_fingerprint()),
        },
    )?;
    let mut planned = plan::experiments(&spec, &profile);
    if let Some((i, n)) = shard {
        planned = plan::shard(planned, i, n);
    }
    let path = args.out.join("results.jsonl");
    let done: std::collections::BTreeSet<String> = results::read_results(&path)
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.experiment.id)
        .collect();
    planned.retain(|e| !done.contains(&e.id));
    println!(
        "{} experiments to run ({} already in {})",
        planned.len(),
        done.len(),
        path.display()
    );
    let bar = indicatif::ProgressBar::new(planned.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} eta {eta} {msg}")
            .expect("a valid template"),
    );
    let queue = Arc::new(Mutex::new(planned.into_iter()));
    let counts = Arc::new(Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let deadline = Duration::from_secs(args.deadline_s);
    let started = Instant::now();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.jobs.max(1))
            .map(|_| {
                let (queue, counts, bar, path) = (&queue, &counts, &bar, &path);
                scope.spawn(move || -> Result<(), String> {
                    loop {
                        let next = queue.lock().expect("queue").next();
                        let Some(experiment) = next else {
                            return Ok(());
                        };
                        let result = in_child(&experiment, deadline)?;
                        let key = if result.activated {
                            result.outcome.name()
                        } else {
                            "not-activated"
                        };
                        // The lock also keeps the workers' lines apart in the file.
                        let mut counts = counts.lock().expect("counts");
                        results::append(path, &result).map_err(|e| e.to_string())?;
                        *counts.entry(key.to_owned()).or_default() += 1;
                        let text: Vec<String> =
                            counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
                        bar.set_message(text.join(", "));
                        bar.inc(1);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|w| w.join().expect("worker").err())
            .collect()
    });
    bar.finish();
    if let Some(failure) = failures.first() {
        return Err(failure.clone().into());
    }
    let ran = bar.position();
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!(
        "{ran} experiments in {:.1} min ({:.0} per minute, --jobs {}); results in {}",
        minutes,
        ran as f64 / minutes.max(1e-9),
        args.jobs,
        path.display()
    );
    Ok(ExitCode::from(status::CLEAN))
}

/// Runs `experiment` in a child `ankh campaign exec`, killed at `deadline` (timeout).
fn in_child(experiment: &Experiment, deadline: Duration) -> Result<ExperimentResult, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find ankh itself: {e}"))?;
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(["campaign", "exec"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start ankh campaign exec: {e}"))?;
    let input = serde_json::to_string(experiment).map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(status);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let text = reader.join().unwrap_or_default();
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let lost = |outcome: Outcome, detail: String| ExperimentResult {
        experiment: experiment.clone(),
        outcome,
        // Unknown once the child is gone: counted as activated, its outcome stands.
        activated: true,
        fired: None,
        hits: 0,
        recoveries: Vec::new(),
        window_at_detection: None,
        checks: None,
        detail: Some(detail),
        millis,
    };
    Ok(match status {
        None => lost(
            Outcome::Timeout,
            format!("no end within {} s", deadline.as_secs()),
        ),
        // The result is the last line; recovery events are logged before it.
        Some(status) => match serde_json::from_str::<ExperimentResult>(
            text.lines()
                .rev()
                .find(|l| l.starts_with('{'))
                .unwrap_or(""),
        ) {
            Ok(result) => result,
            Err(_) => lost(Outcome::Crash, format!("the VMM died ({status})")),
        },
    })
}

fn exec() -> Result<ExitCode, Box<dyn Error>> {
    let mut input = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)?;
    let experiment: Experiment = serde_json::from_str(&input)?;
    let host = KvmHost::open()?;
    let result = experiment::execute(&host, &experiment);
    println!("{}", serde_json::to_string(&result)?);
    Ok(ExitCode::SUCCESS)
}

fn replay(dir: &Path, id: &str) -> Result<ExitCode, Box<dyn Error>> {
    let campaign: CampaignFile = results::read_json(&dir.join("campaign.json"))?;
    results::check_images(&campaign, dir)?;
    if campaign.images.is_none() {
        eprintln!(
            "ankh: note: {} records no image fingerprint (an older build wrote it): the \
             replay is exact only with the build that ran the campaign",
            dir.display()
        );
    }
    let profile: CampaignProfile = results::read_json(&dir.join("profile.json"))?;
    let planned = plan::experiments(&campaign.spec, &profile);
    let experiment = planned
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| CampaignUsage(format!("no experiment {id:?} in {}", dir.display())))?;
    let before = results::read_results(&dir.join("results.jsonl"))
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.experiment.id == id);
    let result = in_child(&experiment, Duration::from_secs(60))?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    if let Some(before) = before {
        println!(
            "recorded: {} (activated {}, hits {}); replayed: {} (activated {}, hits {})",
            before.outcome.name(),
            before.activated,
            before.hits,
            result.outcome.name(),
            result.activated,
            result.hits
        );
    }
    Ok(ExitCode::SUCCESS)
}
