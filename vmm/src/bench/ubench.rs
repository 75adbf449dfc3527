//! `ankh bench ubench`: the Unixbench-style workloads of the `ubench` program, run on
//! the OS (systems/os.toml), timed by the VMM.
//!
//! The guest has no clock. `ubench` brackets each workload with two `Nop` hypercalls
//! and prints `ubench: <name> <operations>` after it; the VMM timestamps the `Nop`s of
//! the domain named `ubench`, so the k-th pair times the k-th line. Operations per
//! second = operations / time between the pair.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ankh_domains::{Policy, SystemDescription};

use crate::console::{CapturedConsole, ConsoleSink};
use crate::disk_image::DiskImage;
use crate::image::GuestImage;
use crate::kvm_host::KvmHost;
use crate::system::{
    init_jobs, root_fs_with_jobs, run_system, SystemOptions, TraceEvent, INIT_JOBS,
};

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
    /// Runs of the whole program per policy.
    pub rounds: usize,
    /// The policy compared with `none`.
    pub policy: Policy,
    /// Each workload without recovery, median over the rounds by operations per second.
    pub baseline: Vec<Workload>,
    /// Each workload under `policy`.
    pub workloads: Vec<Workload>,
}

impl fmt::Display for UbenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ankh bench ubench (median of {} runs per policy)",
            self.rounds
        )?;
        writeln!(
            f,
            "{:<12} {:>8} {:>14} {:>16} {:>10}",
            "workload",
            "ops",
            "ops/s none",
            format!("ops/s {}", self.policy),
            "overhead"
        )?;
        let mut log_sum = 0.0;
        for (base, w) in self.baseline.iter().zip(&self.workloads) {
            let ratio = base.per_second() / w.per_second();
            log_sum += ratio.ln();
            writeln!(
                f,
                "{:<12} {:>8} {:>14.0} {:>16.0} {:>9.1}%",
                w.name,
                w.operations,
                base.per_second(),
                w.per_second(),
                (ratio - 1.0) * 100.0
            )?;
        }
        let geo = (log_sum / self.workloads.len().max(1) as f64).exp();
        writeln!(
            f,
            "geometric-mean overhead of {} against none: {:.1}%",
            self.policy,
            (geo - 1.0) * 100.0
        )
    }
}

/// Runs `ubench` `rounds` times without recovery and `rounds` times under `policy`,
/// alternating so both see the same machine.
pub fn run(rounds: usize, policy: Policy) -> Result<UbenchReport, Box<dyn std::error::Error>> {
    let host = KvmHost::open()?;
    let (mut base_runs, mut runs) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        base_runs.push(run_once(&host, Policy::None)?);
        runs.push(run_once(&host, policy)?);
    }
    Ok(UbenchReport {
        rounds: runs.len(),
        policy,
        baseline: medians(&base_runs),
        workloads: medians(&runs),
    })
}

/// The median run of each workload.
fn medians(runs: &[Vec<Workload>]) -> Vec<Workload> {
    (0..runs[0].len())
        .map(|index| {
            let mut samples: Vec<Workload> =
                runs.iter().filter_map(|r| r.get(index).cloned()).collect();
            samples.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
            samples[samples.len() / 2].clone()
        })
        .collect()
}

fn run_once(host: &KvmHost, policy: Policy) -> Result<Vec<Workload>, Box<dyn std::error::Error>> {
    let mut description =
        SystemDescription::from_toml_str(OS, &|name| ankh_images::find(name).is_some())?;
    for spec in &mut description.domains {
        spec.policy = policy;
    }
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let recorder = Arc::clone(&stamps);
    let console = CapturedConsole::default();
    let sink = console.clone();
    // The OS's files live on its disk: a fresh copy of the root disk per run.
    let disk = DiskImage::temporary()?;
    disk.write_file(INIT_JOBS, init_jobs(&["ubench"])?.as_bytes())?;
    let options = SystemOptions {
        disk: Some(disk.path().to_owned()),
        watchdog_timeout: Duration::from_secs(10),
        root_fs: root_fs_with_jobs(&["ubench"])?.into(),
        ipc_trace: Some(Arc::new(move |event, _, domain| {
            if event == TraceEvent::Nop && domain.name() == "ubench" {
                recorder.lock().expect("stamps lock").push(Instant::now());
            }
        })),
        ..SystemOptions::new(Arc::new(move |name| -> Box<dyn ConsoleSink> {
            match name {
                "ubench" => Box::new(sink.clone()),
                _ => Box::new(CapturedConsole::default()),
            }
        }))
    };
    let image_of = |name: &str| {
        let builtin = ankh_images::find(name)
            .ok_or_else(|| crate::ImageError::Load(format!("{name} is not built in")))?;
        GuestImage::parse(builtin.name, builtin.elf.to_vec())
    };
    run_system(host, &description, &image_of, &options)?;
    let stamps = stamps.lock().expect("stamps lock");
    let mut workloads = Vec::new();
    for (line, pair) in console
        .lines()
        .iter()
        .filter_map(|l| l.strip_prefix("ubench: "))
        .zip(stamps.chunks(2))
    {
        let mut words = line.split_whitespace();
        let (Some(name), Some(count), [start, end]) = (words.next(), words.next(), pair) else {
            continue;
        };
        workloads.push(Workload {
            name: name.to_owned(),
            operations: count.parse()?,
            elapsed: *end - *start,
        });
    }
    if workloads.is_empty() {
        return Err(format!("ubench printed no workload: {:?}", console.lines()).into());
    }
    Ok(workloads)
}
