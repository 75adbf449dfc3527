//! `ankh bench ubench`: the Unixbench-style workloads of the `ubench` program, run on
//! the OS (systems/os.toml), timed by the VMM.
//!
//! The guest has no clock. `ubench` brackets each workload with two `Nop` hypercalls
//! and prints `ubench: <name> <operations>` after it; the VMM timestamps the `Nop`s of
//! the domain named `ubench`, so the k-th pair times the k-th line. Operations per
//! second = operations / time between the pair.
//!
//! These hosts have slow and fast phases of seconds. So each workload runs in a system
//! of its own, and the baseline and the policy measured take turns workload by
//! workload, a fraction of a second apart, rather than program by program: in each
//! round a workload runs four times, in the order A B B A (`none` first in one round,
//! the policy first in the next), and the round's slowdown compares the two A runs
//! with the two B runs, which cancels a drift of the machine's speed within the round.
//! The process stays on one CPU, as a migration between the two cores costs more than
//! most of what is measured. Each system runs its workload twice
//! (`ubench <workload> <workload>`) and the second run counts: the first warms the
//! servers up (their heaps, and which of their pages the dirty log keeps writable),
//! as the workloads before it do when `ubench` runs them all.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ankh_domains::{Policy, SystemDescription};
use ankh_image_catalog::ubench::WORKLOADS;

use crate::console::{CapturedConsole, ConsoleSink};
use crate::disk_image::DiskImage;
use crate::domain::Substrate;
use crate::image::GuestImage;
use crate::kvm_host::KvmHost;
use crate::system::injection::PlannedKill;
use crate::system::{
    init_jobs, root_fs_with_jobs, run_system, CheckpointCount, SystemOptions, SystemReport,
    TraceEvent, INIT_JOBS,
};

/// Systems per policy, workload and round (A B B A).
const SYSTEMS_PER_ROUND: f64 = 2.0;

/// Runs of its workload in each system (a warm-up, then the measured one).
const RUNS_PER_SYSTEM: f64 = 2.0;

/// The OS the workloads run on.
const OS: &str = include_str!("../../../systems/os.toml");

/// One workload's figure.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Its name (`syscall`, `pipe`, ...).
    pub name: String,
    /// Operations done.
    pub operations: u64,
    /// Time they took.
    pub elapsed: Duration,
    /// Exits of all domains to the VMM meanwhile (0 natively).
    pub exits: u64,
}

impl Workload {
    /// Operations per second.
    pub fn per_second(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64()
    }
}

/// What `ankh bench ubench` measured: the median run of each workload, with the
/// servers' recovery off (`none`, the baseline) and under `policy`.
#[derive(Debug)]
pub struct UbenchReport {
    /// Rounds (each ran every workload twice per policy).
    pub rounds: usize,
    /// The policy compared with `none`.
    pub policy: Policy,
    /// Each workload without recovery, median over the rounds by operations per second
    /// (a round's figure is the mean of its two runs).
    pub baseline: Vec<Workload>,
    /// Each workload under `policy`.
    pub workloads: Vec<Workload>,
    /// Per workload, the median over the rounds of the slowdown measured within the
    /// round (`none` and `policy` run back to back): robust to the host's slow and
    /// fast phases, which last longer than a round.
    pub paired: Vec<f64>,
    /// The 95% bootstrap interval over the rounds of the geometric mean of `paired`
    /// (see [`bootstrap`](super::bootstrap)); `None` with fewer than 3 rounds.
    pub paired_interval: Option<(f64, f64)>,
    /// Per workload, the checkpoints of every server under `policy`, over all its
    /// systems (two per round, each ran the workload twice: a warm-up, then the
    /// measured run).
    pub checkpoints: Vec<CheckpointCount>,
}

impl UbenchReport {
    /// Checkpoints per operation of workload `index` under the policy.
    fn checkpoints_per_op(&self, index: usize) -> f64 {
        self.checkpoints[index].checkpoints as f64 / self.operations(index)
    }

    /// Trapped writes (first writes to a page protected for the tracking) per
    /// operation of workload `index` under the policy.
    fn trapped_writes_per_op(&self, index: usize) -> f64 {
        self.checkpoints[index].trapped_writes as f64 / self.operations(index)
    }

    /// Operations of workload `index` under the policy over all its systems, which
    /// the checkpoint counts cover.
    fn operations(&self, index: usize) -> f64 {
        let runs = SYSTEMS_PER_ROUND * RUNS_PER_SYSTEM * self.rounds as f64;
        self.workloads[index].operations as f64 * runs
    }
}

