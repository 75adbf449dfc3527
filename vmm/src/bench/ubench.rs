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

use ankh_domains::SystemDescription;

use crate::console::{CapturedConsole, ConsoleSink};
use crate::image::GuestImage;
use crate::kvm_host::KvmHost;
use crate::system::{root_fs_with_jobs, run_system, SystemOptions, TraceEvent};

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

/// What `ankh bench ubench` measured: the median run of each workload.
#[derive(Debug)]
pub struct UbenchReport {
    /// Runs of the whole program.
    pub rounds: usize,
    /// Each workload, median over the rounds by operations per second.
    pub workloads: Vec<Workload>,
}

impl fmt::Display for UbenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ankh bench ubench (median of {} runs)", self.rounds)?;
        writeln!(
            f,
            "{:<12} {:>10} {:>12} {:>14}",
            "workload", "ops", "time", "ops/s"
        )?;
        for w in &self.workloads {
            writeln!(
                f,
                "{:<12} {:>10} {:>9.1} ms {:>14.0}",
                w.name,
                w.operations,
                w.elapsed.as_secs_f64() * 1e3,
                w.per_second()
            )?;
        }
        Ok(())
    }
}

/// Runs `ubench` `rounds` times.
pub fn run(rounds: usize) -> Result<UbenchReport, Box<dyn std::error::Error>> {
    let host = KvmHost::open()?;
    let mut runs: Vec<Vec<Workload>> = Vec::new();
    for _ in 0..rounds.max(1) {
        runs.push(run_once(&host)?);
    }
    let mut workloads = Vec::new();
    for index in 0..runs[0].len() {
        let mut samples: Vec<Workload> =
            runs.iter().filter_map(|r| r.get(index).cloned()).collect();
        samples.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
        workloads.push(samples[samples.len() / 2].clone());
    }
    Ok(UbenchReport {
        rounds: runs.len(),
        workloads,
    })
}

fn run_once(host: &KvmHost) -> Result<Vec<Workload>, Box<dyn std::error::Error>> {
    let description =
        SystemDescription::from_toml_str(OS, &|name| ankh_images::find(name).is_some())?;
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let recorder = Arc::clone(&stamps);
    let console = CapturedConsole::default();
    let sink = console.clone();
    let options = SystemOptions {
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
