//! A system: every domain of a description, booted and run together, messages routed
//! between them.
//!
//! Threads: the description gives the number of host threads and the thread of each
//! domain (default: all on thread 0). A thread runs only its own domains, one vCPU at
//! a time. When a domain wakes another domain of the same thread (a call, a reply), the
//! woken one goes to the front of the thread's ready queue, so when the caller blocks
//! the thread switches straight to the callee's vCPU: no other thread is woken, and a
//! call costs one exit on each side. A message to a domain of another thread wakes that
//! thread through a condition variable (much more expensive on these hosts; see
//! docs/host.md).
//!
//! The system ends when it is quiescent: no domain runs or is ready, i.e. every domain
//! has stopped or waits for a message that nothing can send any more.
//!
//! Modules, each depending only on the ones after it: `worker` (a host thread: runs
//! its domains, delivers their messages) calls `kernel` (kernel calls, through
//! `KernelSite`) and `recovery` (one component per server, through `RecoverySite`);
//! `scheduler` holds what the threads share (the router, the ready queues and turns,
//! the run's records).

pub mod control;
mod held;
pub mod injection;
mod kernel;
mod process_manager;
mod recovery;
mod rootfs;
mod scheduler;
mod worker;

pub use rootfs::{init_jobs, root_fs_with_jobs, BadProgram, INIT_JOBS};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ankh_domains::{Mode, Role, SystemDescription};
use virtio_seep::message::DomainId;

use crate::console::ConsoleSink;
use crate::devices::blk::{DiskError, DiskFile};
use crate::domain::{Domain, DomainConfig, DomainError};
use crate::fault::DomainExit;
use crate::image::{GuestImage, ImageError};
use crate::ipc::router::{Router, StormLimits, Wait};
use crate::kvm_host::KvmHost;
use crate::x86_boot::{DomainIdentity, GuestMode};

/// Makes the console sink of a domain, given its name.
pub type ConsoleFactory = Arc<dyn Fn(&str) -> Box<dyn ConsoleSink> + Send + Sync>;

/// How to run a system, beyond its description.
#[derive(Clone)]
pub struct SystemOptions {
    /// Longest a domain may run without an exit.
    pub watchdog_timeout: Duration,
    /// Where each domain's console goes.
    pub console: ConsoleFactory,
    /// Messages that may wait in one domain's inbox.
    pub inbox_limit: usize,
    /// Called at every IPC and `Nop` hypercall of every domain, before it is served
    /// (benchmarks measure with it; `None` costs nothing).
    pub ipc_trace: Option<IpcTrace>,
    /// Whether KVM logs the pages each domain writes (for `ipc_trace` to read).
    pub dirty_log: bool,
    /// The root file system archive servers get from `SYS_ROOT_FS`.
    pub root_fs: Arc<[u8]>,
    /// When a server faults after its window closed, restart it (best effort) instead
    /// of shutting the system down.
    pub fallback_restart: bool,
    /// Guest run time a recoverable server may spend on one message before it is
    /// stopped as hung (the per-request watchdog; time blocked in calls does not
    /// count).
    pub request_budget: Duration,
    /// Planned hot-kills (see [`injection`]).
    pub kills: Vec<injection::PlannedKill>,
    /// The control socket's hub (hot-kills at run time, status), if any.
    pub control: Option<Arc<control::ControlHub>>,
    /// The host image file of the system's disk, for the domain with `disk = true`.
    pub disk: Option<PathBuf>,
    /// Guest debugging of server domains, by name (fault-injection campaigns: a fault
    /// to inject, a profile to take; see `domain::debug`).
    pub guest_debug: Vec<(String, Arc<crate::domain::debug::GuestDebug>)>,
    /// What runs every domain: VMs, or Linux processes (the microkernel build).
    pub substrate: crate::domain::Substrate,
}

/// The default [`SystemOptions::request_budget`].
pub const DEFAULT_REQUEST_BUDGET: Duration = Duration::from_secs(5);

/// See [`SystemOptions::ipc_trace`].
pub type IpcTrace = Arc<dyn Fn(TraceEvent, DomainId, &Domain) + Send + Sync>;

/// What a domain did when [`SystemOptions::ipc_trace`] is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// An IPC hypercall, before it is served.
    Ipc,
    /// A `Nop` hypercall (benchmarks use them as timestamps).
    Nop,
}