impl fmt::Display for UbenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ankh bench ubench (median of {} rounds, each workload run A B B A per round)",
            self.rounds
        )?;
        writeln!(
            f,
            "{:<12} {:>8} {:>14} {:>16} {:>10} {:>10} {:>9} {:>11} {:>9}",
            "workload",
            "ops",
            "ops/s none",
            format!("ops/s {}", self.policy),
            "overhead",
            "paired",
            "ckpt/op",
            "pages/ckpt",
            "traps/op"
        )?;
        let (mut log_sum, mut paired_sum) = (0.0, 0.0);
        for (index, ((base, w), paired)) in self
            .baseline
            .iter()
            .zip(&self.workloads)
            .zip(&self.paired)
            .enumerate()
        {
            let ratio = base.per_second() / w.per_second();
            log_sum += ratio.ln();
            paired_sum += paired.ln();
            writeln!(
                f,
                "{:<12} {:>8} {:>14.0} {:>16.0} {:>9.1}% {:>9.1}% {:>9.1} {:>11.1} {:>9.2}",
                w.name,
                w.operations,
                base.per_second(),
                w.per_second(),
                (ratio - 1.0) * 100.0,
                (paired - 1.0) * 100.0,
                self.checkpoints_per_op(index),
                self.checkpoints[index].pages_per_checkpoint(),
                self.trapped_writes_per_op(index)
            )?;
        }
        let count = self.workloads.len().max(1) as f64;
        write!(
            f,
            "geometric-mean overhead of {} against none: {:.1}% (medians), {:.1}% (paired within rounds",
            self.policy,
            ((log_sum / count).exp() - 1.0) * 100.0,
            ((paired_sum / count).exp() - 1.0) * 100.0
        )?;
        match self.paired_interval {
            Some((low, high)) => writeln!(
                f,
                "; 95% interval over the rounds {:.1}% to {:.1}%)",
                (low - 1.0) * 100.0,
                (high - 1.0) * 100.0
            ),
            None => writeln!(f, ")"),
        }
    }
}

/// Runs each workload `rounds` times without recovery and `rounds` times under
/// `policy`, taking turns workload by workload so both see the same machine; on `cpu`
/// only, when given; each domain run by `substrate`.
pub fn run(
    rounds: usize,
    policy: Policy,
    cpu: Option<usize>,
    substrate: Substrate,
    only: &[String],
) -> Result<UbenchReport, Box<dyn std::error::Error>> {
    let workloads = selected(only)?;
    if let Some(cpu) = cpu {
        super::pin_to_cpu(cpu)?;
    }
    let host = KvmHost::open()?;
    let (mut base_runs, mut runs) = (Vec::new(), Vec::new());
    let mut checkpoints = vec![CheckpointCount::default(); workloads.len()];
    for round in 0..rounds.max(1) {
        let (mut base, mut under) = (Vec::new(), Vec::new());
        for (index, &workload) in workloads.iter().enumerate() {
            // A B B A, the baseline first in every other round: a drift within the
            // round favours neither, and neither does a drift across rounds.
            let baseline_first = (round + index) % 2 == 0;
            let (mut base_pair, mut policy_pair) = (Vec::new(), Vec::new());
            for is_baseline in [
                baseline_first,
                !baseline_first,
                !baseline_first,
                baseline_first,
            ] {
                if is_baseline {
                    base_pair.push(run_once(&host, Policy::None, workload, substrate)?.0);
                } else {
                    let (measured, counted) = run_once(&host, policy, workload, substrate)?;
                    policy_pair.push(measured);
                    checkpoints[index] += counted;
                }
            }
            base.push(mean(&base_pair));
            under.push(mean(&policy_pair));
        }
        base_runs.push(base);
        runs.push(under);
    }
    let rounds = round_slowdowns(&base_runs, &runs);
    Ok(UbenchReport {
        rounds: runs.len(),
        policy,
        baseline: medians(&base_runs),
        workloads: medians(&runs),
        paired: median_per_workload(&rounds),
        paired_interval: super::bootstrap::geomean_of_medians_interval(&rounds),
        checkpoints,
    })
}

/// The workloads named in `only`, in the benchmark's order (all of them when `only`
/// is empty); a name that is not a workload is an error that lists them.
fn selected(only: &[String]) -> Result<Vec<&'static str>, String> {
    if let Some(unknown) = only.iter().find(|name| !WORKLOADS.contains(&name.as_str())) {
        return Err(format!(
            "no workload {unknown:?}; the workloads are {}",
            WORKLOADS.join(", ")
        ));
    }
    Ok(WORKLOADS
        .into_iter()
        .filter(|name| only.is_empty() || only.iter().any(|o| o == name))
        .collect())
}

