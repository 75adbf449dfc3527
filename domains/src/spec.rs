//! What one domain is, and the system-wide settings: the plain data of a description.

use serde::{Deserialize, Serialize};

/// Identifies a domain: 1-based, the domain's index in
/// [`SystemDescription::domains`](crate::SystemDescription::domains) plus one.
/// Id 0 ([`VMM_DOMAIN`]) is the VMM itself. The same type as the `source` and
/// `destination` of a virtio-seep message.
pub type DomainId = virtio_seep::message::DomainId;

/// The id of the VMM: never a domain of the description.
pub const VMM_DOMAIN: DomainId = virtio_seep::message::VMM_DOMAIN;

/// Most domains in one system: their ids (1..=255) fit in one byte, which keeps the
/// VMM's per-domain tables and the may-call matrix small.
pub const MAX_DOMAINS: usize = 255;

/// Longest domain name in bytes: a name must fit in a boot-info peer entry.
pub const NAME_MAX: usize = virtio_seep::abi::boot::PEER_NAME_MAX;

/// Most domains one domain may call: the boot info lists at most this many peers.
pub const MAX_CALLEES: usize = virtio_seep::abi::boot::PEERS_MAX;

/// Smallest guest RAM of a domain in MiB (room for the boot structures and an image).
pub const MIN_MEMORY_MIB: u64 = virtio_seep::abi::layout::MIN_MEMORY_SIZE >> 20;

/// Largest guest RAM of a domain in MiB.
pub const MAX_MEMORY_MIB: u64 = virtio_seep::abi::layout::MAX_MEMORY_SIZE >> 20;

/// Guest RAM of a domain whose description does not say, in MiB (what a single
/// `ankh run-image` domain gets too).
pub const DEFAULT_MEMORY_MIB: u64 = 4;

/// Most host threads that run vCPUs.
pub const MAX_THREADS: usize = 64;

const _: () = assert!(NAME_MAX == 16);
const _: () = assert!(MIN_MEMORY_MIB == 2 && MAX_MEMORY_MIB == 1024);
const _: () = assert!(DEFAULT_MEMORY_MIB >= MIN_MEMORY_MIB && DEFAULT_MEMORY_MIB <= MAX_MEMORY_MIB);

/// How a domain is recovered when it faults (the OSIRIS policies; the decision table
/// is in docs/recovery.md, "When a server faults", and is carried out by `recovery/` and the VMM).
///
/// In TOML: `"none"`, `"stateless"`, `"naive"`, `"pessimistic"` or `"enhanced"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// No recovery: a fault halts the whole system.
    None,
    /// No checkpoints: a faulting domain is restarted from its pristine image and its
    /// pending requests get errors.
    Stateless,
    /// Always roll back to the last request boundary and answer the interrupted request
    /// with an error, even after the domain exposed state (may be inconsistent).
    Naive,
    /// Roll back while the recovery window is open; any outgoing message except the
    /// reply closes it, and a fault after that is a controlled shutdown.
    Pessimistic,
    /// Like [`Policy::Pessimistic`], but messages of SEEP class Query (which change
    /// nothing in the receiver) keep the window open. The default: OSIRIS's best
    /// trade-off, the most recoverable execution that stays consistent.
    #[default]
    Enhanced,
}

impl Policy {
    /// Every policy, in the order of increasing recovery machinery.
    pub const ALL: [Policy; 5] = [
        Policy::None,
        Policy::Stateless,
        Policy::Naive,
        Policy::Pessimistic,
        Policy::Enhanced,
    ];

    /// The policy's name as written in TOML.
    pub const fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Stateless => "stateless",
            Policy::Naive => "naive",
            Policy::Pessimistic => "pessimistic",
            Policy::Enhanced => "enhanced",
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a domain is in the OS, which decides what the VMM lets it do.
///
/// In TOML: `"server"` (the default), `"process-manager"` or `"process"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A server: may make read-only kernel calls (e.g. fetch the root file system).
    #[default]
    Server,
    /// The process manager (at most one): may make every kernel call (create and kill
    /// domains) and is told when a process domain stops.
    ProcessManager,
    /// A process (an app): no kernel calls; its end is reported to the process
    /// manager. Domains created at run time are processes.
    Process,
}