impl SystemOptions {
    /// Defaults: 1 s watchdog, 1024 inbox slots, no tracing, consoles from `console`.
    pub fn new(console: ConsoleFactory) -> SystemOptions {
        SystemOptions {
            watchdog_timeout: Duration::from_secs(1),
            console,
            inbox_limit: 1024,
            ipc_trace: None,
            dirty_log: false,
            root_fs: Arc::from(Vec::new()),
            fallback_restart: false,
            kills: Vec::new(),
            request_budget: DEFAULT_REQUEST_BUDGET,
            control: None,
            disk: None,
            guest_debug: Vec::new(),
            substrate: crate::domain::Substrate::Kvm,
        }
    }
}

/// Why a system could not be booted.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// A domain's image could not be loaded.
    #[error("domain {domain}: image {image}")]
    Image {
        /// The domain.
        domain: String,
        /// The image name or path.
        image: String,
        /// Why.
        #[source]
        source: ImageError,
    },
    /// A domain could not be created.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The description has a disk domain, but no disk image was given.
    #[error("domain {domain} has disk = true, but no disk image was given (--disk PATH)")]
    NoDiskImage {
        /// The disk domain.
        domain: String,
    },
    /// The disk image cannot be used.
    #[error(transparent)]
    Disk(#[from] DiskError),
}

/// How one domain ended up when the system went quiet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainEnd {
    /// It stopped.
    Stopped(DomainExit),
    /// It still waits (a server waiting for requests, or a domain stuck on a peer).
    Waiting(Wait),
    /// The host failed while running it.
    HostError(HostFailure),
}

/// A host-side failure while running a domain (a KVM call that failed), kept whole
/// so that a report can say the cause; shared, because reports are cloned.
#[derive(Clone, Debug)]
pub struct HostFailure(pub Arc<DomainError>);

impl HostFailure {
    /// The failure itself.
    pub fn error(&self) -> &DomainError {
        &self.0
    }
}

/// Two failures are the same when they say the same (a KVM error has no equality).
impl PartialEq for HostFailure {
    fn eq(&self, other: &HostFailure) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.to_string() == other.to_string()
    }
}

impl Eq for HostFailure {}

/// The failure and its causes on one line.
impl std::fmt::Display for HostFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = std::error::Error::source(&*self.0);
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

/// One domain's line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainReport {
    /// Its id.
    pub id: DomainId,
    /// Its name.
    pub name: String,
    /// How it ended up.
    pub end: DomainEnd,
    /// The checkpoints taken of it (recoverable servers; zero for the others).
    pub checkpoints: CheckpointCount,
}

/// The checkpoints taken of a domain over a run (across its restarts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointCount {
    /// Checkpoints taken.
    pub checkpoints: u64,
    /// Pages they copied, together.
    pub pages: u64,
    /// The server's writes that trapped (first writes to a page protected for the
    /// tracking) before these checkpoints.
    pub trapped_writes: u64,
}

impl CheckpointCount {
    /// Pages per checkpoint (0 without checkpoints).
    pub fn pages_per_checkpoint(&self) -> f64 {
        if self.checkpoints == 0 {
            return 0.0;
        }
        self.pages as f64 / self.checkpoints as f64
    }
}

impl std::ops::AddAssign for CheckpointCount {
    fn add_assign(&mut self, other: CheckpointCount) {
        self.checkpoints += other.checkpoints;
        self.pages += other.pages;
        self.trapped_writes += other.trapped_writes;
    }
}

impl std::iter::Sum for CheckpointCount {
    fn sum<I: Iterator<Item = CheckpointCount>>(counts: I) -> CheckpointCount {
        counts.fold(CheckpointCount::default(), |mut sum, count| {
            sum += count;
            sum
        })
    }
}

/// Why a system stopped before it went quiet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemStop {
    /// A server without recovery (policy `none`) faulted: the system crashed.
    Halted {
        /// The domain.
        domain: DomainId,
        /// Its fault.
        fault: String,
    },
    /// No consistent recovery existed (the window had closed): controlled shutdown.
    Shutdown {
        /// The domain.
        domain: DomainId,
        /// Why.
        reason: String,
    },
}

/// How a system run ended.
#[derive(Clone, Debug)]
pub struct SystemReport {
    /// Every domain, in id order.
    pub domains: Vec<DomainReport>,
    /// Requests that finished inside / outside their recovery window.
    pub coverage: ankh_recovery::CoverageStats,
    /// Every recovery, in order.
    pub recoveries: Vec<ankh_recovery::RecoveryEvent>,
    /// When each recovered domain served again (its first reply after the fault).
    pub resumptions: Vec<Resumption>,
    /// Why the run stopped early, if it did.
    pub stop: Option<SystemStop>,
}

impl SystemReport {
    /// The report of the domain called `name`.
    pub fn domain(&self, name: &str) -> Option<&DomainReport> {
        self.domains.iter().find(|d| d.name == name)
    }

