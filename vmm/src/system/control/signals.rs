//! The signals that end `ankh up` from outside (SIGINT, SIGTERM, SIGHUP), read from a
//! signalfd on the control loop, so that the control socket is removed before the
//! process dies of them.
//!
//! A signalfd sees only blocked signals, and a signal is blocked per thread: they are
//! blocked in the thread that opens the control socket, before it starts the control
//! and vCPU threads, which inherit the mask. Signals the process ignores (`nohup`) or
//! that were blocked already are left alone.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The signals whose default action ends the process and that a person or a service
/// manager sends to stop it.
const EXIT_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// A signalfd for the exit signals this thread blocked for it.
#[derive(Debug)]
pub(super) struct ExitSignalFd {
    fd: OwnedFd,
    /// What [`ExitSignalFd::open`] blocked, to unblock it again.
    blocked: libc::sigset_t,
}

impl ExitSignalFd {
    /// Blocks, in the calling thread, every exit signal that is neither ignored nor
    /// blocked already, and opens a non-blocking signalfd for them.
    pub(super) fn open() -> io::Result<ExitSignalFd> {
        let current = signal_mask(libc::SIG_BLOCK, None)?;
        let mut set = empty_set();
        for signal in EXIT_SIGNALS {
            // SAFETY: `current` is an initialised set and `signal` a valid number.
            let blocked = unsafe { libc::sigismember(&current, signal) } == 1;
            if !blocked && has_default_action(signal)? {
                // SAFETY: `set` is an initialised set and `signal` a valid number.
                unsafe { libc::sigaddset(&mut set, signal) };
            }
        }
        signal_mask(libc::SIG_BLOCK, Some(&set))?;
        // SAFETY: `set` is an initialised set; the flags are valid; the result is
        // checked before it is used as a descriptor.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            let error = io::Error::last_os_error();
            let _ = signal_mask(libc::SIG_UNBLOCK, Some(&set));
            return Err(error);
        }
        Ok(ExitSignalFd {
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            blocked: set,
        })
    }

    /// The next pending signal, if any.
    pub(super) fn read(&self) -> io::Result<Option<libc::c_int>> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: the buffer is `size` writable bytes; the kernel writes whole records.
        let read = unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
        if read < 0 {
            let error = io::Error::last_os_error();
            return match error.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(error),
            };
        }
        if usize::try_from(read).ok() != Some(size) {
            return Ok(None);
        }
        // SAFETY: the kernel wrote a whole record.
        let info = unsafe { info.assume_init() };
        Ok(libc::c_int::try_from(info.ssi_signo).ok())
    }

    /// What [`ExitSignalFd::open`] blocked.
    pub(super) fn blocked(&self) -> BlockedSignals {
        BlockedSignals(self.blocked)
    }
}

/// Signals [`ExitSignalFd::open`] blocked in the thread that opened it.
#[derive(Clone, Copy)]
pub(super) struct BlockedSignals(libc::sigset_t);

impl std::fmt::Debug for BlockedSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockedSignals")
    }
}

impl BlockedSignals {
    /// Unblocks them in the calling thread (call it in the thread that opened the
    /// signalfd); one that came meanwhile is then delivered as usual.
    pub(super) fn unblock(self) {
        let _ = signal_mask(libc::SIG_UNBLOCK, Some(&self.0));
    }
}

impl AsRawFd for ExitSignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Dies of `signal`, as the process would have without the signalfd.
pub(super) fn die_of(signal: libc::c_int) -> ! {
    let mut set = empty_set();
    // SAFETY: `set` is an initialised set and `signal` came from the kernel.
    unsafe { libc::sigaddset(&mut set, signal) };
    if signal_mask(libc::SIG_UNBLOCK, Some(&set)).is_ok() {
        // SAFETY: raising a signal whose action is the default: the process ends.
        unsafe { libc::raise(signal) };
    }
    // Only when the action changed meanwhile: end with the status a shell gives it.
    std::process::exit(128 + signal);
}

fn empty_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the whole set.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        set.assume_init()
    }
}

/// Changes the calling thread's signal mask by `how` with `set` (none: no change);
/// returns the mask it had.
fn signal_mask(how: libc::c_int, set: Option<&libc::sigset_t>) -> io::Result<libc::sigset_t> {
    let mut old = empty_set();
    let set = set.map_or(std::ptr::null(), |set| set as *const libc::sigset_t);
    // SAFETY: `set` is null or an initialised set; `old` is writable.
    let result = unsafe { libc::pthread_sigmask(how, set, &mut old) };
    match result {
        0 => Ok(old),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

fn has_default_action(signal: libc::c_int) -> io::Result<bool> {
    let mut action = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a query (no new action); `action` is writable.
    if unsafe { libc::sigaction(signal, std::ptr::null(), action.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sigaction filled it in.
    let action = unsafe { action.assume_init() };
    Ok(action.sa_sigaction == libc::SIG_DFL)
}
