//! Shared definitions of the test images.
//!
//! [`expect`] holds every value the VMM's tests assert on; the `ankh-images` host crate
//! includes the same file, so both sides agree by construction.
#![cfg_attr(not(test), no_std)]

pub mod expect;
