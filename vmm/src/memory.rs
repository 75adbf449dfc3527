//! Guest RAM of one domain, and bounds-checked access to it on behalf of a guest.
//!
//! Every pointer a guest hands the VMM goes through [`DomainMemory::read_guest`], which
//! refuses ranges that overflow, leave guest RAM or exceed the caller's limit.
//!
//! The memory carries a vm-memory dirty bitmap ([`WrittenPages`]): every write the VMM
//! itself makes into the guest (image load, boot structures, message headers, used
//! rings, disk reads) marks its page, because KVM's dirty log sees only the guest's own
//! writes and checkpoints need both. The one exception is the bulk data of a message
//! delivered into a receive buffer ([`DomainMemory::write_transient`]): consumed
//! within the request that receives it, it is no part of a checkpoint.

use virtio_seep::abi::layout::{MAX_MEMORY_SIZE, MIN_MEMORY_SIZE, PAGE_SIZE};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::written_pages::WrittenPages;

/// Guest memory with a dirty bitmap of the VMM's own writes.
pub type GuestMem = GuestMemoryMmap<WrittenPages>;

/// Why a domain's memory could not be created.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The requested size is out of bounds or not page aligned.
    #[error(
        "guest memory size {size:#x} is invalid: it must be a multiple of 4 KiB between \
         {MIN_MEMORY_SIZE:#x} and {MAX_MEMORY_SIZE:#x}"
    )]
    BadSize {
        /// The requested size.
        size: u64,
    },
    /// The host could not map the memory.
    #[error("cannot map {size:#x} bytes of guest memory")]
    Map {
        /// The requested size.
        size: u64,
        /// The mapping error.
        #[source]
        source: vm_memory::mmap::FromRangesError,
    },
    /// The memfd that backs a process domain's RAM could not be made.
    #[error("cannot create the memfd of a process domain's RAM")]
    Memfd(#[source] std::io::Error),
}

/// Why a guest-supplied range was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuestRangeError {
    /// The length exceeds what the call accepts.
    #[error("length {len} exceeds the limit of {max} bytes")]
    TooLong {
        /// The requested length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The range is not entirely inside guest RAM.
    #[error("range {addr:#x}+{len:#x} is outside guest memory")]
    OutOfBounds {
        /// Start of the range.
        addr: u64,
        /// Its length.
        len: u64,
    },
}

/// The RAM of one domain: one region at guest-physical address 0.
pub struct DomainMemory {
    mem: GuestMem,
    size: u64,
}

impl DomainMemory {
    /// Maps `size` bytes of zeroed, lazily allocated guest RAM.
    pub fn new(size: u64) -> Result<DomainMemory, MemoryError> {
        if !(MIN_MEMORY_SIZE..=MAX_MEMORY_SIZE).contains(&size) || !size.is_multiple_of(PAGE_SIZE) {
            return Err(MemoryError::BadSize { size });
        }
        let len = usize::try_from(size).map_err(|_| MemoryError::BadSize { size })?;
        let mem = GuestMem::from_ranges(&[(GuestAddress(0), len)])
            .map_err(|source| MemoryError::Map { size, source })?;
        Ok(DomainMemory { mem, size })
    }

