//! `ankh bench storage`: file I/O through VFS, ext2 and the blk driver domain against
//! the same patterns on a host file in the same run; the file-copy workloads of ubench
//! on the disk against VFS in memory; and how long a crashed blk takes to serve again.
//!
//! The workloads are `disk-bench`'s (`ankh_apps::diskbench`): 16 MiB written and read
//! sequentially in 1 MiB calls, 2048 random 4 KiB writes and reads, each write phase
//! ending with `fsync` (with `fdatasync` on the host). Host reads come from the page
//! cache, as the guest's come partly from VFS's block cache.

use std::fmt;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use ankh_domains::Policy;
use ankh_proto::diskbench::{
    random_offset, FILE_SIZE, RANDOM_BYTES, RANDOM_CHUNK, RANDOM_OPS, SEQ_CHUNK,
};

use super::stats::{micros, Summary};
use super::ubench::{medians, run_marked, MarkedRun, Workload};
use crate::kvm_host::KvmHost;
use crate::system::injection::PlannedKill;

/// What `ankh bench storage` measured (medians over the rounds).
#[derive(Debug)]
pub struct StorageReport {
    /// Rounds of each measurement.
    pub rounds: usize,
    /// The workloads on a host file.
    pub host: Vec<Workload>,
    /// The workloads in Ankh, recovery off.
    pub ankh: Vec<Workload>,
    /// The workloads in Ankh, enhanced recovery for the servers (blk stateless).
    pub ankh_recovery: Vec<Workload>,
    /// ubench's file copies with the files on the disk.
    pub fcopy_disk: Vec<Workload>,
    /// ubench's file copies with the files in VFS memory.
    pub fcopy_memory: Vec<Workload>,
    /// blk crashed mid-request: from the fault to its first reply after the restart.
    pub blk_resume: Option<Summary>,
    /// blk crashes injected, and how many the workloads noticed (failed phases).
    pub blk_kills: (usize, usize),
}

fn mib_per_s(w: &Workload) -> f64 {
    w.operations as f64 / (1 << 20) as f64 / w.elapsed.as_secs_f64()
}

impl fmt::Display for StorageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ankh bench storage (median of {} runs)", self.rounds)?;
        writeln!(
            f,
            "{:<11} {:>12} {:>12} {:>8} {:>14} {:>8}",
            "workload", "host MiB/s", "ankh MiB/s", "ratio", "ankh+recovery", "ratio"
        )?;
        for ((host, ankh), rec) in self.host.iter().zip(&self.ankh).zip(&self.ankh_recovery) {
            writeln!(
                f,
                "{:<11} {:>12.1} {:>12.1} {:>7.3}x {:>14.1} {:>7.3}x",
                host.name,
                mib_per_s(host),
                mib_per_s(ankh),
                mib_per_s(ankh) / mib_per_s(host),
                mib_per_s(rec),
                mib_per_s(rec) / mib_per_s(host)
            )?;
        }
        for (disk, memory) in self.fcopy_disk.iter().zip(&self.fcopy_memory) {
            writeln!(
                f,
                "ubench {:<9} on disk {:.0} ops/s, in VFS memory {:.0} ops/s ({:.2}x)",
                disk.name,
                disk.per_second(),
                memory.per_second(),
                disk.per_second() / memory.per_second()
            )?;
        }
        match &self.blk_resume {
            Some(s) => writeln!(
                f,
                "blk crash to its first served request after restart: median {}, p99 {} ({} crashes, {} noticed by the program)",
                micros(s.median),
                micros(s.p99),
                self.blk_kills.0,
                self.blk_kills.1
            ),
            None => writeln!(f, "blk crash: no resumption measured"),
        }
    }
}

