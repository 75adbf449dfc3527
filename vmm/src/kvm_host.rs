//! Access to the host's KVM: opening /dev/kvm once and what every VM needs from it.

use kvm_bindings::{CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Cap, Kvm};

/// Why the host's KVM cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KvmHostError {
    /// /dev/kvm could not be opened.
    #[error("cannot open /dev/kvm ({cause}): {hint}")]
    Unavailable {
        /// The open error (in the message, not a `source`, so it is printed once).
        cause: std::io::Error,
        /// What the user can do about it.
        hint: &'static str,
    },
    /// KVM is there but lacks a capability Ankh needs.
    #[error(
        "KVM on this host lacks {0:?}, which Ankh needs; use a Linux host with a complete KVM"
    )]
    MissingCapability(Cap),
    /// The supported CPUID could not be read.
    #[error("KVM_GET_SUPPORTED_CPUID failed")]
    Cpuid(#[source] kvm_ioctls::Error),
}

/// The host's KVM, opened once per process and shared by all domains.
pub struct KvmHost {
    kvm: Kvm,
    cpuid: CpuId,
}

impl KvmHost {
    /// Opens /dev/kvm and checks that it can run Ankh domains.
    pub fn open() -> Result<KvmHost, KvmHostError> {
        let kvm = Kvm::new().map_err(|e| {
            let cause = std::io::Error::from_raw_os_error(e.errno());
            let hint = match e.errno() {
                libc::ENOENT => {
                    "KVM is not available on this host; load the kvm module \
                     (kvm_intel or kvm_amd) or run on a machine with virtualization enabled"
                }
                libc::EACCES | libc::EPERM => {
                    "you may not use KVM; add yourself to the group that owns \
                     /dev/kvm (usually `kvm`) or run as root"
                }
                _ => "check that KVM works on this host (e.g. `ls -l /dev/kvm`, `dmesg | grep -i kvm`)",
            };
            KvmHostError::Unavailable { cause, hint }
        })?;
        for cap in [Cap::UserMemory, Cap::SetTssAddr, Cap::ExtCpuid] {
            if !kvm.check_extension(cap) {
                return Err(KvmHostError::MissingCapability(cap));
            }
        }
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(KvmHostError::Cpuid)?;
        Ok(KvmHost { kvm, cpuid })
    }

    /// The KVM system handle.
    pub fn kvm(&self) -> &Kvm {
        &self.kvm
    }

    /// The CPUID every vCPU gets: what KVM supports on this host.
    pub fn cpuid(&self) -> &CpuId {
        &self.cpuid
    }
}
