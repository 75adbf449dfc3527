//! The contract between the Ankh VMM and its guests, shared by both sides.
//!
//! This crate is `no_std` and has no `unsafe`: the guests link it into images built
//! SSE-free, the VMM links it into the host binary, and both therefore agree on every
//! constant by construction.
//!
//! It owns:
//! - [`abi`]: the ABI version every image embeds, the hypercall interface (ports,
//!   registers, meanings), the guest-physical memory layout the VMM sets up and the
//!   boot information it hands to the guest;
//! - [`message`]: the wire format of a message (header, inline payload, bulk data);
//! - [`opcode`]: the opcode registry with each opcode's SEEP class;
//! - [`errno`]: the error numbers replies carry;
//! - [`queue`]: the virtqueue pair of a domain and the IPC notify hypercall;
//! - [`split`]: the split-virtqueue layout the guest drivers use (IPC, virtio-blk).
//!
//! It must never contain host-only code (KVM, files, threads) nor guest-only code
//! (port I/O, linker symbols).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod abi;
pub mod errno;
pub mod message;
pub mod opcode;
pub mod queue;
pub mod split;
