//! Declared writes: a region of RAM whose writes the domain reports itself, for the
//! write tracking of its checkpoints.
//!
//! The tracking costs something per page. A process domain's RAM is read-only until
//! its first write to each page, which faults; the tender logs the page and makes it
//! writable (`virtio_seep::abi::process`, `ControlPage::written_log`): a signal and an
//! `mprotect`, about 4 us on these hosts. In a VM, KVM's dirty log traps the first
//! write to a page after a checkpoint. Either way, a page kept writable instead costs a
//! copy at every checkpoint. For memory whose every writer is known, such as VFS's
//! block cache, the program can do better: it [`region`]s the memory once, and calls
//! [`will_write`] before each write into it, which appends the pages to a log (no
//! fault, no exit, no system call). The VMM copies those pages at the next checkpoint,
//! once, and never tracks the region again.
//!
//! Where the log is: a process domain's control page (outside its RAM, which a
//! rollback does not touch); in a VM, a page of the runtime's own
//! ([`DeclaredLog`](virtio_seep::abi::declared::DeclaredLog)), which the VMM empties
//! at each checkpoint, and whose region the VMM writes again after every rollback. In
//! both, the range the VMM keeps is read from there, not from this image's memory, so
//! a rollback to before the region was named leaves the guest and the VMM agreeing.
//!
//! The price is trust in the program's own bookkeeping: a write into the region that
//! was not declared (a bug, a wild pointer) is not undone when the domain is rolled
//! back. Nobody else is harmed by it: the region is the domain's own RAM.
//!
//! Without checkpoints, and in host tests, both calls do nothing.

