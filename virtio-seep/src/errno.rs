//! Error numbers carried in a reply's `status`.
//!
//! POSIX errors keep their Linux x86-64 numbers so that the OS servers of later issues
//! can hand them to programs unchanged. Ankh's own errors start at 1000.

/// An error number; 0 is success.
pub type Errno = i32;

/// Success.
pub const OK: Errno = 0;
/// Operation not permitted.
pub const EPERM: Errno = 1;
/// No such file, directory or object.
pub const ENOENT: Errno = 2;
/// No such process.
pub const ESRCH: Errno = 3;
/// Argument list too long.
pub const E2BIG: Errno = 7;
/// Not an executable image.
pub const ENOEXEC: Errno = 8;
/// Bad file descriptor.
pub const EBADF: Errno = 9;
/// No child processes.
pub const ECHILD: Errno = 10;
/// Try again.
pub const EAGAIN: Errno = 11;
/// Out of memory (budget exceeded).
pub const ENOMEM: Errno = 12;
/// Input/output error (a block device failed).
pub const EIO: Errno = 5;
/// Bad address.
pub const EFAULT: Errno = 14;
/// File exists.
pub const EEXIST: Errno = 17;
/// Not a directory.
pub const ENOTDIR: Errno = 20;
/// Is a directory.
pub const EISDIR: Errno = 21;
/// Bad argument.
pub const EINVAL: Errno = 22;
/// Too many open files in the system.
pub const ENFILE: Errno = 23;
/// Too many open files in the process.
pub const EMFILE: Errno = 24;
/// Illegal seek (on a pipe).
pub const ESPIPE: Errno = 29;
/// No space left.
pub const ENOSPC: Errno = 28;
/// Broken pipe.
pub const EPIPE: Errno = 32;
/// The call would deadlock.
pub const EDEADLK: Errno = 35;
/// File name too long.
pub const ENAMETOOLONG: Errno = 36;
/// No such operation.
pub const ENOSYS: Errno = 38;
/// Directory not empty.
pub const ENOTEMPTY: Errno = 39;
/// The message does not fit.
pub const EMSGSIZE: Errno = 90;
/// The caller left too many replies untaken: this one's data was dropped (the VMM
/// holds a bounded number of bytes for each domain).
pub const ENOBUFS: Errno = 105;
/// The domain a call was waiting on stopped (it exited or faulted) before answering.
pub const EDEADSRCDST: Errno = 1000;
/// The server faulted while handling the request and was recovered (rolled back or
/// restarted): the request was not carried out, and is not replayed. The caller may
/// try again (like `ERESTART` in MINIX/OSIRIS error virtualization).
pub const ERESTART: Errno = 1001;
