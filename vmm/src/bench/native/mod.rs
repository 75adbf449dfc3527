//! `ankh bench native`: Linux as the monolithic reference. The workloads of ubench
//! (`ankh_image_catalog::ubench::WORKLOADS`), each made of the real Linux calls that do what
//! the Ankh workload asks its servers to do, with the same operation counts and the
//! same meaning of one operation, so that ops/s compare directly with
//! `ankh bench ubench` (docs/native-reference.md says what each one is and why).
//!
//! As on Ankh, setup (the source file of the copies, the echoing child, the data-store
//! server and its key) happens before the timing starts, and each workload runs twice
//! per round, the second run counting (the first warms up what it touches). The
//! caller pins the process to one CPU first ([`super::pin_to_cpu`]), as
//! `ankh bench ubench` does: children inherit the pinning, so `context1` and
//! `ds-lookup` switch on one core, as the domains of a pinned Ankh do.
//!
//! `fork` copies the calling process's page tables: run these while no Ankh system
//! holds guest memory in the same process, or `spawn` and `execl` pay for it.

mod calls;
mod children;
mod tiny_exe;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ankh_image_catalog::ubench::{Budget, WORKLOADS};
use serde_json::json;

use super::ubench::{medians, Workload};

/// A native workload that could not run.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// A call failed, or a check of its result (a wrong echo, a wrong exit code).
    #[error("native {workload}: {step}")]
    Failed {
        /// The workload.
        workload: &'static str,
        /// What it was doing.
        step: &'static str,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// ubench has a workload this module has no Linux analogue for.
    #[error("native: ubench's workload `{0}` has no Linux analogue yet (vmm/src/bench/native)")]
    Unknown(String),
}

impl NativeError {
    fn failed(workload: &'static str, step: &'static str, source: io::Error) -> NativeError {
        NativeError::Failed {
            workload,
            step,
            source,
        }
    }
}

/// Names the step of a workload an I/O error happened in.
trait During<T> {
    fn during(self, workload: &'static str, step: &'static str) -> Result<T, NativeError>;
}

impl<T> During<T> for io::Result<T> {
    fn during(self, workload: &'static str, step: &'static str) -> Result<T, NativeError> {
        self.map_err(|source| NativeError::failed(workload, step, source))
    }
}

/// One operation's result: on failure, the call that failed and its error.
type OpResult = Result<(), (&'static str, io::Error)>;

/// Runs `op` (given the operation's index) `count` times and times the lot.
fn timed(
    name: &'static str,
    count: u64,
    mut op: impl FnMut(u64) -> OpResult,
) -> Result<Workload, NativeError> {
    let start = Instant::now();
    for i in 0..count {
        op(i).map_err(|(step, source)| NativeError::failed(name, step, source))?;
    }
    Ok(Workload {
        name: name.to_owned(),
        operations: count,
        elapsed: start.elapsed(),
        exits: 0,
    })
}

/// Runs ubench's workload `name` once natively.
fn run_workload(name: &str, budget: &Budget, dir: &Path) -> Result<Workload, NativeError> {
    match name {
        "syscall" => calls::syscall(budget.syscall),
        "pipe" => calls::pipe_round_trips(budget.pipe),
        "context1" => children::context(budget.context),
        "spawn" => children::spawn(budget.spawn),
        "execl" => children::execl(budget.spawn),
        "fcopy-1k" => calls::copy("fcopy-1k", dir, 1024, budget.copy_blocks),
        "fcopy-4k" => calls::copy("fcopy-4k", dir, 4096, budget.copy_blocks),
        "ds-lookup" => children::ds_lookup(budget.ds),
        other => Err(NativeError::Unknown(other.to_owned())),
    }
}

/// What `ankh bench native` measured.
#[derive(Debug)]
pub struct NativeReport {
    /// Rounds (each ran every workload twice: a warm-up, then the measured run).
    pub rounds: usize,
    /// The directory of the copies' files.
    pub copy_dir: PathBuf,
    /// Whether that directory is a tmpfs (RAM, as the Ankh side's disk image is).
    pub copy_dir_tmpfs: bool,
    /// Each workload's median run over the rounds, in ubench's order.
    pub workloads: Vec<Workload>,
    /// Each round's measured runs, in ubench's order.
    pub runs: Vec<Vec<Workload>>,
}

impl NativeReport {
    /// The median operations per second of workload `name`.
    pub fn per_second(&self, name: &str) -> Option<f64> {
        self.workloads
            .iter()
            .find(|w| w.name == name)
            .map(Workload::per_second)
    }

    /// The slowest and fastest rounds of workload `index`, in operations per second.
    fn spread(&self, index: usize) -> (f64, f64) {
        self.runs
            .iter()
            .filter_map(|round| round.get(index).map(Workload::per_second))
            .fold((f64::INFINITY, 0.0), |(low, high), rate| {
                (low.min(rate), high.max(rate))
            })
    }

    /// The report as JSON (what `--json` prints).
    pub fn to_json(&self) -> serde_json::Value {
        let workloads: Vec<serde_json::Value> = self
            .workloads
            .iter()
            .enumerate()
            .map(|(index, w)| {
                let (slowest, fastest) = self.spread(index);
                let rounds: Vec<f64> = self
                    .runs
                    .iter()
                    .filter_map(|round| round.get(index).map(Workload::per_second))
                    .collect();
                json!({
                    "name": w.name,
                    "operations": w.operations,
                    "ops_per_second": w.per_second(),
                    "median_seconds": w.elapsed.as_secs_f64(),
                    "slowest_ops_per_second": slowest,
                    "fastest_ops_per_second": fastest,
                    "rounds_ops_per_second": rounds,
                })
            })
            .collect();
        json!({
            "rounds": self.rounds,
            "copy_dir": self.copy_dir,
            "copy_dir_tmpfs": self.copy_dir_tmpfs,
            "workloads": workloads,
        })
    }
}

impl fmt::Display for NativeReport {
    /// A Markdown table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ankh bench native: ubench's workloads as Linux calls (median of {} rounds; copies in {}{})",
            self.rounds,
            self.copy_dir.display(),
            if self.copy_dir_tmpfs { ", a tmpfs" } else { ", not a tmpfs" }
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "| workload | operations | ops/s (median) | us/op | slowest-fastest ops/s |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|")?;
        for (index, w) in self.workloads.iter().enumerate() {
            let (slowest, fastest) = self.spread(index);
            writeln!(
                f,
                "| {} | {} | {:.0} | {:.2} | {:.0}-{:.0} |",
                w.name,
                w.operations,
                w.per_second(),
                1e6 / w.per_second(),
                slowest,
                fastest
            )?;
        }
        Ok(())
    }
}