/// Per workload, the median over the rounds of `base / run` in operations per second.
pub(super) fn paired_slowdowns(base_runs: &[Vec<Workload>], runs: &[Vec<Workload>]) -> Vec<f64> {
    median_per_workload(&round_slowdowns(base_runs, runs))
}

/// Per workload, the median over the rounds of [`round_slowdowns`].
fn median_per_workload(rounds: &[Vec<f64>]) -> Vec<f64> {
    (0..rounds.first().map_or(0, Vec::len))
        .map(|index| {
            let mut ratios: Vec<f64> = rounds
                .iter()
                .filter_map(|r| r.get(index))
                .copied()
                .collect();
            ratios.sort_by(f64::total_cmp);
            ratios.get(ratios.len() / 2).copied().unwrap_or(1.0)
        })
        .collect()
}

/// Per round, each workload's `base / run` in operations per second.
pub(crate) fn round_slowdowns(
    base_runs: &[Vec<Workload>],
    runs: &[Vec<Workload>],
) -> Vec<Vec<f64>> {
    base_runs
        .iter()
        .zip(runs)
        .map(|(base, run)| {
            base.iter()
                .zip(run)
                .map(|(base, run)| base.per_second() / run.per_second())
                .collect()
        })
        .collect()
}

/// Runs of one workload as one: their operations each, in their mean time (so the
/// rate is that of all of them together).
pub(super) fn mean(runs: &[Workload]) -> Workload {
    let count = u32::try_from(runs.len()).unwrap_or(u32::MAX).max(1);
    Workload {
        name: runs.first().map(|run| run.name.clone()).unwrap_or_default(),
        operations: runs.first().map_or(0, |run| run.operations),
        elapsed: runs.iter().map(|run| run.elapsed).sum::<Duration>() / count,
        exits: runs.iter().map(|run| run.exits).sum::<u64>() / u64::from(count),
    }
}

/// The median run of each workload over the rounds (by operations per second).
pub(super) fn medians(runs: &[Vec<Workload>]) -> Vec<Workload> {
    (0..runs.first().map_or(0, Vec::len))
        .map(|index| {
            let mut samples: Vec<Workload> =
                runs.iter().filter_map(|r| r.get(index).cloned()).collect();
            samples.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
            samples[samples.len() / 2].clone()
        })
        .collect()
}

/// `workload` in a system of its own, after a warm-up run of it; with the checkpoints
/// of all the system's servers (during both runs).
pub(super) fn run_once(
    host: &KvmHost,
    policy: Policy,
    workload: &str,
    substrate: Substrate,
) -> Result<(Workload, CheckpointCount), Box<dyn std::error::Error>> {
    let program = format!("ubench {workload} {workload}");
    let run = MarkedRun {
        substrate,
        ..MarkedRun::new(&program, policy)
    };
    let (measured, report) = run_marked(host, &run)?;
    let checkpoints = report.domains.iter().map(|d| d.checkpoints).sum();
    match measured.as_slice() {
        [warm_up, measured] if warm_up.name == workload && measured.name == workload => {
            Ok((measured.clone(), checkpoints))
        }
        _ => Err(format!("{program} measured {measured:?}").into()),
    }
}

/// A run of a program that brackets each workload with two `Nop`s and prints
/// `<program>: <name> <count>` after it.
#[derive(Clone, Debug)]
pub struct MarkedRun<'a> {
    /// The program init runs.
    pub program: &'a str,
    /// The policy of every server.
    pub policy: Policy,
    /// Planned hot-kills.
    pub kills: Vec<PlannedKill>,
    /// Keep the files in VFS memory: the OS without its disk driver.
    pub in_memory: bool,
    /// Keep the disk driver under the stateless policy (as systems/os.toml has it).
    pub stateless_disk: bool,
    /// What runs the domains.
    pub substrate: Substrate,
}

impl MarkedRun<'_> {
    /// `program` on the OS with its disk, every server under `policy`, no kills.
    pub fn new(program: &str, policy: Policy) -> MarkedRun<'_> {
        MarkedRun {
            program,
            policy,
            kills: Vec::new(),
            in_memory: false,
            stateless_disk: false,
            substrate: Substrate::Kvm,
        }
    }
}

