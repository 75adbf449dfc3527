//! Ankh's virtual file system server (VFS), written once as a no_std state machine
//! over [`ankh_proto::server`], whatever runs it (a KVM domain, a host process, one
//! address space).
//!
//! - [`server`]: [`Vfs`], the [`Server`](ankh_proto::server::Server): dispatch,
//!   process spawn and exit, publishing the open-file count to DS;
//! - `ops`: the handlers of the file, directory and descriptor requests;
//! - [`tree`]: directories, inodes and path resolution;
//! - [`path`]: path syntax and limits (`ankh_proto::path`, shared with ext2);
//! - [`fs`]: [`FileSystem`](fs::FileSystem), where the tree lives: in memory
//!   ([`tree`]) or on a disk (`ankh_ext2`, through [`blk_client`]);
//! - [`storage`]: file data per inode of the in-memory tree ([`MemStorage`]);
//! - [`fd`]: per-process descriptor tables over the system-wide open-file table;
//! - [`space`]: each session's share of the file system's space;
//! - [`pipe`]: pipes and the reads and writes parked on them.
//!
//! The protocol is `ankh_proto::vfs` with the opcodes `VFS_*` of
//! `virtio_seep::opcode`. This crate owns no transport and touches no other server's
//! state: it only calls the kernel (for the root file system) and DS (to publish).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod backend;
pub mod blk_client;
pub mod disk;
pub mod fd;
pub mod fs;
mod ops;
pub use ankh_ext2::DeclaredWrites;
pub use ankh_proto::path;
pub mod pipe;
pub mod server;
pub mod space;
pub mod storage;
pub mod tree;

#[cfg(test)]
mod tests;

pub use server::{Config, Vfs, DEFAULT_MAX_INODES};
pub use storage::{MemStorage, Storage, DEFAULT_DATA_BUDGET};
