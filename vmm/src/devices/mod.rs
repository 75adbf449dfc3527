//! Devices the VMM emulates for its domains, reached through MMIO exits.
//!
//! - [`blk`]: a virtio-blk disk on the virtio-mmio transport, backed by a raw image
//!   file on the host, in the device window of the one domain that owns the disk;
//! - [`fault`]: the ways a domain can misuse a device, each a fault of that domain.
//!
//! Everything a guest writes to a device (registers, rings, descriptors, request
//! headers) is validated here before it is used; nothing a guest does panics the VMM
//! or reaches the host file unless it is a well-formed request.

pub mod blk;
pub mod fault;

pub use fault::DeviceFault;
