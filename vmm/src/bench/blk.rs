//! `ankh bench blk`: sequential throughput of 1 MiB requests through the block driver
//! domain (client domain → `blk` → virtio-blk device → host file), against the same
//! host file read and written directly in the same run; and the raw cost of an MMIO
//! exit (a device register read) against the port-I/O exit of a hypercall.
//!
//! The client (`blk-bench`) writes `BLK_BENCH_MIB` MiB and flushes, then reads as
//! much, each phase between two `Nop` hypercalls the VMM timestamps. The host baseline
//! does the same `pwrite`s, `fdatasync` and `pread`s on the same file. The `blk` domain
//! runs without recovery (policy `none`) and with the default policy, whose
//! per-request checkpoints copy every page the request dirtied.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ankh_domains::{DomainSpec, Policy, Role, SystemDescription};
use ankh_image_catalog::expect::{
    BLK_BENCH_DISK_MIB, BLK_BENCH_MIB, MMIO_LOOP_COUNT, NOP_LOOP_COUNT,
};

use super::modes::time_run;
use super::stats::{micros, ratio, Summary};
use crate::console::{CapturedConsole, ConsoleSink};
use crate::devices::blk::{BlkStats, DiskFile};
use crate::domain::{Domain, DomainConfig};
use crate::fault::DomainExit;
use crate::image::{GuestImage, ImageError};
use crate::kvm_host::KvmHost;
use crate::system::{run_system, DomainEnd, SystemOptions, TraceEvent};
use crate::x86_boot::GuestMode;

const MIB: usize = 1 << 20;

/// Write and read times of one pass over `BLK_BENCH_MIB` MiB.
#[derive(Clone, Copy, Debug)]
pub struct Pass {
    /// The writes and the flush.
    pub write: Duration,
    /// The reads.
    pub read: Duration,
}

impl Pass {
    fn mib_per_second(time: Duration) -> f64 {
        BLK_BENCH_MIB as f64 / time.as_secs_f64()
    }
}

/// What `ankh bench blk` measured.
#[derive(Debug)]
pub struct BlkReport {
    /// Rounds of each measurement (the figures are medians).
    pub rounds: usize,
    /// One port-I/O exit (`Nop` hypercall).
    pub port_exit: Duration,
    /// One MMIO exit (a read of the device's magic register).
    pub mmio_exit: Duration,
    /// The host file, read and written directly.
    pub host: Pass,
    /// Through the `blk` domain, no recovery.
    pub blk: Pass,
    /// Through the `blk` domain, default recovery (checkpoint per request).
    pub blk_recovery: Pass,
    /// The device's counters after one pass (no recovery).
    pub device: BlkStats,
}

impl fmt::Display for BlkReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ankh bench blk ({BLK_BENCH_MIB} MiB each way in 1 MiB requests, {} MiB file, \
             medians of {} rounds)",
            BLK_BENCH_DISK_MIB, self.rounds
        )?;
        writeln!(
            f,
            "raw exit: port I/O (nop) {}, MMIO (device register read) {} ({} of port I/O)",
            micros(self.port_exit),
            micros(self.mmio_exit),
            ratio(self.mmio_exit, self.port_exit)
        )?;
        writeln!(
            f,
            "{:<34} {:>12} {:>10} {:>12} {:>10}",
            "path", "write MiB/s", "of host", "read MiB/s", "of host"
        )?;
        let host = self.host;
        for (name, pass) in [
            ("host file (pwrite+fdatasync/pread)", host),
            ("client -> blk -> device, no recovery", self.blk),
            ("  ... with recovery (enhanced)", self.blk_recovery),
        ] {
            writeln!(
                f,
                "{:<34} {:>12.0} {:>10} {:>12.0} {:>10}",
                name,
                Pass::mib_per_second(pass.write),
                ratio(host.write, pass.write),
                Pass::mib_per_second(pass.read),
                ratio(host.read, pass.read),
            )?;
        }
        let messages = 2 * BLK_BENCH_MIB + 1;
        let d = self.device;
        writeln!(
            f,
            "device per pass: {} requests, {} notifies (MMIO exits) for {} messages; \
             {} MiB read, {} MiB written, {} flush",
            d.requests,
            d.notifies,
            messages,
            d.bytes_read >> 20,
            d.bytes_written >> 20,
            d.flushes
        )
    }
}

/// Runs every measurement `rounds` times.
pub fn run(rounds: usize) -> Result<BlkReport, Box<dyn std::error::Error>> {
    let rounds = rounds.max(1);
    let host = KvmHost::open()?;
    let path = std::env::temp_dir().join(format!("ankh-bench-blk-{}.img", std::process::id()));
    let result = measure(&host, &path, rounds);
    let _ = std::fs::remove_file(&path);
    result
}

