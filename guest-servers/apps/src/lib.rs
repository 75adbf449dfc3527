//! Ankh's user programs and what they share.
//!
//! The images (`src/bin/`, each `/bin/<name>` in the root file system):
//! - `init`: the first process; runs the job named in `/etc/init.job` ([`paths`]);
//! - `suite`: the OS conformance suite ([`suite`]), `N passed, M failed`;
//! - `ubench`: Unixbench-style workloads ([`bench`]);
//! - `hello-os`: prints its pid; `flood`: malformed calls to every server ([`flood`]);
//! - helpers the suite and the benchmark spawn: `pipe-child` (echoes one pipe into
//!   another), `child-exit3`, `child-ud2`, `child-sleep`, `child-hog`,
//!   `child-subscribe` (see [`paths`]);
//! - `disk-writer`, `disk-check`: files made durable, then read back ([`durability`]);
//! - `disk-bench`: sequential and random file I/O, timed by the host ([`diskbench`]);
//! - `hostile`: attacks on the servers' resources, to run beside the suite
//!   ([`hostile`]).
//!
//! Everything here is generic over `ankh_ulib::Channel` and writes through [`out::Out`],
//! so the host tests can run the suite's server checks against the real server crates
//! in one process (`tests` of this crate).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod bench;
pub mod check;
pub mod diskbench;
pub mod durability;
pub mod flood;
pub mod helpers;
pub mod hostile;
pub mod init;
pub mod out;
pub mod paths;
pub mod restart;
pub mod suite;
pub mod workloads;

#[cfg(test)]
mod tests;
