//! `ankh bench boot`: how long a domain takes from nothing to its first hypercall, and
//! how much resident memory an idle domain costs.
//!
//! Baseline, measured in the same run and interleaved with the real thing: creating a
//! bare KVM VM and vCPU, the floor no domain can go below.

use std::fmt;
use std::time::Instant;

use virtio_seep::abi::hypercall::Hypercall;

use super::stats::{micros, ratio, Summary};
use crate::console::CapturedConsole;
use crate::domain::{Domain, DomainConfig, DomainError, DEFAULT_MEMORY_SIZE};
use crate::image::GuestImage;
use crate::kvm_host::KvmHost;

/// The image every benchmark domain boots.
const PROBE_IMAGE: &str = "boot-probe";

/// What `ankh bench boot` measured.
#[derive(Debug)]
pub struct BootReport {
    /// Bare KVM_CREATE_VM + KVM_CREATE_VCPU.
    pub bare_vm: Summary,
    /// Domain creation (memory, image, boot structures, VM, vCPU) to its first hypercall.
    pub domain_boot: Summary,
    /// Idle domains alive together for the memory figure.
    pub idle_domains: usize,
    /// Growth of the VMM's resident memory per idle domain, in bytes.
    pub rss_per_domain: u64,
}

impl fmt::Display for BootReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ankh bench boot ({} boots, {} MiB guest RAM)",
            self.domain_boot.count,
            DEFAULT_MEMORY_SIZE >> 20
        )?;
        writeln!(f, "{:<44} {:>10} {:>10}", "", "median", "p99")?;
        for (label, s) in [
            ("baseline: bare KVM VM + vCPU creation", self.bare_vm),
            ("domain creation to first hypercall", self.domain_boot),
        ] {
            writeln!(
                f,
                "{label:<44} {:>10} {:>10}",
                micros(s.median),
                micros(s.p99)
            )?;
        }
        writeln!(
            f,
            "ratio domain boot / bare VM (median): {}",
            ratio(self.domain_boot.median, self.bare_vm.median)
        )?;
        writeln!(
            f,
            "resident memory per idle domain ({} alive): {} KiB",
            self.idle_domains,
            self.rss_per_domain / 1024
        )
    }
}

impl BootBenchError {
    /// Whether the command line asked for something impossible.
    pub fn is_usage(&self) -> bool {
        matches!(self, BootBenchError::NoSamples)
    }
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BootBenchError {
    /// The probe image is missing or broken.
    #[error("the {PROBE_IMAGE} image: {0}")]
    Image(String),
    /// A domain failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A KVM call failed.
    #[error("KVM call failed during the baseline")]
    Kvm(#[from] kvm_ioctls::Error),
    /// The probe did not reach its first hypercall.
    #[error("the probe domain stopped before its first hypercall: {0}")]
    ProbeStopped(String),
    /// /proc/self/statm could not be read.
    #[error("reading /proc/self/statm")]
    Statm(#[source] std::io::Error),
    /// Nothing to measure.
    #[error("--boots and --idle must be at least 1")]
    NoSamples,
}

/// Runs the benchmark: `boots` boots for latency, `idle` domains for memory.
pub fn run(boots: usize, idle: usize) -> Result<BootReport, Box<dyn std::error::Error>> {
    if boots == 0 || idle == 0 {
        return Err(BootBenchError::NoSamples.into());
    }
    let host = KvmHost::open()?;
    let probe = ankh_image_catalog::find(PROBE_IMAGE)
        .ok_or_else(|| BootBenchError::Image("not built in".into()))?;
    let image = GuestImage::parse(probe.name, probe.elf.to_vec())
        .map_err(|e| BootBenchError::Image(e.to_string()))?;
    let config = DomainConfig::named("bench");

    let mut bare = Vec::with_capacity(boots);
    let mut booted = Vec::with_capacity(boots);
    for _ in 0..boots {
        let start = Instant::now();
        let vm = host.kvm().create_vm().map_err(BootBenchError::Kvm)?;
        let vcpu = vm.create_vcpu(0).map_err(BootBenchError::Kvm)?;
        bare.push(start.elapsed());
        drop((vcpu, vm));

        let start = Instant::now();
        let domain = boot_to_first_hypercall(&host, &config, &image)?;
        booted.push(start.elapsed());
        drop(domain);
    }

    let before = resident_bytes()?;
    let alive: Vec<Domain> = (0..idle)
        .map(|_| boot_to_first_hypercall(&host, &config, &image))
        .collect::<Result<_, _>>()?;
    let after = resident_bytes()?;
    drop(alive);

    Ok(BootReport {
        bare_vm: Summary::of(&mut bare).expect("boots >= 1"),
        domain_boot: Summary::of(&mut booted).expect("boots >= 1"),
        idle_domains: idle,
        rss_per_domain: after.saturating_sub(before) / idle as u64,
    })
}

fn boot_to_first_hypercall(
    host: &KvmHost,
    config: &DomainConfig,
    image: &GuestImage,
) -> Result<Domain, BootBenchError> {
    let mut domain = Domain::create(host, config, image, Box::new(CapturedConsole::default()))?;
    match domain.run_until(|call| call == Hypercall::Nop)? {
        None => Ok(domain),
        Some(exit) => Err(BootBenchError::ProbeStopped(exit.to_string())),
    }
}

/// The process's resident set size.
fn resident_bytes() -> Result<u64, BootBenchError> {
    let statm = std::fs::read_to_string("/proc/self/statm").map_err(BootBenchError::Statm)?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Ok(pages * u64::try_from(page_size).unwrap_or(4096))
}
