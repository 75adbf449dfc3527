//! Which buffers an app may hand to a call.
//!
//! Guest RAM is identity-mapped and a message's bulk data is described by its address:
//! a descriptor naming memory outside the domain's RAM (or in the VMM's low area) makes
//! the VMM stop the app as faulty. The library checks first and answers `EFAULT`, as a
//! kernel would for a bad user pointer. The app's own memory is
//! `[IMAGE_BASE, memory_size)`: image, stack, heap.

use core::ops::Range;

use ankh_proto::errno::{EFAULT, EINVAL};
use ankh_proto::vfs::IO_MAX;
use ankh_proto::Errno;

/// Checks a buffer of `len` bytes at `addr` for a read or write call: `EINVAL` when
/// longer than `IO_MAX`, `EFAULT` when not inside `ram`. An empty buffer is always fine
/// (nothing is transferred; Rust's empty slices have dangling addresses).
pub fn check_io(ram: &Range<u64>, addr: u64, len: usize) -> Result<(), Errno> {
    if len > IO_MAX {
        return Err(EINVAL);
    }
    check_range(ram, addr, len)
}

/// `EFAULT` unless `[addr, addr + len)` lies inside `ram` (or `len` is 0).
pub fn check_range(ram: &Range<u64>, addr: u64, len: usize) -> Result<(), Errno> {
    if len == 0 {
        return Ok(());
    }
    let end = u64::try_from(len)
        .ok()
        .and_then(|len| addr.checked_add(len))
        .ok_or(EFAULT)?;
    if addr >= ram.start && end <= ram.end {
        Ok(())
    } else {
        Err(EFAULT)
    }
}
