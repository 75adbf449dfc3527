//! The names of `ubench`'s workloads and their operation counts, shared with the
//! VMM's `ankh bench ubench` and `ankh bench native` (`ankh_image_catalog::ubench`
//! includes this file): no dependencies.

/// The workloads, in the order `ubench` runs them when given none.
pub const WORKLOADS: [&str; 8] = [
    "syscall",
    "pipe",
    "context1",
    "spawn",
    "execl",
    "fcopy-1k",
    "fcopy-4k",
    "ds-lookup",
];

/// Operations per workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// `syscall`.
    pub syscall: u64,
    /// `pipe`.
    pub pipe: u64,
    /// `context1`.
    pub context: u64,
    /// `spawn` and `execl`.
    pub spawn: u64,
    /// `fcopy-*` (blocks).
    pub copy_blocks: u64,
    /// `ds-lookup`.
    pub ds: u64,
}

impl Budget {
    /// The `ubench` image's budget: a few seconds in all on the project's hosts.
    pub const DEFAULT: Budget = Budget {
        syscall: 5000,
        pipe: 2000,
        context: 1000,
        spawn: 50,
        copy_blocks: 512,
        ds: 5000,
    };
}
