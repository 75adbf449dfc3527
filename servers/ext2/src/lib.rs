//! Ankh's on-disk file system: ext2 (revision 1) over a [`BlockDevice`].
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod device;

pub use device::{BlockDevice, MemDisk, BLOCK_SIZE};