/// Runs every ubench workload natively `rounds` times with ubench's operation counts.
/// Does not pin: the caller does ([`super::pin_to_cpu`]), once for everything it
/// compares.
pub fn run_native(rounds: usize) -> Result<NativeReport, NativeError> {
    run_native_with(&Budget::DEFAULT, rounds)
}

/// [`run_native`] with other operation counts.
pub fn run_native_with(budget: &Budget, rounds: usize) -> Result<NativeReport, NativeError> {
    let (copy_dir, copy_dir_tmpfs) = copy_dir();
    let mut runs = Vec::new();
    for _ in 0..rounds.max(1) {
        let mut round = Vec::new();
        for name in WORKLOADS {
            run_workload(name, budget, &copy_dir)?;
            round.push(run_workload(name, budget, &copy_dir)?);
        }
        runs.push(round);
    }
    Ok(NativeReport {
        rounds: runs.len(),
        copy_dir,
        copy_dir_tmpfs,
        workloads: medians(&runs),
        runs,
    })
}

/// Where the copies' files go: the temporary directory if it is a tmpfs, else
/// `/dev/shm` if that is a writable tmpfs, else the temporary directory anyway. The
/// Ankh side copies on an ext2 whose disk is an image in RAM; a tmpfs keeps the native
/// copies off a real disk's writeback too. Set `TMPDIR` to choose.
fn copy_dir() -> (PathBuf, bool) {
    let temp = std::env::temp_dir();
    if is_tmpfs(&temp) {
        return (temp, true);
    }
    let shm = Path::new("/dev/shm");
    if is_tmpfs(shm) && is_writable(shm) {
        return (shm.to_owned(), true);
    }
    (temp, false)
}

/// A path as a C string (`None` if it holds a NUL byte).
fn c_path(path: &Path) -> Option<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).ok()
}

fn is_tmpfs(path: &Path) -> bool {
    let Some(path) = c_path(path) else {
        return false;
    };
    // SAFETY: `statfs` is plain data, for which all zeros is a valid value.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `fs` a valid place for statfs to write.
    let ok = unsafe { libc::statfs(path.as_ptr(), &mut fs) } == 0;
    ok && fs.f_type == libc::TMPFS_MAGIC
}

fn is_writable(path: &Path) -> bool {
    let Some(path) = c_path(path) else {
        return false;
    };
    // SAFETY: `path` is NUL-terminated; access only reads it.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Few operations: the test checks that every workload works, not its speed.
    const SMALL: Budget = Budget {
        syscall: 20,
        pipe: 20,
        context: 20,
        spawn: 3,
        copy_blocks: 70,
        ds: 20,
    };

    #[test]
    fn every_ubench_workload_runs_natively_with_its_count() {
        let report = run_native_with(&SMALL, 1).expect("the native workloads run");
        let names: Vec<&str> = report.workloads.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, WORKLOADS);
        for w in &report.workloads {
            assert!(w.operations > 0, "{w:?}");
            let expected = match w.name.as_str() {
                "syscall" => SMALL.syscall,
                "pipe" => SMALL.pipe,
                "context1" => SMALL.context,
                "spawn" | "execl" => SMALL.spawn,
                "ds-lookup" => SMALL.ds,
                _ => SMALL.copy_blocks,
            };
            assert_eq!(w.operations, expected, "{}", w.name);
        }
        assert_eq!(report.runs.len(), 1);
        let json = report.to_json();
        assert_eq!(
            json["workloads"].as_array().map(Vec::len),
            Some(WORKLOADS.len())
        );
        let table = report.to_string();
        for name in WORKLOADS {
            assert!(table.contains(&format!("| {name} |")), "{table}");
        }
    }

    #[test]
    fn the_copies_leave_no_file_behind() {
        let dir = std::env::temp_dir().join(format!("ankh-native-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let w = calls::copy("fcopy-1k", &dir, 1024, 130).expect("the copy runs");
        assert_eq!(w.operations, 130);
        let left = std::fs::read_dir(&dir).unwrap().count();
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn an_unknown_workload_is_an_error_not_a_silent_gap() {
        let err = run_workload("fork-bomb", &SMALL, Path::new("/nonexistent")).unwrap_err();
        assert!(matches!(err, NativeError::Unknown(ref name) if name == "fork-bomb"));
    }
}
