//! The memory manager's protocol: accounting of app memory against per-process limits
//! and a system-wide budget.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `MM_BRK` request and reply: the wanted (reply: the resulting) heap size in bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Brk {
    /// Heap size.
    pub size: u64,
}

/// `MM_MAP` request (`addr` ignored) and reply; `MM_UNMAP` request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Region {
    /// Region handle (an address in the process's accounting space).
    pub addr: u64,
    /// Bytes (rounded up to pages).
    pub len: u64,
}

/// `MM_USAGE` reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Usage {
    /// The caller's bytes (heap + regions).
    pub used: u64,
    /// The caller's limit.
    pub limit: u64,
    /// All processes' bytes.
    pub system_used: u64,
    /// The system-wide budget.
    pub system_budget: u64,
}

/// Default per-process limit.
pub const PROCESS_LIMIT: u64 = 16 << 20;
/// Default system-wide budget.
pub const SYSTEM_BUDGET: u64 = 64 << 20;
/// Default share of one session (a program init started and every process it
/// spawned, directly or not): half the budget, so that one program's process tree
/// cannot take all of it from the programs beside it.
pub const SESSION_SHARE: u64 = SYSTEM_BUDGET / 2;
/// Page size for rounding.
pub const PAGE: u64 = 4096;
