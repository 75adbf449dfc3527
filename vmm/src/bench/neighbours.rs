//! `ankh bench neighbours`: what hostile neighbours cost the conformance suite.
//!
//! The suite runs on the OS alone (the baseline), and beside four `hog` programs that
//! try to take more than their share (`spin`: computes without exits; `exits`: exits to
//! the VMM in a loop; `calls`: calls PM in a loop; `replies`: floods VFS with reads it
//! never takes the replies of). Each round runs A B B A (alone, beside, beside, alone),
//! and the round's slowdown compares the two pairs, which cancels a drift of the
//! host's speed within the round. What is timed: from the start of the system to the
//! suite's last line (`N passed, M failed`), so boot is in both. With fair turns the
//! hogs get their share of the thread and nothing more.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ankh_domains::SystemDescription;

use crate::console::ConsoleSink;
use crate::disk_image::DiskImage;
use crate::image::GuestImage;
use crate::kvm_host::KvmHost;
use crate::system::{init_jobs, root_fs_with_jobs, run_system, SystemOptions, INIT_JOBS};

/// The OS the suite runs on.
const OS: &str = include_str!("../../../systems/os.toml");

/// The neighbours, beside the suite.
pub const HOGS: [&str; 4] = ["hog spin", "hog exits", "hog calls", "hog replies"];

/// What the benchmark measured.
#[derive(Debug)]
pub struct NeighboursReport {
    /// The suite alone, per run.
    pub alone: Vec<Duration>,
    /// The suite beside the hogs, per run.
    pub beside: Vec<Duration>,
    /// Per round, (beside, beside) / (alone, alone).
    pub slowdowns: Vec<f64>,
    /// The suite's result line beside the hogs, in the last run.
    pub suite_line: String,
}

/// Records when the suite printed its result line.
#[derive(Clone)]
struct SuiteEnd {
    at: Arc<Mutex<Option<(Instant, String)>>>,
}

impl ConsoleSink for SuiteEnd {
    fn line(&mut self, domain: &str, line: &str) {
        if domain == "suite" && line.ends_with(" failed") {
            *self.at.lock().expect("suite end lock") = Some((Instant::now(), line.to_owned()));
        }
    }
}

/// Runs the suite on the OS with `jobs` beside it; the time to its last line, and that
/// line.
fn time_suite(
    host: &KvmHost,
    jobs: &[&str],
) -> Result<(Duration, String), Box<dyn std::error::Error>> {
    let description =
        SystemDescription::from_toml_str(OS, &|name| ankh_image_catalog::find(name).is_some())?;
    let disk = DiskImage::temporary()?;
    disk.write_file(INIT_JOBS, init_jobs(jobs)?.as_bytes())?;
    let end = SuiteEnd {
        at: Arc::new(Mutex::new(None)),
    };
    let sink = end.clone();
    let options = SystemOptions {
        disk: Some(disk.path().to_owned()),
        root_fs: root_fs_with_jobs(jobs)?.into(),
        ..SystemOptions::new(Arc::new(move |_| -> Box<dyn ConsoleSink> {
            Box::new(sink.clone())
        }))
    };
    let image_of = |name: &str| {
        let builtin = ankh_image_catalog::find(name)
            .ok_or_else(|| crate::ImageError::Load(format!("{name} is not built in")))?;
        GuestImage::parse(builtin.name, builtin.elf.to_vec())
    };
    let start = Instant::now();
    run_system(host, &description, &image_of, &options)?;
    let (at, line) = end
        .at
        .lock()
        .expect("suite end lock")
        .take()
        .ok_or("the suite printed no result line")?;
    Ok((at.duration_since(start), line))
}

/// Runs `rounds` rounds of A B B A.
pub fn run(rounds: usize) -> Result<NeighboursReport, Box<dyn std::error::Error>> {
    let host = KvmHost::open()?;
    let mut beside_jobs = vec!["suite"];
    beside_jobs.extend(HOGS);
    // Warm-up: images parsed, host caches filled.
    time_suite(&host, &["suite"])?;
    let mut report = NeighboursReport {
        alone: Vec::new(),
        beside: Vec::new(),
        slowdowns: Vec::new(),
        suite_line: String::new(),
    };
    for _ in 0..rounds.max(1) {
        let (a1, _) = time_suite(&host, &["suite"])?;
        let (b1, _) = time_suite(&host, &beside_jobs)?;
        let (b2, line) = time_suite(&host, &beside_jobs)?;
        let (a2, _) = time_suite(&host, &["suite"])?;
        report.alone.extend([a1, a2]);
        report.beside.extend([b1, b2]);
        report
            .slowdowns
            .push((b1 + b2).as_secs_f64() / (a1 + a2).as_secs_f64());
        report.suite_line = line;
    }
    Ok(report)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn median_duration(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

impl fmt::Display for NeighboursReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the suite alone vs beside {} ({} rounds, A B B A)",
            HOGS.join(", "),
            self.slowdowns.len()
        )?;
        writeln!(
            f,
            "alone:  median {:.1} ms (boot to the suite's result line)",
            median_duration(&self.alone).as_secs_f64() * 1e3
        )?;
        writeln!(
            f,
            "beside: median {:.1} ms; the suite said: {}",
            median_duration(&self.beside).as_secs_f64() * 1e3,
            self.suite_line
        )?;
        let rounds: Vec<String> = self.slowdowns.iter().map(|s| format!("{s:.2}")).collect();
        writeln!(
            f,
            "slowdown: median {:.2}x (per round: {})",
            median(&self.slowdowns),
            rounds.join(" ")
        )
    }
}
