//! [`DomainError`]: failures of the host while building or running a domain.

use crate::checkpoint::{PageCopyError, Poison};
use crate::fault::DomainExit;
use crate::image::ImageError;
use crate::memory::MemoryError;

/// A failure of the host while building or running a domain (never caused by what the
/// guest does: that is a [`DomainFault`](crate::fault::DomainFault)).
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The domain's memory could not be set up.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// The image cannot be used.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A KVM call failed while building the domain.
    #[error("{what} failed while creating domain {domain}")]
    Create {
        /// The domain.
        domain: String,
        /// The KVM call.
        what: &'static str,
        /// The KVM error.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// Writing the boot structures into guest memory failed.
    #[error("writing boot structures of domain {domain}")]
    BootStructures {
        /// The domain.
        domain: String,
        /// The memory error.
        #[source]
        source: vm_memory::GuestMemoryError,
    },
    /// A fault could not be injected into the domain.
    #[error("cannot inject a fault into domain {domain}: {what}")]
    Inject {
        /// The domain.
        domain: String,
        /// Why.
        what: &'static str,
    },
    /// A KVM call failed while running the domain.
    #[error("{what} failed while running domain {domain}")]
    Run {
        /// The domain.
        domain: String,
        /// The KVM call.
        what: &'static str,
        /// The KVM error.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// A process domain could not be started or run (a host failure).
    #[error("process domain {domain}")]
    Process {
        /// The domain.
        domain: String,
        /// What failed.
        #[source]
        source: super::process::ProcessError,
    },
    /// Something only one substrate has was asked of a domain on the other.
    #[error("domain {domain} runs on the {} substrate, which has no {what}", substrate.name())]
    NotOnSubstrate {
        /// The domain.
        domain: String,
        /// What was asked.
        what: &'static str,
        /// The domain's substrate.
        substrate: super::Substrate,
    },
    /// The pages a process domain wrote could not be found (its write log overflowed
    /// and its mappings could not be read).
    #[error("finding the pages domain {domain} wrote (its write log overflowed and its mappings could not be read)")]
    PageScan {
        /// The domain.
        domain: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A campaign's breakpoint could not be set on a process domain (perf_event_open).
    #[error("setting a breakpoint on the process of domain {domain} (perf_event_open; perf_event_paranoid must be 2 or less)")]
    Debug {
        /// The domain.
        domain: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A process domain's process is gone: there is nothing left to roll back.
    #[error("the process of domain {domain} is gone ({status})")]
    ProcessGone {
        /// The domain.
        domain: String,
        /// How it ended.
        status: String,
    },
    /// Checkpoints were asked of a domain created without `dirty_log`, or a rollback
    /// before any checkpoint.
    #[error("domain has no checkpoint (create it with dirty_log and take one first)")]
    NoCheckpoints,
    /// A checkpoint or a rollback could not copy a page of the domain's RAM.
    #[error("domain {domain}: {source}")]
    PageCopy {
        /// The domain.
        domain: String,
        /// The page.
        #[source]
        source: PageCopyError,
    },
    /// The domain cannot be rolled back: its last checkpoint or rollback failed part
    /// way, and no checkpoint has succeeded since. Its saved state may mix two request
    /// boundaries, so the only safe recoveries are a restart or a shutdown.
    #[error("domain {domain} cannot be rolled back: its last {cause} failed")]
    Poisoned {
        /// The domain.
        domain: String,
        /// Which operation failed.
        cause: Poison,
    },
    /// The guest changed state that is saved lazily (its FPU state, or a user-mode
    /// guest's data segments: see `domain::vcpu_state`) since it was last saved: the
    /// state at the checkpoint is unknown and the rollback is refused, changing
    /// nothing.
    #[error(
        "domain {domain} cannot be rolled back exactly: it changed its {what} since \
         they were saved (they are saved at every checkpoint from now on)"
    )]
    CarriedStateChanged {
        /// The domain.
        domain: String,
        /// What it changed: `"FPU state"` or `"data segments"`.
        what: &'static str,
    },
    /// The domain was asked to run after it stopped.
    #[error("domain {domain} already stopped ({exit})")]
    AlreadyStopped {
        /// The domain.
        domain: String,
        /// How it stopped.
        exit: DomainExit,
    },
}
