//! The block driver's protocol (`BLK_*` opcodes), spoken by VFS to the `blk` domain.
//!
//! Sectors are 512 bytes. `BLK_READ` and `BLK_WRITE` carry a [`Range`] in the payload;
//! a read's data comes back in the reply's bulk, a write's goes in the request's bulk
//! (exactly `count * SECTOR_SIZE` bytes). At most [`IO_MAX`] bytes move per message.
//! `BLK_FLUSH` returns once every write the driver has answered is durable on the
//! host. `BLK_INFO` answers a [`Geometry`]. Errors: `EINVAL` for a range past the end
//! of the device or a bulk of the wrong length, `EIO` when the device fails a request.
//! Reads are Query messages; writes and flushes are Update messages. Every request is
//! idempotent, so a client may re-issue it after the driver was restarted (`ERESTART`).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Bytes per sector.
pub const SECTOR_SIZE: usize = 512;
/// Most bytes one `BLK_READ` or `BLK_WRITE` moves (the bulk limit of a message).
pub const IO_MAX: usize = 1 << 20;
/// Most sectors one request moves.
pub const SECTORS_MAX: u32 = 2048;

const _: () = assert!(SECTORS_MAX as usize * SECTOR_SIZE == IO_MAX);

/// `BLK_READ` / `BLK_WRITE` request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Range {
    /// The first sector.
    pub sector: u64,
    /// Sectors (1 to [`SECTORS_MAX`]).
    pub count: u32,
    /// Zero.
    pub reserved: u32,
}

/// `BLK_INFO` reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Geometry {
    /// Sectors on the device.
    pub sectors: u64,
    /// Bytes per sector ([`SECTOR_SIZE`]).
    pub sector_size: u32,
    /// 1 when the device refuses writes.
    pub read_only: u32,
}
