//! Shared definitions of the test images.
//!
//! [`expect`] holds every value the VMM's tests assert on; the `ankh-images` host crate
//! includes the same file, so both sides agree by construction. [`buffer`] and
//! `report` are helpers of the IPC images.
#![cfg_attr(not(test), no_std)]

pub mod buffer;
pub mod expect;
// Uses the guest runtime, which is `no_std` with its own panic handler: not in host tests.
#[cfg(not(test))]
pub mod report;
