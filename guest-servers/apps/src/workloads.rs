//! The names of `ubench`'s workloads, shared with the VMM's `ankh bench ubench`
//! (`ankh_images::ubench` includes this file): no dependencies.

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
