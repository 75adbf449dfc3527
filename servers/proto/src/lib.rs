//! The protocols of Ankh's OS servers and the interface every server is written
//! against, whatever runs it (a KVM domain, a host process, one address space).
//!
//! - [`server`]: [`server::Server`] (a state machine over requests) and
//!   [`server::Kernel`] (what a server may do: call other servers, answer parked
//!   requests);
//! - [`wire`]: fixed-layout request and reply records (inline payloads), and the
//!   NUL-separated string lists carried in bulk data (paths, argv, keys);
//! - [`pm`], [`vfs`], [`ds`], [`mm`], [`sys`]: each server's records and constants;
//! - [`rootfs`]: the root file system archive VFS loads at boot.
//!
//! Opcodes and their SEEP classes live in `virtio_seep::opcode`, errnos in
//! `virtio_seep::errno`. The protocol identifies processes by the domain id of their
//! app domain: a pid *is* that domain id, and the VMM stamps it as the `source` of
//! every message, so no server trusts a pid written by a client for "who am I".
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod blk;
pub mod diskbench;
pub mod ds;
pub mod mm;
pub mod path;
pub mod pm;
pub mod rootfs;
pub mod server;
pub mod sys;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vfs;
pub mod wire;

pub use virtio_seep::errno::{self, Errno};
pub use virtio_seep::message::DomainId;
pub use virtio_seep::opcode;

/// A process id: the domain id of the process's app domain.
pub type Pid = DomainId;
