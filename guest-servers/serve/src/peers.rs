//! Which domain each [`Endpoint`] is.

use ankh_proto::server::Endpoint;
use ankh_proto::DomainId;
use virtio_seep::abi::boot::BootInfo;
use virtio_seep::message::VMM_DOMAIN;

/// Names of the server peers in the boot information (the system description's
/// domain names).
pub const PM: &str = "pm";
/// See [`PM`].
pub const VFS: &str = "vfs";
/// See [`PM`].
pub const DS: &str = "ds";
/// See [`PM`].
pub const MM: &str = "mm";
/// See [`PM`].
pub const BLK: &str = "blk";

/// The domain ids of the servers this domain may call (`None`: no call-graph edge).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peers {
    /// The process manager.
    pub pm: Option<DomainId>,
    /// The virtual file system.
    pub vfs: Option<DomainId>,
    /// The data store.
    pub ds: Option<DomainId>,
    /// The memory manager.
    pub mm: Option<DomainId>,
    /// The block-device driver.
    pub blk: Option<DomainId>,
}

impl Peers {
    /// The peers named `pm`, `vfs`, `ds`, `mm` and `blk` in `boot`.
    pub fn from_boot(boot: &BootInfo) -> Peers {
        Peers {
            pm: boot.peer(PM),
            vfs: boot.peer(VFS),
            ds: boot.peer(DS),
            mm: boot.peer(MM),
            blk: boot.peer(BLK),
        }
    }

    /// The domain `endpoint` is: its peer id, or `VMM_DOMAIN` (0) for
    /// [`Endpoint::Kernel`]; `None` when this domain has no such peer.
    pub fn resolve(&self, endpoint: Endpoint) -> Option<DomainId> {
        match endpoint {
            Endpoint::Pm => self.pm,
            Endpoint::Vfs => self.vfs,
            Endpoint::Ds => self.ds,
            Endpoint::Mm => self.mm,
            Endpoint::Blk => self.blk,
            Endpoint::Kernel => Some(VMM_DOMAIN),
        }
    }
}
