//! The block driver domain's logic: a `no_std` virtio-blk driver on the virtio-mmio
//! transport, and the server that answers VFS's `BLK_*` requests with it.
//!
//! - [`transport`]: the device's registers ([`transport::Mmio`] in a guest: 32-bit
//!   loads and stores in the device window, each one MMIO exit);
//! - [`ring`]: the request queue in the domain's memory (one page);
//! - [`driver`]: the handshake, and reads, writes and flushes split into as few
//!   requests and notifies as the device's limits allow, completed by polling;
//! - [`server`]: [`server::BlkServer`], the `ankh_proto::server::Server` the `blk`
//!   image runs with `ankh_serve::run`, validating every request.
//!
//! The device's interface is `virtio_seep::abi::blk`; the protocol `ankh_proto::blk`.
//! Host tests (`RUSTFLAGS= cargo test` in `guest-servers/`) drive the driver and the
//! server against a fake device that plays the VMM's side of the queue.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod driver;
pub mod ring;
pub mod server;
pub mod transport;

#[cfg(test)]
mod tests;

pub use driver::{BlkDriver, Geometry, InitError, IoError};
pub use server::{BlkServer, Disk};
