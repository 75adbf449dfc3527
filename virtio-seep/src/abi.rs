//! The guest/VMM ABI: version, hypercalls, memory layout and boot information.

pub mod boot;
pub mod hypercall;
pub mod layout;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Version of everything in this module. Bump it on any change a guest could observe;
/// the VMM refuses an image whose embedded version differs.
pub const ABI_VERSION: u32 = 1;

/// Name of the ELF section that holds the image's [`AbiNote`].
pub const ABI_NOTE_SECTION: &str = ".ankh_abi";

/// Magic bytes at the start of an [`AbiNote`].
pub const ABI_NOTE_MAGIC: [u8; 8] = *b"ANKH-ABI";

/// The record every guest image embeds in its [`ABI_NOTE_SECTION`] section so that the
/// VMM can check, before running anything, that the image speaks this ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct AbiNote {
    /// Always [`ABI_NOTE_MAGIC`].
    pub magic: [u8; 8],
    /// The [`ABI_VERSION`] the image was built against.
    pub version: u32,
    /// Zero; keeps the record 16 bytes long.
    pub reserved: u32,
}

impl AbiNote {
    /// The note for an image built against this crate.
    pub const CURRENT: AbiNote = AbiNote {
        magic: ABI_NOTE_MAGIC,
        version: ABI_VERSION,
        reserved: 0,
    };
}

// Tripwires: these sizes are part of the ABI.
const _: () = assert!(core::mem::size_of::<AbiNote>() == 16);