    /// How the domain called `name` ended.
    pub fn end(&self, name: &str) -> Option<&DomainEnd> {
        self.domain(name).map(|d| &d.end)
    }
}

/// A recovered domain serving again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resumption {
    /// The domain.
    pub domain: String,
    /// From the fault's detection to its first reply after the recovery (for a
    /// restarted driver: the reboot, the client's re-issue, and serving it).
    pub after: std::time::Duration,
}

/// Boots every domain of `description` and runs the system until it is quiet.
/// `image_of` turns a domain's image name into a validated image.
pub fn run_system(
    host: &KvmHost,
    description: &SystemDescription,
    image_of: &dyn Fn(&str) -> Result<GuestImage, ImageError>,
    options: &SystemOptions,
) -> Result<SystemReport, SystemError> {
    let disk = match (description.disk_domain(), &options.disk) {
        (None, _) => None,
        (Some(id), None) => {
            let domain = description.name(id).unwrap_or_default().to_owned();
            return Err(SystemError::NoDiskImage { domain });
        }
        (Some(_), Some(path)) => Some(Arc::new(DiskFile::open(path)?)),
    };
    let mut domains = Vec::new();
    for (spec, id) in description.domains.iter().zip(description.ids()) {
        let image = image_of(&spec.image).map_err(|source| SystemError::Image {
            domain: spec.name.clone(),
            image: spec.image.clone(),
            source,
        })?;
        let config = DomainConfig {
            name: spec.name.clone(),
            memory_size: spec.memory_bytes(),
            watchdog_timeout: options.watchdog_timeout,
            mode: match spec.mode {
                Mode::User => GuestMode::User,
                Mode::Kernel => GuestMode::Kernel,
            },
            identity: DomainIdentity {
                id,
                peers: description
                    .callees(id)
                    .map(|(peer, name)| (peer, name.to_owned()))
                    .collect(),
            },
            dirty_log: options.dirty_log
                || (spec.role != Role::Process && ankh_recovery::has_window(spec.policy)),
            disk: disk.clone().filter(|_| spec.disk),
            debug: options
                .guest_debug
                .iter()
                .find(|(name, _)| *name == spec.name && spec.role != Role::Process)
                .map(|(_, debug)| Arc::clone(debug)),
            substrate: options.substrate,
        };
        let console = (options.console)(&spec.name);
        let domain = Domain::create(host, &config, &image, console)?;
        // Servers are recovered; processes (apps) end, and PM hears of it.
        let kills = options
            .kills
            .iter()
            .filter(|kill| kill.domain == spec.name)
            .map(|kill| (kill.request, kill.injection));
        if let (Some(hub), false) = (&options.control, spec.role == Role::Process) {
            hub.update(&spec.name, |_| {});
        }
        let recovery = (spec.role != Role::Process)
            .then(|| recovery::Recovery::new(spec.policy, image, config).kill_at(kills));
        domains.push(worker::Boot {
            id,
            thread: spec.thread,
            domain,
            recovery,
        });
    }
    let call_graph: Vec<(DomainId, DomainId)> = description
        .ids()
        .flat_map(|from| description.callees(from).map(move |(to, _)| (from, to)))
        .collect();
    let rate = &description.message_rate;
    let limits = StormLimits {
        per_second: rate.per_second,
        burst: rate.burst,
        inbox: options.inbox_limit,
        ..StormLimits::default()
    };
    let roles = description.domains.iter().map(|spec| spec.role).collect();
    let router =
        Router::with_roles(roles, call_graph, limits).manager_only(process_manager::MANAGER_ONLY);
    let names = description
        .ids()
        .zip(&description.domains)
        .map(|(id, spec)| (id, spec.name.clone()))
        .collect();
    let mut process_callees: Vec<DomainId> = description
        .ids()
        .filter(|id| {
            description
                .spec(*id)
                .is_some_and(|s| s.role == Role::Process)
        })
        .flat_map(|id| description.callees(id).map(|(to, _)| to))
        .collect();
    process_callees.sort_unstable();
    process_callees.dedup();
    let spawner = worker::Spawner { host, options };
    let mut outcome = worker::run(
        router,
        description.threads,
        domains,
        names,
        process_callees,
        options.ipc_trace.clone(),
        &spawner,
    );
    outcome.ends.sort_by_key(|(id, _, _, _)| *id);
    Ok(SystemReport {
        domains: outcome
            .ends
            .into_iter()
            .map(|(id, name, end, checkpoints)| DomainReport {
                id,
                name,
                end,
                checkpoints,
            })
            .collect(),
        coverage: outcome.coverage,
        recoveries: outcome.recoveries,
        resumptions: outcome.resumptions,
        stop: outcome.stop,
    })
}
