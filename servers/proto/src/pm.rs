//! The process manager's protocol.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `PM_SPAWN` request; the bulk data is `path\0arg0\0arg1\0...` (NUL-terminated list).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Spawn {
    /// [`SPAWN_INHERIT_FDS`] or 0.
    pub flags: u32,
    /// Zero.
    pub reserved: u32,
}

/// The child gets copies of the parent's open descriptors.
pub const SPAWN_INHERIT_FDS: u32 = 1;

/// Longest argument list (bytes of the bulk list).
pub const ARG_MAX: usize = 4096;

/// `PM_WAIT` request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Wait {
    /// The child to wait for, or -1 for any.
    pub pid: i32,
    /// Zero.
    pub reserved: u32,
}

/// `PM_WAIT` reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct WaitStatus {
    /// The child that ended.
    pub pid: u32,
    /// Its exit code (when `cause` is `sys::EXIT_NORMAL`).
    pub code: i32,
    /// How it ended: `sys::EXIT_NORMAL`, `EXIT_FAULT` (killed by a fault, like a
    /// signal) or `EXIT_KILLED`.
    pub cause: u32,
    /// Zero.
    pub reserved: u32,
}

/// `PM_GETPID` / `PM_GETPPID` / `PM_SPAWN` reply, `PM_KILL` request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PidRecord {
    /// A pid.
    pub pid: u32,
    /// Zero.
    pub reserved: u32,
}

/// One entry of the `PM_PS` reply (bulk data: consecutive entries).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ProcEntry {
    /// The process.
    pub pid: u32,
    /// Its parent (0 for init).
    pub ppid: u32,
    /// [`STATE_RUNNING`] or [`STATE_ZOMBIE`].
    pub state: u32,
    /// Zero.
    pub reserved: u32,
}

/// A live process.
pub const STATE_RUNNING: u32 = 0;
/// Ended, not yet waited for.
pub const STATE_ZOMBIE: u32 = 1;

/// Most live processes.
pub const PROC_MAX: usize = 64;

/// Most entries (live or zombie) one *session* may hold in PM's table: a program init
/// started (or a domain PM did not spawn) and every process it spawned, directly or
/// not, orphans included. Beyond it `PM_SPAWN` answers `EAGAIN`, so one program's
/// process tree cannot fill the table and starve the others (init's own spawns are
/// bounded by `PROC_MAX` only).
pub const SESSION_PROCS_MAX: usize = 24;

/// `EPERM` unless `source` is the process manager `manager`, the only sender of the
/// process lifecycle notices (`*_PROC_SPAWN`, `*_PROC_EXIT`); any source when the
/// server was not told who PM is (a server run on its own, in tests).
pub fn check_manager(
    manager: Option<crate::Pid>,
    source: crate::Pid,
) -> Result<(), crate::errno::Errno> {
    match manager {
        Some(pm) if pm != source => Err(crate::errno::EPERM),
        _ => Ok(()),
    }
}
