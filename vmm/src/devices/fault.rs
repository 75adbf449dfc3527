//! The ways a domain can misuse its device. Each stops that domain only.

use crate::virtq::QueueFault;

/// A domain's device misbehaviour (a `DomainFault::Device`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceFault {
    /// An access that is not a 32-bit aligned register access (config space: a read of
    /// 1, 2, 4 or 8 aligned bytes), a read of a write-only register or a write to a
    /// read-only one.
    #[error("{} of {len} bytes at register offset {offset:#x} is not allowed", if *write { "write" } else { "read" })]
    BadRegisterAccess {
        /// Offset from the start of the register block.
        offset: u64,
        /// Access width in bytes.
        len: usize,
        /// True for a write.
        write: bool,
    },
    /// The driver broke the virtio initialization protocol (e.g. a notify before
    /// `DRIVER_OK`, a queue changed while it is ready).
    #[error("driver protocol violation: {0}")]
    Protocol(&'static str),
    /// The request queue broke the virtqueue rules: made ready with a bad size or ring
    /// addresses, an avail index running ahead, or a malformed chain (index out of
    /// range, loop, longer than `SEG_MAX` + 2, indirect).
    #[error("request queue: {0}")]
    Queue(QueueFault),
    /// A buffer outside guest RAM or in the VMM's area, or one with the wrong
    /// direction or length for its place in the request.
    #[error("bad descriptor: {0}")]
    BadDescriptor(String),
    /// A read or write whose sectors go past the end of the disk (or overflow).
    #[error("sectors {sector}+{count} are past the end of the disk ({capacity} sectors)")]
    SectorOutOfRange {
        /// The first sector asked for.
        sector: u64,
        /// The sectors asked for.
        count: u64,
        /// Sectors on the disk.
        capacity: u64,
    },
    /// Data segments whose lengths do not make whole sectors, or are empty.
    #[error("data length {len} is not a positive multiple of 512")]
    UnalignedLength {
        /// The total data length of the request.
        len: u64,
    },
    /// A data segment longer than the device's `SIZE_MAX`.
    #[error("data segment of {len} bytes (max {max})")]
    SegmentTooLong {
        /// The segment's length.
        len: u32,
        /// The limit.
        max: u32,
    },
}

impl DeviceFault {
    /// A short, stable name of the kind, for logs, JSON and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            DeviceFault::BadRegisterAccess { .. } => "device-bad-register-access",
            DeviceFault::Protocol(_) => "device-protocol",
            DeviceFault::Queue(fault) => match fault {
                QueueFault::IndexOutOfRange { .. } | QueueFault::Unreadable { .. } => {
                    "device-bad-descriptor"
                }
                QueueFault::Loop => "device-descriptor-loop",
                QueueFault::ChainTooLong { .. } => "device-chain-too-long",
                QueueFault::Indirect { .. } => "device-indirect-descriptor",
                QueueFault::BadSize { .. }
                | QueueFault::Misaligned { .. }
                | QueueFault::RingRange { .. }
                | QueueFault::Rejected(_)
                | QueueFault::AvailRing(_)
                | QueueFault::UsedRing(_) => "device-bad-queue",
            },
            DeviceFault::BadDescriptor(_) => "device-bad-descriptor",
            DeviceFault::SectorOutOfRange { .. } => "device-sector-out-of-range",
            DeviceFault::UnalignedLength { .. } => "device-unaligned-length",
            DeviceFault::SegmentTooLong { .. } => "device-segment-too-long",
        }
    }
}