/// Runs `run.program` on the OS and times its workloads; also returns the system's
/// report.
pub fn run_marked(
    host: &KvmHost,
    run: &MarkedRun<'_>,
) -> Result<(Vec<Workload>, SystemReport), Box<dyn std::error::Error>> {
    let mut description =
        SystemDescription::from_toml_str(OS, &|name| ankh_image_catalog::find(name).is_some())?;
    for spec in &mut description.domains {
        spec.policy = if spec.disk && run.stateless_disk {
            Policy::Stateless
        } else {
            run.policy
        };
    }
    if run.in_memory {
        description.domains.retain(|spec| !spec.disk);
        for spec in &mut description.domains {
            spec.calls.retain(|callee| callee != "blk");
        }
        description = description
            .into_builder()
            .build(&|name| ankh_image_catalog::find(name).is_some())?;
    }
    // The domain is named after the program, without its arguments.
    let name = run.program.split(' ').next().unwrap_or_default();
    let program = name.to_owned();
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let recorder = Arc::clone(&stamps);
    let console = CapturedConsole::default();
    let sink = console.clone();
    // The OS's files live on its disk: a fresh copy of the root disk per run.
    let disk = DiskImage::temporary()?;
    disk.write_file(INIT_JOBS, init_jobs(&[run.program])?.as_bytes())?;
    let options = SystemOptions {
        disk: (!run.in_memory).then(|| disk.path().to_owned()),
        watchdog_timeout: Duration::from_secs(10),
        root_fs: root_fs_with_jobs(&[run.program])?.into(),
        kills: run.kills.clone(),
        substrate: run.substrate,
        ipc_trace: Some(Arc::new(move |event, _, domain| {
            if event == TraceEvent::Nop && domain.name() == program {
                let exits = crate::domain::EXITS.load(std::sync::atomic::Ordering::Relaxed);
                recorder
                    .lock()
                    .expect("stamps lock")
                    .push((Instant::now(), exits));
            }
        })),
        ..SystemOptions::new(Arc::new(move |name| -> Box<dyn ConsoleSink> {
            match name {
                "ubench" | "disk-bench" => Box::new(sink.clone()),
                _ => Box::new(CapturedConsole::default()),
            }
        }))
    };
    let image_of = |name: &str| {
        let builtin = ankh_image_catalog::find(name)
            .ok_or_else(|| crate::ImageError::Load(format!("{name} is not built in")))?;
        GuestImage::parse(builtin.name, builtin.elf.to_vec())
    };
    let report = run_system(host, &description, &image_of, &options)?;
    let stamps = stamps.lock().expect("stamps lock");
    let prefix = format!("{name}: ");
    let mut workloads = Vec::new();
    for (line, pair) in console
        .lines()
        .iter()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .zip(stamps.chunks(2))
    {
        let mut words = line.split_whitespace();
        let (Some(name), Some(count), [start, end]) = (words.next(), words.next(), pair) else {
            continue;
        };
        // A workload that failed prints `failed errno N` instead of a count.
        let Ok(operations) = count.parse() else {
            continue;
        };
        workloads.push(Workload {
            name: name.to_owned(),
            operations,
            elapsed: end.0 - start.0,
            exits: end.1.saturating_sub(start.1),
        });
    }
    if workloads.is_empty() {
        return Err(format!("{} printed no workload: {:?}", run.program, console.lines()).into());
    }
    Ok((workloads, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ops: u64, millis: u64) -> Workload {
        Workload {
            name: "syscall".into(),
            operations: ops,
            elapsed: Duration::from_millis(millis),
            exits: 0,
        }
    }

    #[test]
    fn a_pair_of_runs_counts_at_the_rate_of_both_together() {
        let both = mean(&[run(100, 100), run(100, 300)]);
        assert_eq!(both.operations, 100);
        assert_eq!(both.elapsed, Duration::from_millis(200));
        assert!((both.per_second() - 500.0).abs() < 1e-9);
    }

    #[test]
    fn the_paired_slowdown_is_the_median_of_the_rounds() {
        let base = vec![vec![run(100, 100)], vec![run(100, 100)], vec![run(100, 50)]];
        let under = vec![vec![run(100, 110)], vec![run(100, 300)], vec![run(100, 60)]];
        let paired = paired_slowdowns(&base, &under);
        assert_eq!(paired.len(), 1);
        // Rounds: 1.1, 3.0 (an outlier), 1.2: the median is 1.2.
        assert!((paired[0] - 1.2).abs() < 1e-9, "{paired:?}");
    }
}