fn measure(
    host: &KvmHost,
    path: &Path,
    rounds: usize,
) -> Result<BlkReport, Box<dyn std::error::Error>> {
    let file = File::create(path)?;
    file.set_len(BLK_BENCH_DISK_MIB << 20)?;
    drop(file);
    let (mut ports, mut mmios) = (Vec::new(), Vec::new());
    let (mut hosts, mut plain, mut recovering) = (Vec::new(), Vec::new(), Vec::new());
    let mut device = BlkStats::default();
    for _ in 0..rounds {
        ports.push(time_run(host, "nop-loop", GuestMode::User)? / NOP_LOOP_COUNT);
        mmios.push(mmio_loop(host, path)? / MMIO_LOOP_COUNT);
        hosts.push(host_pass(path)?);
        let (pass, stats) = blk_pass(host, path, Policy::None)?;
        plain.push(pass);
        device = stats;
        recovering.push(blk_pass(host, path, Policy::Enhanced)?.0);
    }
    let median = |samples: &mut Vec<Duration>| Summary::of(samples).expect("rounds >= 1").median;
    let pass = |passes: &[Pass]| Pass {
        write: median(&mut passes.iter().map(|p| p.write).collect()),
        read: median(&mut passes.iter().map(|p| p.read).collect()),
    };
    Ok(BlkReport {
        rounds,
        port_exit: median(&mut ports),
        mmio_exit: median(&mut mmios),
        host: pass(&hosts),
        blk: pass(&plain),
        blk_recovery: pass(&recovering),
        device,
    })
}

/// `mmio-loop` in a domain that owns the disk at `path`: its run time (creation
/// excluded).
fn mmio_loop(host: &KvmHost, path: &Path) -> Result<Duration, Box<dyn std::error::Error>> {
    let config = DomainConfig {
        disk: Some(Arc::new(DiskFile::open(path)?)),
        ..DomainConfig::named("mmio-loop")
    };
    let mut domain = Domain::create(host, &config, &builtin("mmio-loop")?, quiet())?;
    let start = Instant::now();
    let exit = domain.run()?;
    let elapsed = start.elapsed();
    match exit {
        DomainExit::Exited { code: 0 } => Ok(elapsed),
        other => Err(format!("mmio-loop: {other}").into()),
    }
}

/// The host baseline: the same writes (and a flush) and reads on the file directly.
fn host_pass(path: &Path) -> Result<Pass, Box<dyn std::error::Error>> {
    let file = File::options().read(true).write(true).open(path)?;
    let mut buffer: Vec<u8> = (0..MIB)
        .map(|i| u8::try_from(i % 251).expect("below 251"))
        .collect();
    let offset = |mib: u64| (mib % BLK_BENCH_DISK_MIB) << 20;
    let start = Instant::now();
    for mib in 0..BLK_BENCH_MIB {
        file.write_all_at(&buffer, offset(mib))?;
    }
    file.sync_data()?;
    let write = start.elapsed();
    let start = Instant::now();
    for mib in 0..BLK_BENCH_MIB {
        file.read_exact_at(&mut buffer, offset(mib))?;
    }
    Ok(Pass {
        write,
        read: start.elapsed(),
    })
}

/// One pass of `blk-bench` through a `blk` domain under `policy`: the two phases'
/// times, and the device's counters at the end.
fn blk_pass(
    host: &KvmHost,
    path: &Path,
    policy: Policy,
) -> Result<(Pass, BlkStats), Box<dyn std::error::Error>> {
    let description = SystemDescription::builder()
        .domain(
            DomainSpec::new("blk", "blk")
                .disk(true)
                .memory_mib(8)
                .policy(policy),
        )
        .domain(
            DomainSpec::new("blk-bench", "blk-bench")
                .role(Role::Process)
                .memory_mib(8)
                .calls(["blk"]),
        )
        .build(&|name| ankh_image_catalog::find(name).is_some())?;
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let device = Arc::new(Mutex::new(BlkStats::default()));
    let (recorder, counter) = (Arc::clone(&stamps), Arc::clone(&device));
    let options = SystemOptions {
        watchdog_timeout: Duration::from_secs(10),
        disk: Some(PathBuf::from(path)),
        ipc_trace: Some(Arc::new(move |event, _, domain| {
            if event == TraceEvent::Nop && domain.name() == "blk-bench" {
                recorder.lock().expect("stamps lock").push(Instant::now());
            }
            if let Some(stats) = domain.blk_stats() {
                *counter.lock().expect("stats lock") = stats;
            }
        })),
        ..SystemOptions::new(Arc::new(|_| quiet()))
    };
    let image_of = |name: &str| builtin(name);
    let report = run_system(host, &description, &image_of, &options)?;
    match report.end("blk-bench") {
        Some(DomainEnd::Stopped(DomainExit::Exited { code: 0 })) => {}
        other => return Err(format!("blk-bench did not finish: {other:?}").into()),
    }
    let stamps = stamps.lock().expect("stamps lock");
    let [start, written, read] = stamps[..] else {
        return Err(format!("blk-bench made {} Nop hypercalls, not 3", stamps.len()).into());
    };
    let pass = Pass {
        write: written - start,
        read: read - written,
    };
    let stats = *device.lock().expect("stats lock");
    Ok((pass, stats))
}

fn builtin(name: &str) -> Result<GuestImage, ImageError> {
    let image = ankh_image_catalog::find(name)
        .ok_or_else(|| ImageError::Load(format!("{name} is not built in")))?;
    GuestImage::parse(image.name, image.elf.to_vec())
}

fn quiet() -> Box<dyn ConsoleSink> {
    Box::new(CapturedConsole::default())
}
