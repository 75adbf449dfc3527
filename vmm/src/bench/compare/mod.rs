//! `ankh bench compare`: what the VM boundary costs, measured in one run against the
//! same OS as Linux processes (the process substrate, the microkernel build) and
//! against Linux itself doing the same work natively.
//!
//! Everything interleaves so that the host's slow and fast phases favour no one: the
//! null call alternates kvm and process round by round; each ubench workload runs
//! under the four configurations (kvm and process, recovery `none` and `enhanced`) in
//! a mirrored order, A B C D D C B A, reversed every other workload and round, and a
//! round's figure for a configuration is the mean of its two runs; the native
//! workloads run once per round. The recovery costs, the OS's boot time and the memory
//! of an idle domain are measured per substrate, alternating too.
//!
//! Files: `report` (the Markdown table, JSON, CSV and the chart).

mod exit_projection;
mod report;

pub use exit_projection::ProjectedOverhead;

use std::time::{Duration, Instant};

use ankh_domains::{Policy, SystemDescription};
use ankh_image_catalog::ubench::WORKLOADS;

use super::ipc::{measure, CASES};
use super::native::{run_native, NativeReport};
use super::recovery::{run_on as recovery_on, RecoveryReport};
use super::stats::Summary;
use super::ubench::{mean, medians, paired_slowdowns, run_once, Workload};
use crate::console::CapturedConsole;
use crate::domain::{Domain, DomainConfig, Substrate};
use crate::image::GuestImage;
use crate::kvm_host::KvmHost;
use crate::system::{root_fs_with_jobs, run_system, CheckpointCount, SystemOptions};

/// The two substrates, in report order.
pub const SUBSTRATES: [Substrate; 2] = [Substrate::Kvm, Substrate::Process];

/// The policies each substrate runs the OS under: the baseline and full recovery.
pub const POLICIES: [Policy; 2] = [Policy::None, Policy::Enhanced];

/// One configuration of the OS: what runs it, under which recovery policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// What runs the domains.
    pub substrate: Substrate,
    /// Every server's policy.
    pub policy: Policy,
}

impl Config {
    /// `kvm-none`, `process-enhanced`, ...
    pub fn label(&self) -> String {
        format!("{}-{}", self.substrate.name(), self.policy)
    }
}

/// The four configurations, in report order.
pub fn configs() -> Vec<Config> {
    SUBSTRATES
        .iter()
        .flat_map(|&substrate| {
            POLICIES
                .iter()
                .map(move |&policy| Config { substrate, policy })
        })
        .collect()
}

/// The null call on one substrate.
#[derive(Clone, Debug)]
pub struct NullCall {
    /// Round trips (client call to client call).
    pub round_trip: Summary,
    /// Exits of both domains per call.
    pub exits_per_call: f64,
    /// Voluntary context switches of the VMM's thread per call (a process domain's
    /// exit is a futex handover: one sleep of the VMM each).
    pub vmm_switches_per_call: f64,
}

/// What one substrate measured beside the ubench workloads.
#[derive(Debug)]
pub struct SubstrateFigures {
    /// The substrate.
    pub substrate: Substrate,
    /// The null IPC round trip.
    pub null_call: NullCall,
    /// The OS booted, `hello-os` run, the OS shut down.
    pub os_run: Summary,
    /// Host memory per idle domain (proportional set size of the VMM and the domain
    /// processes), in bytes.
    pub idle_domain_bytes: u64,
    /// Checkpoint, rollback and restart of the `ckpt-probe` domain.
    pub recovery: RecoveryReport,
}

/// One configuration's ubench figures.
#[derive(Debug)]
pub struct ConfigWorkloads {
    /// The configuration.
    pub config: Config,
    /// Each workload's median over the rounds, in `WORKLOADS` order.
    pub workloads: Vec<Workload>,
    /// Each round's figures (for the paired ratios).
    pub rounds: Vec<Vec<Workload>>,
    /// Per workload, the checkpoints of every server over all its runs, and how many
    /// times the workload ran for them (warm-ups included).
    pub checkpoints: Vec<(CheckpointCount, u64)>,
}

impl ConfigWorkloads {
    /// Trapped writes (first writes to a page protected for the tracking) per
    /// operation of workload `index`.
    pub fn trapped_writes_per_op(&self, index: usize) -> f64 {
        let (Some((count, runs)), Some(workload)) =
            (self.checkpoints.get(index), self.workloads.get(index))
        else {
            return 0.0;
        };
        let operations = (workload.operations * runs) as f64;
        if operations == 0.0 {
            return 0.0;
        }
        count.trapped_writes as f64 / operations
    }
}

