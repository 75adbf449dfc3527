//! How to build a domain: [`DomainConfig`] and its defaults.

use std::sync::Arc;
use std::time::Duration;

use crate::devices::blk::DiskFile;
use crate::x86_boot::{DomainIdentity, GuestMode};

/// How to build a domain.
#[derive(Clone, Debug)]
pub struct DomainConfig {
    /// The domain's name: console prefix, boot info, reports.
    pub name: String,
    /// Bytes of guest RAM.
    pub memory_size: u64,
    /// Longest the guest may run without an exit before it is stopped as hung.
    pub watchdog_timeout: Duration,
    /// The privilege level the guest's code runs at.
    pub mode: GuestMode,
    /// Its id and peers in its system (default: not in a system).
    pub identity: DomainIdentity,
    /// Whether KVM logs the pages the guest writes ([`Domain::take_dirty_pages`](super::Domain::take_dirty_pages)).
    pub dirty_log: bool,
    /// The disk the domain owns, if any: it gets a virtio-blk device over this image,
    /// mapped in its device window (`virtio_seep::abi::blk`).
    pub disk: Option<Arc<DiskFile>>,
    /// Guest debugging for a fault-injection campaign (a fault to inject, or a
    /// profile to take), shared by the domain's incarnations; `None` costs nothing.
    pub debug: Option<Arc<super::debug::GuestDebug>>,
    /// What runs the domain: a VM, or a Linux process (the microkernel build).
    pub substrate: Substrate,
}

/// What runs a domain.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Substrate {
    /// A KVM VM with one vCPU (the main build).
    #[default]
    Kvm,
    /// A Linux process under a seccomp filter, its RAM a memfd the VMM maps too (the
    /// microkernel build; see `domain::process`).
    Process,
}

impl Substrate {
    /// The substrate's name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Substrate::Kvm => "kvm",
            Substrate::Process => "process",
        }
    }
}

impl DomainConfig {
    /// A domain called `name` with the default memory size and watchdog timeout.
    pub fn named(name: &str) -> DomainConfig {
        DomainConfig {
            name: name.to_owned(),
            memory_size: DEFAULT_MEMORY_SIZE,
            watchdog_timeout: DEFAULT_WATCHDOG_TIMEOUT,
            mode: GuestMode::User,
            identity: DomainIdentity::default(),
            dirty_log: false,
            disk: None,
            debug: None,
            substrate: Substrate::Kvm,
        }
    }

    /// The same config with `mode`.
    pub fn in_mode(self, mode: GuestMode) -> DomainConfig {
        DomainConfig { mode, ..self }
    }
}

/// Default guest RAM of a domain.
pub const DEFAULT_MEMORY_SIZE: u64 = 4 << 20;
/// Default watchdog timeout.
pub const DEFAULT_WATCHDOG_TIMEOUT: Duration = Duration::from_secs(1);
