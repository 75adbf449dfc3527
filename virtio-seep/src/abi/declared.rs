//! Declared writes in a VM: the log a guest keeps of the pages of its declared region
//! that it writes.
//!
//! KVM logs every write of a VM, at the price of a trap at the first write to each page
//! after a checkpoint, or of a copy at every checkpoint for a page the VMM keeps
//! writable. For memory whose every writer is known (VFS's block cache), the guest can
//! do better: it names the region once ([`Hypercall::DeclareRegion`]), the VMM takes
//! it out of KVM's log (a memory slot of its own), and the guest appends each page of
//! it to [`DeclaredLog::pages`] before it writes the page. The VMM reads and empties
//! the log at each checkpoint and rollback. A process domain keeps the same log in its
//! control page instead (`super::process::ControlPage::declared`).
//!
//! [`Hypercall::DeclareRegion`]: super::hypercall::Hypercall::DeclareRegion

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::process::PageRange;

/// Entries of [`DeclaredLog::pages`]: the log fills one page.
pub const DECLARED_LOG_LEN: usize = 1018;

/// The guest's log of its declared writes, in the guest's RAM (outside the region).
#[derive(Clone, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct DeclaredLog {
    /// The region the guest asks for: written by the guest before the call.
    pub requested: PageRange,
    /// The region the VMM keeps (empty: none): written by the VMM only, at the call
    /// and after every rollback (a rollback does not undo it).
    pub declared: PageRange,
    /// Entries of `pages` in use. The VMM sets it to 0 when it has read them.
    pub len: u32,
    /// Non-zero: the guest wrote more pages than `pages` holds, and the VMM takes the
    /// whole region as written.
    pub overflow: u32,
    /// Pages (guest-physical page numbers) of the region the guest wrote or is about
    /// to write since the VMM last read the log.
    pub pages: [u32; DECLARED_LOG_LEN],
}

/// Byte offset of [`DeclaredLog::len`] (the VMM empties the log from here).
pub const DECLARED_LOG_LEN_OFFSET: usize = core::mem::offset_of!(DeclaredLog, len);

const _: () = assert!(core::mem::size_of::<DeclaredLog>() == 4096);
