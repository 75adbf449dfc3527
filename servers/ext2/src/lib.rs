//! Ankh's on-disk file system: ext2 (revision 1, 4096-byte blocks) over a
//! [`BlockDevice`], readable and checkable by the standard e2fsprogs, with a redo
//! journal that makes every sync atomic. `no_std` + `alloc`, no `unsafe`, no floats;
//! everything read from the disk is checked (a corrupt disk gives `EIO`, never a
//! panic or a loop).
//!
//! - [`device`]: the [`BlockDevice`] trait and [`MemDisk`];
//! - [`fs`]: [`Ext2Fs`], the mounted file system: mount, sync, checkpoints, and
//!   [`Ext2Fs::recover`], which leaves a stopped system's disk clean for e2fsck;
//! - `namei`, `file`: its operations on paths and names, and on file data, with the
//!   semantics and errors of the VFS server's in-memory tree;
//! - `dir`, `blockmap`, `allocator`: directories, block maps, bitmaps and counts;
//! - [`journal`]: the redo journal (format and crash argument in its documentation);
//! - `cache`, `runs`: the block cache and I/O coalesced into runs;
//! - [`layout`], [`superblock`], [`group`], [`inode`], [`dirent`], [`bitmap`],
//!   [`checksum`]: the on-disk format and its parts (paths: `ankh_proto::path`);
//! - [`mkfs`](mod@mkfs), [`image`]: making file systems and images;
//!   [`sparse`](mod@sparse): the compact form of an image embedded in a binary.
//!
//! The crate owns no device and no transport: every operation is handed the device
//! by its caller (inside a guest, the `blk` driver reachable only during a request).
//! It knows nothing of processes, descriptors or pipes, which stay in the VFS server.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod allocator;
pub mod bitmap;
mod blockmap;
mod cache;
pub mod checksum;
pub mod device;
mod dir;
pub mod dirent;
mod file;
pub mod fs;
pub mod group;
pub mod image;
pub mod inode;
pub mod journal;
pub mod layout;
pub mod mkfs;
mod namei;
mod runs;
pub mod sparse;
pub mod superblock;

pub use cache::DeclaredWrites;
pub use device::{BlockDevice, MemDisk, BLOCK_SIZE};
pub use fs::{Ext2Fs, Ino, MountRepairs, DEFAULT_CACHE_BLOCKS, ROOT};
pub use image::Image;
pub use mkfs::mkfs;
pub use sparse::{sparse, sparse_len, unsparse_into};
