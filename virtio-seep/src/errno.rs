//! Error numbers carried in a reply's `status`.
//!
//! POSIX errors keep their Linux x86-64 numbers so that the OS servers of later issues
//! can hand them to programs unchanged. Ankh's own errors start at 1000.

/// An error number; 0 is success.
pub type Errno = i32;

/// Success.
pub const OK: Errno = 0;
/// No such destination or object.
pub const ENOENT: Errno = 2;
/// Bad argument.
pub const EINVAL: Errno = 22;
/// The call would deadlock.
pub const EDEADLK: Errno = 35;
/// No such operation.
pub const ENOSYS: Errno = 38;
/// The message does not fit.
pub const EMSGSIZE: Errno = 90;
/// The domain a call was waiting on stopped (it exited or faulted) before answering.
pub const EDEADSRCDST: Errno = 1000;
