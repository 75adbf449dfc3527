//! Kernel calls between servers and the VMM.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `SYS_CREATE_DOMAIN` request (bulk: NUL-terminated name, then the ELF image).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct CreateDomain {
    /// The parent process (its pid), for the VMM's records.
    pub parent: u32,
    /// Guest RAM of the new domain in MiB (0: the default).
    pub memory_mib: u32,
}

/// `SYS_CREATE_DOMAIN` reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Created {
    /// The new domain's id: the new process's pid.
    pub id: u32,
    /// Zero.
    pub reserved: u32,
}

/// `SYS_KILL_DOMAIN` request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct KillDomain {
    /// The domain to stop.
    pub id: u32,
    /// Zero.
    pub reserved: u32,
}

/// `SYS_START_DOMAIN` request: let a domain made by `SYS_CREATE_DOMAIN` run.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct StartDomain {
    /// The domain to start.
    pub id: u32,
    /// Zero.
    pub reserved: u32,
}

/// How a domain ended, in `SYS_DOMAIN_EXITED`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct DomainExited {
    /// The domain (the process's pid).
    pub id: u32,
    /// Its exit code when `cause` is [`EXIT_NORMAL`].
    pub code: i32,
    /// [`EXIT_NORMAL`], [`EXIT_FAULT`] or [`EXIT_KILLED`].
    pub cause: u32,
    /// Zero.
    pub reserved: u32,
}

/// The domain exited (its code is meaningful).
pub const EXIT_NORMAL: u32 = 0;
/// The domain faulted (a CPU exception, a bad message, ...): a signal-like death.
pub const EXIT_FAULT: u32 = 1;
/// The domain was killed.
pub const EXIT_KILLED: u32 = 2;
