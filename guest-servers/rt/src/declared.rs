//! Declared writes: a region of RAM whose writes the domain reports itself, for the
//! write tracking of its checkpoints.
//!
//! A process domain's RAM is read-only until its first write to each page, which
//! faults; the tender logs the page and makes it writable (`virtio_seep::abi::process`,
//! `ControlPage::written_log`). That costs a signal and an `mprotect` per page, about
//! 4 us on these hosts, and a page kept writable costs a copy at every checkpoint
//! instead. For memory whose every writer is known, such as VFS's block cache, the
//! program can do better: it [`region`]s the memory once, and calls [`will_write`]
//! before each write into it, which appends the pages to the same log (no fault, no
//! system call). The VMM then copies those pages at the next checkpoint, once, and
//! never protects the region again.
//!
//! The price is trust in the program's own bookkeeping: a write into the region that
//! was not declared (a bug, a wild pointer) is not undone when the domain is rolled
//! back. Nobody else is harmed by it: the region is the domain's own RAM.
//!
//! In a VM, and in host tests, both calls do nothing: KVM's dirty log sees every write.

/// Makes `len` bytes from `start` (whole pages within them) a declared region, if the
/// domain is a process that takes checkpoints and has no other region. True when it is one now: every later
/// write into it must be declared with [`will_write`] first.
pub fn region(start: usize, len: usize) -> bool {
    imp::region(start, len)
}

/// Declares that `len` bytes from `address` are about to be written (call it before
/// the write). Pages outside the declared region are left to the tracking by faults.
#[inline]
pub fn will_write(address: usize, len: usize) {
    imp::will_write(address, len);
}

#[cfg(not(test))]
mod imp {
    use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
    use core::sync::atomic::{compiler_fence, Ordering};

    use virtio_seep::abi::process::{ControlPage, PageRange, WRITTEN_LOG_LEN};

    use crate::process_call::{control, mprotect, PROT_READ_WRITE_EXEC};

    const PAGE: usize = 4096;

    /// The declared region, as the control page holds it (empty: none). The control
    /// page, not this image's memory, because a rollback leaves it alone, as the VMM
    /// leaves its latch of the region: a region named after a checkpoint stays
    /// declared when the domain is rolled back to it.
    fn declared(control: *mut ControlPage) -> PageRange {
        // SAFETY: the control page is mapped for the domain's life, and the turn is
        // this thread's.
        unsafe { read_volatile(addr_of!((*control).declared)) }
    }

    pub(super) fn region(start: usize, len: usize) -> bool {
        let Some(control) = control() else {
            return false;
        };
        // SAFETY: the control page is mapped for the domain's life; the VMM wrote the
        // setup before the domain started and leaves it alone.
        let tracked = unsafe { read_volatile(addr_of!((*control).setup.track_writes)) } != 0;
        // Without checkpoints there is nothing to declare to, and the seccomp filter
        // refuses `mprotect`.
        if !tracked {
            return false;
        }
        let first = start.div_ceil(PAGE);
        let end = start.saturating_add(len) / PAGE;
        let (Ok(first32), Ok(count)) = (
            u32::try_from(first),
            u32::try_from(end.saturating_sub(first)),
        ) else {
            return false;
        };
        let range = PageRange {
            first: first32,
            count,
        };
        let named = declared(control);
        // One region per domain; naming the same one again (after a rollback to
        // before it was named) is no change.
        if count == 0 || (named.count != 0 && named != range) {
            return false;
        }
        // Writable first: from here on every write into the region is declared, and a
        // page still protected faults and is logged as well, which is merely slower.
        if !mprotect(
            (first * PAGE) as u64,
            ((end - first) * PAGE) as u64,
            PROT_READ_WRITE_EXEC,
        ) {
            return false;
        }
        // SAFETY: the control page is mapped for the domain's life, and the turn is
        // this thread's: the VMM reads the range at its next look.
        unsafe {
            write_volatile(addr_of_mut!((*control).declared), range);
        }
        true
    }

    #[inline]
    pub(super) fn will_write(address: usize, len: usize) {
        let Some(control) = control() else {
            return;
        };
        let region = declared(control);
        if region.count == 0 || len == 0 {
            return;
        }
        let (first, end) = (
            u64::from(region.first),
            u64::from(region.first) + u64::from(region.count),
        );
        let from = (address / PAGE) as u64;
        let to = ((address.saturating_add(len) - 1) / PAGE) as u64;
        for page in from.max(first)..=to.min(end - 1) {
            // Below 2^32: inside a range of `u32` page numbers.
            log(control, u32::try_from(page).unwrap_or(u32::MAX));
        }
        // The caller's stores into the pages come after the log's, also for the
        // compiler: a rollback between the two would miss the page otherwise.
        compiler_fence(Ordering::SeqCst);
    }

    /// Appends `page` to the control page's write log unless it is there already;
    /// marks the log overflowed when it is full (the VMM then reads the writable
    /// mappings, which include the whole region).
    #[cold]
    fn log(control: *mut ControlPage, page: u32) {
        // SAFETY: the control page is mapped; the turn is this thread's, so the VMM
        // does not read or clear the log meanwhile (the tender appends to it only in
        // this thread's signal handler, which does not interrupt a Rust statement
        // halfway through a store of its own).
        unsafe {
            let len =
                (read_volatile(addr_of!((*control).written_len)) as usize).min(WRITTEN_LOG_LEN);
            for index in (0..len).rev() {
                if read_volatile(addr_of!((*control).written_log[index])) == page {
                    return;
                }
            }
            if len < WRITTEN_LOG_LEN {
                write_volatile(addr_of_mut!((*control).written_log[len]), page);
                let len = u32::try_from(len + 1).unwrap_or(u32::MAX);
                write_volatile(addr_of_mut!((*control).written_len), len);
            } else {
                write_volatile(addr_of_mut!((*control).written_overflow), 1);
            }
        }
    }
}

#[cfg(test)]
mod imp {
    pub(super) fn region(_start: usize, _len: usize) -> bool {
        false
    }

    pub(super) fn will_write(_address: usize, _len: usize) {}
}