/// The privilege level a domain's code runs at.
///
/// In TOML: `"user"` or `"kernel"`. User mode is the default because on the nested
/// KVM hosts Ankh runs on, supervisor-mode guest code is emulated instruction by
/// instruction (docs/guest-modes.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// CPL3; exceptions are reported through the VMM-built IDT. The default.
    #[default]
    User,
    /// CPL0 throughout.
    Kernel,
}

impl Mode {
    /// The mode's name as written in TOML.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::User => "user",
            Mode::Kernel => "kernel",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The message-storm limit of every domain: a token bucket that refills at
/// `per_second` messages per second and holds at most `burst`.
///
/// Both must be at least 1. The defaults are far above what a correct domain sends
/// (every message costs at least one exit, a microsecond even on bare metal and
/// ~10-30 us on the nested hosts), so only a runaway loop meets the limit; a test of
/// the limit sets a low rate explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct MessageRate {
    /// Messages per second the bucket refills.
    pub per_second: u32,
    /// Messages the bucket holds: the longest burst sent back to back.
    pub burst: u32,
}

impl MessageRate {
    /// Default of [`MessageRate::per_second`].
    pub const DEFAULT_PER_SECOND: u32 = 1_000_000;
    /// Default of [`MessageRate::burst`].
    pub const DEFAULT_BURST: u32 = 10_000;
}

impl Default for MessageRate {
    fn default() -> Self {
        MessageRate {
            per_second: Self::DEFAULT_PER_SECOND,
            burst: Self::DEFAULT_BURST,
        }
    }
}

/// One domain of the system: a guest VM running one image.
///
/// Built by the TOML parser or, in code, with [`DomainSpec::new`] and the chained
/// setters; either way it is checked only when the whole system is validated.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct DomainSpec {
    /// Unique name: 1 to 16 bytes of `a-z`, `0-9` and `-`, not starting with `-`.
    pub name: String,
    /// The image it boots: a built-in image name or a path, as the VMM resolves it.
    pub image: String,
    /// Guest RAM in MiB, 2..=1024.
    pub memory_mib: u64,
    /// The domains it may send requests to, by name, in the order the guest's boot
    /// info lists them (call-graph edges).
    pub calls: Vec<String>,
    /// How it is recovered when it faults.
    pub policy: Policy,
    /// Index of the host thread that runs its vCPU (< the system's `threads`).
    pub thread: usize,
    /// The privilege level its code runs at.
    pub mode: Mode,
    /// What it is in the OS.
    pub role: Role,
    /// Whether it owns the system's disk (at most one domain does): it gets a
    /// virtio-blk device over the host image file the VMM is given.
    pub disk: bool,
}

impl DomainSpec {
    /// A domain named `name` booting `image`, with the defaults: 4 MiB, no callees,
    /// [`Policy::Enhanced`], thread 0, [`Mode::User`], no disk.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        DomainSpec {
            name: name.into(),
            image: image.into(),
            memory_mib: DEFAULT_MEMORY_MIB,
            calls: Vec::new(),
            policy: Policy::default(),
            thread: 0,
            mode: Mode::default(),
            role: Role::default(),
            disk: false,
        }
    }

    /// Gives it the system's disk (or not).
    #[must_use]
    pub fn disk(mut self, disk: bool) -> Self {
        self.disk = disk;
        self
    }

    /// Sets its role.
    #[must_use]
    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// Sets the domains it may call, in boot-info order.
    #[must_use]
    pub fn calls<I, S>(mut self, callees: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.calls = callees.into_iter().map(Into::into).collect();
        self
    }

    /// Sets its guest RAM in MiB.
    #[must_use]
    pub fn memory_mib(mut self, memory_mib: u64) -> Self {
        self.memory_mib = memory_mib;
        self
    }

    /// Sets its recovery policy.
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the host thread that runs it.
    #[must_use]
    pub fn thread(mut self, thread: usize) -> Self {
        self.thread = thread;
        self
    }

    /// Sets its privilege level.
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Guest RAM in bytes (saturating, for a spec not yet validated).
    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib.saturating_mul(1 << 20)
    }
}
