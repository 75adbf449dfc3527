//! Boot information: what the VMM tells a guest about itself before it starts.
//!
//! The VMM writes a [`BootInfo`] at [`crate::abi::layout::BOOT_INFO_ADDR`] and passes
//! that address in `rdi` to the image's entry point.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Magic value of [`BootInfo::magic`].
pub const BOOT_INFO_MAGIC: u64 = u64::from_le_bytes(*b"ANKHBOOT");

/// Longest domain name stored in [`BootInfo::name`].
pub const DOMAIN_NAME_MAX: usize = 32;

/// Most peers listed in [`BootInfo::peers`].
pub const PEERS_MAX: usize = 16;

/// Longest peer name stored in a [`Peer`].
pub const PEER_NAME_MAX: usize = 16;

/// A domain this one may send requests to (a call-graph edge).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Peer {
    /// The peer's domain id (a message's `destination`).
    pub id: u32,
    /// Length of the name in `name`.
    pub name_len: u32,
    /// The peer's name (UTF-8, zero padded).
    pub name: [u8; PEER_NAME_MAX],
}

impl Peer {
    /// The peer's name, or `""` when it is not valid UTF-8.
    pub fn name(&self) -> &str {
        let len = (self.name_len as usize).min(PEER_NAME_MAX);
        core::str::from_utf8(&self.name[..len]).unwrap_or("")
    }
}

/// The guest's view of its own domain.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct BootInfo {
    /// Always [`BOOT_INFO_MAGIC`].
    pub magic: u64,
    /// The ABI version the VMM speaks.
    pub abi_version: u32,
    /// Length of the name in `name`.
    pub name_len: u32,
    /// Bytes of guest RAM, starting at address 0.
    pub memory_size: u64,
    /// First byte after the loaded image: the guest may use RAM from here to
    /// `memory_size` (page-aligned).
    pub free_memory_start: u64,
    /// The domain's name (UTF-8, `name_len` bytes, zero padded).
    pub name: [u8; DOMAIN_NAME_MAX],
    /// This domain's id (the `source` of what it sends).
    pub domain_id: u32,
    /// Number of valid entries in `peers`.
    pub peer_count: u32,
    /// The domains this one may send requests to.
    pub peers: [Peer; PEERS_MAX],
    /// 0 in a VM. In a process domain (see [`crate::abi::process`]), the address of
    /// the control page: the runtime makes its hypercalls there (a futex handover to
    /// the VMM) instead of trapping on `out`.
    pub process_control: u64,
}

impl BootInfo {
    /// The domain's name, or `""` when it is not valid UTF-8.
    pub fn name(&self) -> &str {
        let len = (self.name_len as usize).min(DOMAIN_NAME_MAX);
        core::str::from_utf8(&self.name[..len]).unwrap_or("")
    }

    /// The id of the peer called `name`, if this domain may send to it.
    pub fn peer(&self, name: &str) -> Option<u32> {
        let count = (self.peer_count as usize).min(PEERS_MAX);
        self.peers[..count]
            .iter()
            .find(|peer| peer.name() == name)
            .map(|peer| peer.id)
    }
}

const _: () = assert!(core::mem::size_of::<Peer>() == 24);
const _: () = assert!(core::mem::size_of::<BootInfo>() == 64 + 8 + 24 * PEERS_MAX + 8);