/// What `ankh bench compare` measured.
#[derive(Debug)]
pub struct CompareReport {
    /// Rounds.
    pub rounds: usize,
    /// Per substrate.
    pub substrates: Vec<SubstrateFigures>,
    /// Per configuration.
    pub ubench: Vec<ConfigWorkloads>,
    /// Linux natively.
    pub native: NativeReport,
    /// The cost of an exit on bare-metal KVM, for the projection (a parameter: this
    /// host is nested).
    pub bare_exit: Duration,
    /// The exit cost kvm's recovery overhead is also projected to (a parameter; see
    /// `exit_projection`).
    pub overhead_exit: Duration,
}

/// Idle domains booted for the memory figure.
const IDLE_DOMAINS: usize = 8;

/// Runs the comparison: `rounds` rounds, on CPU `cpu` when given.
pub fn run(
    rounds: usize,
    cpu: Option<usize>,
    bare_exit: Duration,
    overhead_exit: Duration,
) -> Result<CompareReport, Box<dyn std::error::Error>> {
    if let Some(cpu) = cpu {
        super::pin_to_cpu(cpu)?;
    }
    let rounds = rounds.max(1);
    let host = KvmHost::open()?;
    let configs = configs();
    let mut ubench_rounds: Vec<Vec<Vec<Workload>>> = vec![Vec::new(); configs.len()];
    let mut checkpoints: Vec<Vec<(CheckpointCount, u64)>> =
        vec![vec![Default::default(); WORKLOADS.len()]; configs.len()];
    let mut native_runs = Vec::new();
    let mut null_calls: Vec<Vec<super::ipc::Measured>> = vec![Vec::new(), Vec::new()];
    let mut os_runs = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (index, &substrate) in ordered(&SUBSTRATES, round).iter().enumerate() {
            let slot = SUBSTRATES
                .iter()
                .position(|s| *s == substrate)
                .expect("listed");
            let _ = index;
            null_calls[slot].push(measure(&host, CASES[0], false, 1, substrate)?);
            os_runs[slot].push(time_os_run(&host, substrate)?);
        }
        let mut this_round: Vec<Vec<Workload>> = vec![Vec::new(); configs.len()];
        for (index, workload) in WORKLOADS.into_iter().enumerate() {
            let forward = ordered(&configs, round + index);
            let mirrored: Vec<Config> = forward
                .iter()
                .chain(forward.iter().rev())
                .copied()
                .collect();
            let mut runs: Vec<Vec<Workload>> = vec![Vec::new(); configs.len()];
            for config in mirrored {
                let slot = configs.iter().position(|c| *c == config).expect("listed");
                let (measured, count) = run_once(&host, config.policy, workload, config.substrate)?;
                runs[slot].push(measured);
                // A warm-up and the measured run.
                let (total, workload_runs) = &mut checkpoints[slot][index];
                *total += count;
                *workload_runs += 2;
            }
            for (slot, pair) in runs.iter().enumerate() {
                this_round[slot].push(mean(pair));
            }
        }
        for (slot, figures) in this_round.into_iter().enumerate() {
            ubench_rounds[slot].push(figures);
        }
        native_runs.push(run_native(1)?);
    }
    let mut substrates = Vec::new();
    for (slot, &substrate) in SUBSTRATES.iter().enumerate() {
        substrates.push(SubstrateFigures {
            substrate,
            null_call: null_call(&null_calls[slot])?,
            os_run: Summary::of(&mut os_runs[slot]).ok_or("no OS run")?,
            idle_domain_bytes: idle_domain_bytes(&host, substrate)?,
            recovery: recovery_on(rounds.max(3), substrate)?,
        });
    }
    let ubench = configs
        .iter()
        .zip(ubench_rounds)
        .zip(checkpoints)
        .map(|((&config, rounds), checkpoints)| ConfigWorkloads {
            config,
            workloads: medians(&rounds),
            rounds,
            checkpoints,
        })
        .collect();
    Ok(CompareReport {
        rounds,
        substrates,
        ubench,
        native: merge_native(native_runs),
        bare_exit,
        overhead_exit,
    })
}

/// `items` forward in even turns, backward in odd ones.
fn ordered<T: Copy>(items: &[T], turn: usize) -> Vec<T> {
    let mut order = items.to_vec();
    if turn % 2 == 1 {
        order.reverse();
    }
    order
}

fn null_call(runs: &[super::ipc::Measured]) -> Result<NullCall, Box<dyn std::error::Error>> {
    let mut intervals: Vec<Duration> = runs
        .iter()
        .flat_map(|m| m.client_intervals.clone())
        .collect();
    let count = runs.len().max(1) as f64;
    Ok(NullCall {
        round_trip: Summary::of(&mut intervals).ok_or("the client made no calls")?,
        exits_per_call: runs.iter().map(|m| m.exits_per_call).sum::<f64>() / count,
        vmm_switches_per_call: runs.iter().map(|m| m.vmm_switches_per_call).sum::<f64>() / count,
    })
}