    /// Maps `size` bytes of zeroed guest RAM backed by a new memfd called `name`,
    /// which is returned too: a process domain maps the same file (see
    /// `domain::process`), so that the VMM reads and writes the very memory the guest
    /// runs in.
    pub fn shared(size: u64, name: &str) -> Result<(DomainMemory, std::fs::File), MemoryError> {
        use std::os::fd::FromRawFd;
        if !(MIN_MEMORY_SIZE..=MAX_MEMORY_SIZE).contains(&size) || !size.is_multiple_of(PAGE_SIZE) {
            return Err(MemoryError::BadSize { size });
        }
        let len = usize::try_from(size).map_err(|_| MemoryError::BadSize { size })?;
        let c_name = std::ffi::CString::new(format!("ankh-{name}"))
            .unwrap_or_else(|_| c"ankh-domain".to_owned());
        // SAFETY: memfd_create reads the NUL-terminated name and returns a new fd (or -1).
        let fd = unsafe { libc::memfd_create(c_name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(MemoryError::Memfd(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        file.set_len(size).map_err(MemoryError::Memfd)?;
        let backing = vm_memory::FileOffset::new(file.try_clone().map_err(MemoryError::Memfd)?, 0);
        let mem = GuestMem::from_ranges_with_files(&[(GuestAddress(0), len, Some(backing))])
            .map_err(|source| MemoryError::Map { size, source })?;
        Ok((DomainMemory { mem, size }, file))
    }

    /// Bytes of guest RAM.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The underlying guest memory, for loaders and setup code.
    pub fn guest(&self) -> &GuestMem {
        &self.mem
    }

    /// The pages the VMM wrote since the last call, as a bitmap (bit `n` of word `w`:
    /// page `64 * w + n`), in the layout of KVM's dirty log.
    pub fn take_vmm_written(&self) -> Vec<u64> {
        let region = self.mem.iter().next().expect("one region");
        std::ops::Deref::deref(region).bitmap().take()
    }

    /// Writes `bytes` at `at` without marking their pages as written by the VMM, so
    /// that no checkpoint copies them for this write: for the bulk data of a message
    /// delivered into a receive buffer, which the domain consumes within the request
    /// that receives it (a rollback returns the domain to a receive, and the next
    /// delivery writes the buffer again; see docs/ipc.md). `Err` when the range is not
    /// guest RAM.
    pub fn write_transient(
        &self,
        bytes: &[u8],
        at: GuestAddress,
    ) -> Result<(), vm_memory::GuestMemoryError> {
        let slice = self.mem.get_slice(at, bytes.len())?;
        let guard = slice.ptr_guard_mut();
        // SAFETY: `get_slice` checked that the range lies inside one region of this
        // domain's RAM, which stays mapped for this value's life; the copy below is
        // volatile, like vm-memory's own writes (the domain's process maps the same
        // pages), and only leaves the bitmap alone.
        let unmarked = unsafe { vm_memory::VolatileSlice::new(guard.as_ptr(), bytes.len()) };
        unmarked.copy_from(bytes);
        Ok(())
    }

    /// Like [`take_vmm_written`](Self::take_vmm_written), but sets the pages' bits in
    /// `bitmap`.
    pub fn take_vmm_written_into(&self, bitmap: &mut [u64]) {
        let region = self.mem.iter().next().expect("one region");
        std::ops::Deref::deref(region).bitmap().take_into(bitmap);
    }

    /// Host virtual address of guest-physical address 0 (for KVM's memory slot).
    pub fn host_base(&self) -> u64 {
        let ptr = self
            .mem
            .get_host_address(GuestAddress(0))
            .expect("address 0 is inside the only region");
        ptr as u64
    }

    /// Checks that `addr..addr+len` lies in guest RAM and `len <= max`.
    pub fn check_range(&self, addr: u64, len: u64, max: u64) -> Result<(), GuestRangeError> {
        if len > max {
            return Err(GuestRangeError::TooLong { len, max });
        }
        match addr.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(GuestRangeError::OutOfBounds { addr, len }),
        }
    }

    /// Copies `len` bytes at guest address `addr` out of the guest, after checking the
    /// range with [`check_range`](Self::check_range).
    pub fn read_guest(&self, addr: u64, len: u64, max: u64) -> Result<Vec<u8>, GuestRangeError> {
        self.check_range(addr, len, max)?;
        let mut buf = vec![0; usize::try_from(len).expect("len <= max, a small limit")];
        self.mem
            .read_slice(&mut buf, GuestAddress(addr))
            .map_err(|_| GuestRangeError::OutOfBounds { addr, len })?;
        Ok(buf)
    }

    /// Reads up to `len` bytes at `addr`, fewer when RAM ends first; empty when `addr`
    /// is outside RAM. For diagnostics (instruction bytes at a faulting RIP).
    pub fn read_prefix(&self, addr: u64, len: u64) -> Vec<u8> {
        let available = self.size.saturating_sub(addr).min(len);
        self.read_guest(addr, available, len).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_validated() {
        assert!(matches!(
            DomainMemory::new(0),
            Err(MemoryError::BadSize { .. })
        ));
        assert!(matches!(
            DomainMemory::new(MIN_MEMORY_SIZE + 1),
            Err(MemoryError::BadSize { .. })
        ));
        assert!(matches!(
            DomainMemory::new(MAX_MEMORY_SIZE * 2),
            Err(MemoryError::BadSize { .. })
        ));
        assert_eq!(DomainMemory::new(4 << 20).unwrap().size(), 4 << 20);
    }

    #[test]
    fn guest_ranges_are_bounded() {
        let mem = DomainMemory::new(4 << 20).unwrap();
        let size = mem.size();
        assert!(mem.check_range(0, 16, 16).is_ok());
        assert!(mem.check_range(size - 16, 16, 16).is_ok());
        assert_eq!(
            mem.check_range(size - 15, 16, 16),
            Err(GuestRangeError::OutOfBounds {
                addr: size - 15,
                len: 16
            })
        );
        assert_eq!(
            mem.check_range(u64::MAX - 3, 16, 16),
            Err(GuestRangeError::OutOfBounds {
                addr: u64::MAX - 3,
                len: 16
            })
        );
        assert_eq!(
            mem.check_range(0, 17, 16),
            Err(GuestRangeError::TooLong { len: 17, max: 16 })
        );
    }

    #[test]
    fn reads_return_guest_bytes() {
        let mem = DomainMemory::new(4 << 20).unwrap();
        mem.guest()
            .write_slice(b"ankh", GuestAddress(0x2000))
            .unwrap();
        assert_eq!(mem.read_guest(0x2000, 4, 8).unwrap(), b"ankh");
        assert_eq!(mem.read_prefix(mem.size() - 2, 15).len(), 2);
        assert!(mem.read_prefix(mem.size() + 100, 15).is_empty());
    }

    #[test]
    fn transient_writes_land_but_leave_no_page_for_checkpoints() {
        let mem = DomainMemory::new(4 << 20).unwrap();
        mem.take_vmm_written();
        mem.write_transient(b"bulk", GuestAddress(0x5ffe)).unwrap();
        assert_eq!(mem.read_guest(0x5ffe, 4, 8).unwrap(), b"bulk");
        assert!(mem.take_vmm_written().iter().all(|&word| word == 0));
        // A plain write marks both pages it touches.
        mem.guest()
            .write_slice(b"head", GuestAddress(0x5ffe))
            .unwrap();
        let written = mem.take_vmm_written();
        assert_eq!(written[0], 0b11 << 5);
        assert!(mem.write_transient(b"x", GuestAddress(mem.size())).is_err());
    }
}