/// Makes `len` bytes from `start` (whole pages within them) a declared region, if the
/// domain takes checkpoints, the VMM can take the region out of its tracking, and the
/// domain has no other region. True when it is one now: every later write into it
/// must be declared with [`will_write`] first.
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

    use virtio_seep::abi::process::PageRange;

    use crate::process_call::control;

    const PAGE: usize = 4096;

    pub(super) fn region(start: usize, len: usize) -> bool {
        let first = start.div_ceil(PAGE);
        let end = start.saturating_add(len) / PAGE;
        let (Ok(first), Ok(count)) = (
            u32::try_from(first),
            u32::try_from(end.saturating_sub(first)),
        ) else {
            return false;
        };
        if count == 0 {
            return false;
        }
        let range = PageRange { first, count };
        match control() {
            Some(control) => process::region(control, range),
            None => vm::region(range),
        }
    }

    #[inline]
    pub(super) fn will_write(address: usize, len: usize) {
        if len == 0 {
            return;
        }
        let log = match control() {
            Some(control) => process::log(control),
            None => vm::log(),
        };
        let Some(log) = log else {
            return;
        };
        let (first, end) = (
            u64::from(log.region.first),
            u64::from(log.region.first) + u64::from(log.region.count),
        );
        let from = (address / PAGE) as u64;
        let to = ((address.saturating_add(len) - 1) / PAGE) as u64;
        for page in from.max(first)..=to.min(end.saturating_sub(1)) {
            // Below 2^32: inside a range of `u32` page numbers.
            append(&log, u32::try_from(page).unwrap_or(u32::MAX));
        }
        // The caller's stores into the pages come after the log's, also for the
        // compiler: a rollback between the two would miss the page otherwise.
        compiler_fence(Ordering::SeqCst);
    }

    /// A write log: where its entries, their count and its overflow flag are, and the
    /// region it is for (never empty).
    struct Log {
        region: PageRange,
        len: *mut u32,
        entries: *mut u32,
        capacity: usize,
        overflow: *mut u32,
    }

    /// Appends `page` to `log` unless it is there already; marks the log overflowed
    /// when it is full (the VMM then takes the whole region as written).
    #[cold]
    fn append(log: &Log, page: u32) {
        // SAFETY: the log's pointers name memory reserved for it for the domain's life
        // (see `process::log` and `vm::log`); the turn is this thread's, so the VMM
        // does not read or clear the log meanwhile (a process domain's tender appends to
        // its log only in this thread's signal handler, which does not interrupt a Rust
        // statement halfway through a store of its own).
        unsafe {
            let len = (read_volatile(log.len) as usize).min(log.capacity);
            for index in (0..len).rev() {
                if read_volatile(log.entries.add(index)) == page {
                    return;
                }
            }
            if len < log.capacity {
                write_volatile(log.entries.add(len), page);
                write_volatile(log.len, u32::try_from(len + 1).unwrap_or(u32::MAX));
            } else {
                write_volatile(log.overflow, 1);
            }
        }
    }

    /// A process domain: the log is the control page's write log, shared with the
    /// tender's fault handler.
    mod process {
        use super::*;

        use virtio_seep::abi::process::{ControlPage, WRITTEN_LOG_LEN};

        use crate::process_call::{mprotect, PROT_READ_WRITE_EXEC};

        /// The declared region, as the control page holds it (empty: none).
        fn declared(control: *mut ControlPage) -> PageRange {
            // SAFETY: the control page is mapped for the domain's life, and the turn is
            // this thread's.
            unsafe { read_volatile(addr_of!((*control).declared)) }
        }

        pub(super) fn region(control: *mut ControlPage, range: PageRange) -> bool {
            // SAFETY: the control page is mapped for the domain's life; the VMM wrote
            // the setup before the domain started and leaves it alone.
            let tracked = unsafe { read_volatile(addr_of!((*control).setup.track_writes)) } != 0;
            // Without checkpoints there is nothing to declare to, and the seccomp filter
            // refuses `mprotect`.
            if !tracked {
                return false;
            }
            let named = declared(control);
            // One region per domain; naming the same one again (after a rollback to
            // before it was named) is no change.
            if named.count != 0 && named != range {
                return false;
            }
            // Writable first: from here on every write into the region is declared, and
            // a page still protected faults and is logged as well, which is merely
            // slower.
            let (first, count) = (range.first as usize, range.count as usize);
            if !mprotect(
                (first * PAGE) as u64,
                (count * PAGE) as u64,
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

        pub(super) fn log(control: *mut ControlPage) -> Option<Log> {
            let region = declared(control);
            // SAFETY: only addresses are taken; the control page is mapped for the
            // domain's life.
            (region.count != 0).then(|| unsafe {
                Log {
                    region,
                    len: addr_of_mut!((*control).written_len),
                    entries: addr_of_mut!((*control).written_log).cast(),
                    capacity: WRITTEN_LOG_LEN,
                    overflow: addr_of_mut!((*control).written_overflow),
                }
            })
        }
    }

    /// A VM: the log is a page of the runtime's, named to the VMM with the region.
    mod vm {
        use super::*;

        use core::cell::UnsafeCell;

        use virtio_seep::abi::declared::{DeclaredLog, DECLARED_LOG_LEN};

        use crate::hypercall;

        /// The log, a page of its own.
        #[repr(C, align(4096))]
        struct LogPage(UnsafeCell<DeclaredLog>);

        // SAFETY: the guest has one thread; the VMM touches the log only while that
        // thread is stopped (at exits).
        unsafe impl Sync for LogPage {}

        static LOG: LogPage = LogPage(UnsafeCell::new(DeclaredLog {
            requested: PageRange { first: 0, count: 0 },
            declared: PageRange { first: 0, count: 0 },
            len: 0,
            overflow: 0,
            pages: [0; DECLARED_LOG_LEN],
        }));

        /// The declared region, as the VMM wrote it (empty: none).
        fn declared() -> PageRange {
            // SAFETY: `LOG` lives for the domain's life; the VMM writes it only while
            // this thread is stopped.
            unsafe { read_volatile(addr_of!((*LOG.0.get()).declared)) }
        }

        pub(super) fn region(range: PageRange) -> bool {
            let named = declared();
            if named.count != 0 {
                return named == range;
            }
            let log = LOG.0.get();
            // SAFETY: `LOG` is reserved for the VMM's log of this domain: nothing else
            // in the runtime names it, and it lives for the domain's life.
            unsafe {
                write_volatile(addr_of_mut!((*log).requested), range);
                hypercall::declare_region(log);
            }
            declared() == range
        }

        pub(super) fn log() -> Option<Log> {
            let region = declared();
            let log = LOG.0.get();
            // SAFETY: only addresses are taken; `LOG` lives for the domain's life.
            (region.count != 0).then(|| unsafe {
                Log {
                    region,
                    len: addr_of_mut!((*log).len),
                    entries: addr_of_mut!((*log).pages).cast(),
                    capacity: DECLARED_LOG_LEN,
                    overflow: addr_of_mut!((*log).overflow),
                }
            })
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