/// The OS booted on `substrate`, `hello-os` run to its end, the OS shut down.
fn time_os_run(
    host: &KvmHost,
    substrate: Substrate,
) -> Result<Duration, Box<dyn std::error::Error>> {
    const OS: &str = include_str!("../../../../systems/os.toml");
    let description =
        SystemDescription::from_toml_str(OS, &|name| ankh_image_catalog::find(name).is_some())?;
    let disk = crate::disk_image::DiskImage::temporary()?;
    disk.write_file(
        crate::system::INIT_JOBS,
        crate::system::init_jobs(&["hello-os"])?.as_bytes(),
    )?;
    let options = SystemOptions {
        disk: Some(disk.path().to_owned()),
        root_fs: root_fs_with_jobs(&["hello-os"])?.into(),
        substrate,
        ..SystemOptions::new(std::sync::Arc::new(
            |_| Box::new(CapturedConsole::default()),
        ))
    };
    let image_of = |name: &str| {
        let builtin = ankh_image_catalog::find(name)
            .ok_or_else(|| crate::ImageError::Load(format!("{name} is not built in")))?;
        GuestImage::parse(builtin.name, builtin.elf.to_vec())
    };
    let start = Instant::now();
    let report = run_system(host, &description, &image_of, &options)?;
    let elapsed = start.elapsed();
    if report.stop.is_some() {
        return Err(format!("the OS on {} stopped: {:?}", substrate.name(), report.stop).into());
    }
    Ok(elapsed)
}

/// Host memory per idle domain: the growth of the proportional set size of the VMM
/// and of the domains' processes while `IDLE_DOMAINS` domains sit at their first
/// hypercall (kernel memory, e.g. KVM's own structures and page tables, is not
/// counted).
fn idle_domain_bytes(
    host: &KvmHost,
    substrate: Substrate,
) -> Result<u64, Box<dyn std::error::Error>> {
    let probe = ankh_image_catalog::find("boot-probe").ok_or("boot-probe is not built in")?;
    let image = GuestImage::parse(probe.name, probe.elf.to_vec())?;
    let config = DomainConfig {
        substrate,
        ..DomainConfig::named("idle")
    };
    let before = pss_bytes("self")?;
    let mut alive = Vec::new();
    for _ in 0..IDLE_DOMAINS {
        let mut domain =
            Domain::create(host, &config, &image, Box::new(CapturedConsole::default()))?;
        domain.run_until(|call| call == virtio_seep::abi::hypercall::Hypercall::Nop)?;
        alive.push(domain);
    }
    let mut after = pss_bytes("self")?;
    for domain in &alive {
        if let Some(pid) = domain.process_id() {
            after += pss_bytes(&pid.to_string())?;
        }
    }
    drop(alive);
    Ok(after.saturating_sub(before) / IDLE_DOMAINS as u64)
}

/// The proportional set size of process `pid` (`self` for this one), in bytes.
fn pss_bytes(pid: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    let kib: u64 = rollup
        .lines()
        .find_map(|line| line.strip_prefix("Pss:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or("no Pss line in smaps_rollup")?;
    Ok(kib * 1024)
}

/// The native rounds as one report (medians over them).
fn merge_native(runs: Vec<NativeReport>) -> NativeReport {
    let mut merged = runs.into_iter();
    let mut first = merged.next().expect("rounds >= 1");
    for report in merged {
        first.runs.extend(report.runs);
    }
    first.rounds = first.runs.len();
    first.workloads = medians(&first.runs);
    first
}

/// Per workload, the median over the rounds of `base / other` in operations per second.
pub fn paired(base: &ConfigWorkloads, other: &ConfigWorkloads) -> Vec<f64> {
    paired_slowdowns(&base.rounds, &other.rounds)
}

/// The geometric mean of positive ratios.
pub fn geomean(ratios: &[f64]) -> f64 {
    let logs: Vec<f64> = ratios
        .iter()
        .filter(|r| **r > 0.0)
        .map(|r| r.ln())
        .collect();
    (logs.iter().sum::<f64>() / logs.len().max(1) as f64).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_is_mirrored_every_other_turn() {
        assert_eq!(ordered(&[1, 2, 3], 0), [1, 2, 3]);
        assert_eq!(ordered(&[1, 2, 3], 1), [3, 2, 1]);
    }

    #[test]
    fn the_geometric_mean_of_ratios() {
        assert!((geomean(&[2.0, 8.0]) - 4.0).abs() < 1e-9);
        assert!((geomean(&[1.0]) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_projection_that_would_leave_nothing_is_not_made() {
        assert_eq!(report::project(100.0, 2.0, 20.0), Some(60.0));
        // fcopy-1k in one run: 85.2 us per operation, 4.1 exits of 21 us saved each.
        assert_eq!(report::project(85.2, 4.1, 21.0), None);
    }

    #[test]
    fn four_configurations_two_per_substrate() {
        let labels: Vec<String> = configs().iter().map(Config::label).collect();
        assert_eq!(
            labels,
            [
                "kvm-none",
                "kvm-enhanced",
                "process-none",
                "process-enhanced"
            ]
        );
    }
}
