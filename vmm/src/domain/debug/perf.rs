//! A hardware execute breakpoint on a process domain, through Linux's perf events: the
//! process-substrate counterpart of KVM_SET_GUEST_DEBUG's DR0. The kernel programs the
//! debug register whenever the process runs, counts every execution of the address in
//! user mode, and at the `period`-th sends the process a synchronous SIGTRAP
//! (`si_code` TRAP_PERF) before the instruction executes, with the resume flag set in
//! its saved flags so that the instruction then runs once without trapping again. The
//! tender reports that signal as a #DB exit; no hit before it costs a stop.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};

use perf_event_open_sys::bindings;

/// An execute breakpoint at one address of one process, with its hit counter.
#[derive(Debug)]
pub struct PerfBreakpoint {
    event: File,
}

impl PerfBreakpoint {
    /// Counts the executions of `address` by process `pid` and signals the `period`-th.
    pub fn open(pid: u32, address: u64, period: u64) -> std::io::Result<PerfBreakpoint> {
        let mut attr = bindings::perf_event_attr {
            type_: bindings::PERF_TYPE_BREAKPOINT,
            size: u32::try_from(std::mem::size_of::<bindings::perf_event_attr>())
                .expect("a small struct"),
            bp_type: bindings::HW_BREAKPOINT_X,
            ..Default::default()
        };
        attr.__bindgen_anon_3.bp_addr = address;
        // An execute breakpoint covers one instruction start; x86 wants the length of
        // a long for it.
        attr.__bindgen_anon_4.bp_len = std::mem::size_of::<u64>() as u64;
        attr.__bindgen_anon_1.sample_period = period.max(1);
        attr.set_exclude_kernel(1);
        attr.set_exclude_hv(1);
        // A synchronous SIGTRAP at the overflow; the kernel requires removal on exec
        // with it (the tender never execs).
        attr.set_sigtrap(1);
        attr.set_remove_on_exec(1);
        let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::ErrorKind::InvalidInput)?;
        // SAFETY: `attr` is a complete perf_event_attr (zeroed but for the fields set
        // above) that the kernel only reads; the returned descriptor is checked.
        let fd = unsafe {
            perf_event_open_sys::perf_event_open(
                &mut attr,
                pid,
                -1,
                -1,
                libc::c_ulong::from(bindings::PERF_FLAG_FD_CLOEXEC),
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new descriptor that nothing else owns.
        let event = unsafe { File::from_raw_fd(fd) };
        Ok(PerfBreakpoint { event })
    }

    /// Executions counted so far (0 if the count cannot be read).
    pub fn hits(&self) -> u64 {
        let mut count = [0u8; 8];
        match (&self.event).read_exact(&mut count) {
            Ok(()) => u64::from_ne_bytes(count),
            Err(_) => 0,
        }
    }

    /// Stops counting and signalling (the count stays readable).
    pub fn disable(&self) {
        // SAFETY: an ioctl without a pointer argument on our own perf descriptor.
        unsafe { perf_event_open_sys::ioctls::DISABLE(self.event.as_raw_fd(), 0) };
    }
}
