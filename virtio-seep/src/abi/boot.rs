//! Boot information: what the VMM tells a guest about itself before it starts.
//!
//! The VMM writes a [`BootInfo`] at [`crate::abi::layout::BOOT_INFO_ADDR`] and passes
//! that address in `rdi` to the image's entry point.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Magic value of [`BootInfo::magic`].
pub const BOOT_INFO_MAGIC: u64 = u64::from_le_bytes(*b"ANKHBOOT");

/// Longest domain name stored in [`BootInfo::name`].
pub const DOMAIN_NAME_MAX: usize = 32;

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
}

impl BootInfo {
    /// The domain's name, or `""` when it is not valid UTF-8.
    pub fn name(&self) -> &str {
        let len = (self.name_len as usize).min(DOMAIN_NAME_MAX);
        core::str::from_utf8(&self.name[..len]).unwrap_or("")
    }
}

const _: () = assert!(core::mem::size_of::<BootInfo>() == 64);
