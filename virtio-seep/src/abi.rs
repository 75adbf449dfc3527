//! The guest/VMM ABI: version, hypercalls, memory layout, boot information and the
//! block device's virtio-mmio interface.

pub mod blk;
pub mod boot;
pub mod declared;
pub mod hypercall;
pub mod layout;
pub mod process;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Version of the guest/VMM contract: everything in this module, the message header,
/// the queue setup, the split-ring layout, the opcode table and the error numbers. Bump
/// it on any change a guest could observe; the VMM refuses an image whose embedded
/// version differs. `tests/abi_fingerprint.rs` pins a listing of all of it and fails
/// when the listing changes under an unchanged version.
///
/// History: 1 stayed while user-mode guests with VMM-built IDTs, the message and queue
/// ABI and the virtio-blk device went in; 2 is the first pinned version; 4 adds the
/// process substrate (`process`, `BootInfo::process_control`); 5 wakes the VMM only
/// when it sleeps (`process::ControlPage::vmm_waiting`); 6 adds the opcode
/// `VFS_PREAD_PATH` and lets a process domain's calls skip saving the FPU state
/// (`process::ControlPage::fpu_through_page`); 7 tracks a process domain's writes
/// in its tender and runtime (`process::ControlPage::written_log`, `reprotect`) and
/// saves its FPU state only for checkpoints (`fpu_save`, `fpu_load` replace
/// `fpu_through_page`); 8 adds the opcode `DS_PROC_SPAWN`; 9 lets a process domain
/// track a region of its RAM itself (`process::ControlPage::declared`); 10 lets a VM
/// do the same (`hypercall::Hypercall::DeclareRegion`, `declared::DeclaredLog`).
pub const ABI_VERSION: u32 = 10;

/// Name of the ELF section that holds the image's [`AbiNote`].
pub const ABI_NOTE_SECTION: &str = ".ankh_abi";

/// Magic bytes at the start of an [`AbiNote`].
pub const ABI_NOTE_MAGIC: [u8; 8] = *b"ANKH-ABI";

/// Number of exception vectors an image's stubs must cover.
pub const EXCEPTION_VECTORS: u64 = 256;

/// Bytes between two consecutive exception stubs.
pub const EXCEPTION_STUB_SIZE: u64 = 16;

/// The record every guest image embeds in its [`ABI_NOTE_SECTION`] section so that the
/// VMM can check, before running anything, that the image speaks this ABI, and learn
/// where the image's exception handlers are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct AbiNote {
    /// Always [`ABI_NOTE_MAGIC`].
    pub magic: [u8; 8],
    /// The [`ABI_VERSION`] the image was built against.
    pub version: u32,
    /// Zero (no flags are defined).
    pub flags: u32,
    /// Address of the image's exception stubs: [`EXCEPTION_VECTORS`] entry points
    /// [`EXCEPTION_STUB_SIZE`] bytes apart, stub `v` for vector `v`, all inside an
    /// executable segment. The VMM builds the IDT from it (gates run at CPL0 on the
    /// IST1 stack). 0: the image handles no exception, and any exception is a triple
    /// fault.
    pub exception_stubs: u64,
}

/// Offset of [`AbiNote::version`] in the note, for images that write the note in
/// assembly.
pub const ABI_NOTE_VERSION_OFFSET: usize = 8;
/// Offset of [`AbiNote::exception_stubs`] in the note.
pub const ABI_NOTE_STUBS_OFFSET: usize = 16;

// Tripwires: these sizes and offsets are part of the ABI.
const _: () = assert!(core::mem::size_of::<AbiNote>() == 24);
const _: () = assert!(core::mem::offset_of!(AbiNote, version) == ABI_NOTE_VERSION_OFFSET);
const _: () = assert!(core::mem::offset_of!(AbiNote, exception_stubs) == ABI_NOTE_STUBS_OFFSET);