/// The `disk-bench` patterns on a host file in the temporary directory.
fn host_run() -> Result<Vec<Workload>, Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join(format!("ankh-bench-{}.dat", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    let mut buf = vec![0x5au8; SEQ_CHUNK];
    let mut workloads = Vec::new();
    let mut timed = |name: &str, bytes: usize, op: &mut dyn FnMut() -> std::io::Result<()>| {
        let start = Instant::now();
        let result = op();
        workloads.push(Workload {
            name: name.to_owned(),
            operations: bytes as u64,
            elapsed: start.elapsed(),
            exits: 0,
        });
        result
    };
    timed("seq-write", FILE_SIZE, &mut || {
        for at in (0..FILE_SIZE).step_by(SEQ_CHUNK) {
            file.write_all_at(&buf, at as u64)?;
        }
        file.sync_data()
    })?;
    timed("seq-read", FILE_SIZE, &mut || {
        for at in (0..FILE_SIZE).step_by(SEQ_CHUNK) {
            file.read_exact_at(&mut buf, at as u64)?;
        }
        Ok(())
    })?;
    let random_bytes = RANDOM_BYTES;
    let page = vec![0xa5u8; RANDOM_CHUNK];
    timed("rand-write", random_bytes, &mut || {
        for i in 0..RANDOM_OPS {
            file.write_all_at(&page, random_offset(i))?;
        }
        file.sync_data()
    })?;
    let mut page = vec![0u8; RANDOM_CHUNK];
    timed("rand-read", random_bytes, &mut || {
        for i in 0..RANDOM_OPS {
            file.read_exact_at(&mut page, random_offset(i))?;
        }
        Ok(())
    })?;
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(workloads)
}

/// Runs everything `rounds` times, alternating host and Ankh runs.
pub fn run(rounds: usize) -> Result<StorageReport, Box<dyn std::error::Error>> {
    let host = KvmHost::open()?;
    let rounds = rounds.max(1);
    let (mut host_runs, mut ankh_runs, mut recovery_runs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut disk_copies, mut memory_copies) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        host_runs.push(host_run()?);
        ankh_runs.push(run_marked(&host, &MarkedRun::new("disk-bench", Policy::None))?.0);
        let mut enhanced = MarkedRun::new("disk-bench", Policy::Enhanced);
        enhanced.kills = Vec::new();
        recovery_runs.push(stateless_blk(&host, enhanced)?.0);
        let copies = |w: Vec<Workload>| -> Vec<Workload> {
            w.into_iter()
                .filter(|w| w.name.starts_with("fcopy"))
                .collect()
        };
        disk_copies.push(copies(
            run_marked(&host, &MarkedRun::new("ubench", Policy::None))?.0,
        ));
        let mut memory = MarkedRun::new("ubench", Policy::None);
        memory.in_memory = true;
        memory_copies.push(copies(run_marked(&host, &memory)?.0));
    }
    // blk crashes spread over the workloads; each is restarted, VFS re-issues.
    let mut crashed = MarkedRun::new("disk-bench", Policy::Enhanced);
    crashed.kills = (1..=20)
        .map(|k| PlannedKill::crash("blk", k * 37))
        .collect();
    let (workloads, report) = stateless_blk(&host, crashed)?;
    let mut resumes: Vec<Duration> = report
        .resumptions
        .iter()
        .filter(|r| r.domain == "blk")
        .map(|r| r.after)
        .collect();
    let kills = report
        .recoveries
        .iter()
        .filter(|e| e.domain_name == "blk")
        .count();
    let noticed = 4usize.saturating_sub(workloads.len());
    Ok(StorageReport {
        rounds,
        host: medians(&host_runs),
        ankh: medians(&ankh_runs),
        ankh_recovery: medians(&recovery_runs),
        fcopy_disk: medians(&disk_copies),
        fcopy_memory: medians(&memory_copies),
        blk_resume: Summary::of(&mut resumes),
        blk_kills: (kills, noticed),
    })
}

/// [`run_marked`], with blk under the stateless policy (as in systems/os.toml) whatever
/// the other servers run under.
fn stateless_blk(
    host: &KvmHost,
    run: MarkedRun<'_>,
) -> Result<(Vec<Workload>, crate::system::SystemReport), Box<dyn std::error::Error>> {
    let mut run = run;
    run.stateless_disk = true;
    run_marked(host, &run)
}
