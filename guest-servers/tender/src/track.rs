//! Write tracking for checkpoints: with `Setup::track_writes`, guest RAM starts
//! read-only (and executable) in this process; the VMM's own mapping of the same memfd
//! stays writable. The first write of the guest to a protected page faults; the
//! handler logs the page in the control page's `written_log`, makes the page writable
//! and returns, so the instruction runs again and succeeds. A page stays writable (the
//! VMM copies it at every checkpoint: it is *hot*) until the VMM hands it back in the
//! `reprotect` list, which is applied before the guest runs again.
//!
//! Nothing else of the process writes guest RAM: the only system calls left after the
//! lock-down (futex, mprotect, rt_sigreturn) read none of it, and signal frames go to
//! the tender's own stack. So every write of the domain to its RAM is a write of the
//! guest's instructions, and either hits a writable page (known to the VMM) or faults
//! here.

use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

use virtio_seep::abi::process::{ControlPage, RAM_START, REPROTECT_LEN, WRITTEN_LOG_LEN};

use crate::sys;

/// Whether the guest's writes are tracked (set once during the setup).
static mut TRACKING: bool = false;

/// `SEGV_ACCERR`: an access the mapping's protection refuses.
const SEGV_ACCERR: i32 = 2;
/// The page-fault error code's "write" bit.
const PF_WRITE: u64 = 1 << 1;
/// The page-fault vector.
const PAGE_FAULT: u64 = 14;

/// Turns write tracking on (during the single-threaded setup).
pub fn enable() {
    // SAFETY: single-threaded setup, before any handler can run.
    unsafe { TRACKING = true };
}

fn enabled() -> bool {
    // SAFETY: written once during the setup.
    unsafe { read_volatile(&raw const TRACKING) }
}

/// A fault of the CPU, as the signal describes it.
pub struct Fault {
    /// The signal's `si_code`.
    pub code: i32,
    /// The trap number.
    pub vector: u64,
    /// The page-fault error code.
    pub error_code: u64,
    /// The faulting address.
    pub address: u64,
}

/// Whether `fault` is a write to a page of guest RAM protected for tracking; if so
/// the page is logged and made writable, and the guest may run the instruction again.
/// Guest RAM is mapped executable and readable throughout, so a refused *write* inside
/// it is never the guest's own fault.
pub fn on_fault(control: *mut ControlPage, fault: &Fault, memory_end: u64) -> bool {
    let tracked = enabled()
        && fault.code == SEGV_ACCERR
        && fault.vector == PAGE_FAULT
        && fault.error_code & PF_WRITE != 0
        && fault.address >= RAM_START
        && fault.address < memory_end;
    tracked && make_writable(control, fault.address / 4096, memory_end)
}

/// Logs page `page` as written and makes it writable. False when it cannot be made
/// writable (the process's mapping count is exhausted and even all of RAM could not be
/// unprotected): the write is then the guest's fault.
pub fn make_writable(control: *mut ControlPage, page: u64, memory_end: u64) -> bool {
    if !enabled() {
        // All of RAM is writable, and the filter refuses mprotect.
        return true;
    }
    // SAFETY: the control page is mapped for the process's life; the VMM reads the log
    // only while the turn is its own, and the guest is running now.
    unsafe {
        let len = read_volatile(addr_of!((*control).written_len)) as usize;
        if len < WRITTEN_LOG_LEN {
            write_volatile(addr_of_mut!((*control).written_log[len]), page as u32);
            write_volatile(addr_of_mut!((*control).written_len), len as u32 + 1);
        } else {
            write_volatile(addr_of_mut!((*control).written_overflow), 1);
        }
    }
    if protect(page * 4096, 4096, sys::mmap::PROT_RWX) {
        return true;
    }
    // Each page protected apart from its neighbours is a mapping of its own, and a
    // process has a bounded number: give up on tracking page by page until the VMM
    // looks (it then finds the writable ranges itself).
    // SAFETY: as above.
    unsafe { write_volatile(addr_of_mut!((*control).written_overflow), 1) };
    protect(RAM_START, memory_end - RAM_START, sys::mmap::PROT_RWX)
}

/// Applies the VMM's `reprotect` list (before the guest runs again) and clears it.
pub fn apply_reprotect(control: *mut ControlPage, memory_end: u64) {
    // SAFETY: the control page is mapped; the turn is the guest's again, so the VMM
    // does not touch the list until the next exit.
    let len = unsafe { read_volatile(addr_of!((*control).reprotect_len)) } as usize;
    if len == 0 {
        return;
    }
    let mut failed = false;
    for index in 0..len.min(REPROTECT_LEN) {
        // SAFETY: as above; `index` is within the list.
        let range = unsafe { read_volatile(addr_of!((*control).reprotect[index])) };
        let start = u64::from(range.first) * 4096;
        let end = start + u64::from(range.count) * 4096;
        let valid = range.count > 0 && start >= RAM_START && end <= memory_end;
        failed |= !(valid && protect(start, end - start, sys::mmap::PROT_RX));
    }
    // SAFETY: as above.
    unsafe {
        if failed {
            write_volatile(addr_of_mut!((*control).reprotect_failed), 1);
        }
        write_volatile(addr_of_mut!((*control).reprotect_len), 0);
    }
}

fn protect(start: u64, len: u64, protection: u64) -> bool {
    // SAFETY: mprotect of a range of guest RAM, which this process maps for its life
    // and uses for nothing of its own.
    unsafe { sys::syscall6(sys::nr::MPROTECT, [start, len, protection, 0, 0, 0]) == 0 }
}
