//! The ways a domain can misuse IPC. Each stops that domain only.

use virtio_seep::message::{DomainId, BULK_MAX, INLINE_PAYLOAD_MAX};

use crate::virtq::{QueueFault, RangeFault};

/// A domain's IPC misbehaviour.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IpcFault {
    /// The queue setup record is not readable where the domain said it is.
    #[error("bad queue setup: setup record at {address:#x}: {fault}")]
    BadSetup {
        /// Where the domain said the record is.
        address: u64,
        /// Why it cannot be read there.
        fault: RangeFault,
    },
    /// The domain used IPC before setting its queues up, or set them up twice.
    #[error("IPC used {0}")]
    NotSetUp(&'static str),
    /// A buffer is unusable: address outside the domain's memory or in the VMM's area,
    /// wrong direction, too short.
    #[error("bad descriptor: {0}")]
    BadDescriptor(DescriptorFault),
    /// Lengths that do not add up or exceed their limits.
    #[error("bad length: {0}")]
    BadLength(LengthFault),
    /// The TX or RX queue broke the virtqueue rules: a bad ring (size, alignment,
    /// range), an avail index running ahead, or a malformed chain (index out of range,
    /// loop, too long, indirect).
    #[error("{queue} queue: {fault}")]
    Queue {
        /// `"TX"` or `"RX"`.
        queue: &'static str,
        /// What was wrong.
        fault: QueueFault,
    },
    /// An opcode not in the registry.
    #[error("unknown opcode {0:#06x}")]
    UnknownOpcode(u16),
    /// A destination the call graph does not allow (or that does not exist).
    #[error("destination {0} is not a domain this one may call")]
    ForbiddenDestination(DomainId),
    /// A reply to a request the domain did not receive or already answered.
    #[error("reply to request {0}, which this domain has not received or already answered")]
    ReplyWithoutCaller(u64),
    /// More messages than the configured rate allows, or a flooded destination.
    #[error("message storm: {0}")]
    MessageStorm(StormLimit),
    /// A notify value that is not an IPC operation, or a wait that cannot be.
    #[error("bad IPC operation: {0}")]
    BadOperation(OperationFault),
    /// A message had to be delivered but the domain posted no RX buffer for it.
    #[error("no receive buffer posted on the RX queue")]
    NoReceiveBuffer,
}

impl IpcFault {
    /// A short, stable name of the kind, for logs, JSON and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            IpcFault::BadSetup { .. } => "bad-setup",
            IpcFault::NotSetUp(_) => "not-set-up",
            IpcFault::BadDescriptor(_) => "bad-descriptor",
            IpcFault::BadLength(_) => "bad-length",
            IpcFault::Queue { fault, .. } => fault.kind(),
            IpcFault::UnknownOpcode(_) => "unknown-opcode",
            IpcFault::ForbiddenDestination(_) => "forbidden-destination",
            IpcFault::ReplyWithoutCaller(_) => "reply-without-caller",
            IpcFault::MessageStorm(_) => "message-storm",
            IpcFault::BadOperation(_) => "bad-operation",
            IpcFault::NoReceiveBuffer => "no-receive-buffer",
        }
    }
}

/// A guest buffer the IPC path reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffer {
    /// The first TX descriptor: header and inline payload.
    TxHeader,
    /// The inline payload after the TX header.
    Payload,
    /// A bulk data segment of a TX chain.
    BulkSegment,
    /// The first RX descriptor: where header and payload are written.
    RxHeader,
    /// The second RX descriptor: where bulk data is written.
    RxBulk,
}

impl std::fmt::Display for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Buffer::TxHeader => "TX header buffer",
            Buffer::Payload => "payload",
            Buffer::BulkSegment => "bulk segment",
            Buffer::RxHeader => "RX header buffer",
            Buffer::RxBulk => "RX bulk buffer",
        })
    }
}

/// Why a descriptor's buffer is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DescriptorFault {
    /// A TX descriptor the device would write.
    #[error("TX descriptor marked device-writable")]
    TxWritable,
    /// An RX descriptor the device may not write.
    #[error("RX descriptor not device-writable")]
    RxNotWritable,
    /// A buffer outside the domain's RAM, or in the VMM's area.
    #[error("{buffer}: {fault}")]
    Range {
        /// Which buffer.
        buffer: Buffer,
        /// What is wrong with its range.
        fault: RangeFault,
    },
}

/// Which lengths of a message do not add up or exceed their limits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LengthFault {
    /// The first TX descriptor cannot hold a header.
    #[error("header descriptor of {descriptor} bytes")]
    ShortHeader {
        /// The descriptor's length.
        descriptor: u32,
    },
    /// The header announces more inline payload than a message may carry.
    #[error("inline payload of {len} bytes (max {INLINE_PAYLOAD_MAX})")]
    PayloadTooLong {
        /// The announced length.
        len: u64,
    },
    /// The payload runs past the end of its descriptor.
    #[error("payload of {len} bytes does not fit its {descriptor}-byte descriptor")]
    PayloadPastDescriptor {
        /// The announced length.
        len: u64,
        /// The descriptor's length.
        descriptor: u32,
    },
    /// The header announces more bulk data than a message may carry.
    #[error("bulk data of {len} bytes (max {BULK_MAX})")]
    BulkTooLong {
        /// The announced length.
        len: u32,
    },
    /// The bulk descriptors do not hold what the header announces.
    #[error("bulk descriptors hold {segments} bytes, header says {header}")]
    BulkMismatch {
        /// Bytes in the bulk descriptors.
        segments: u64,
        /// Bytes the header announces.
        header: u32,
    },
    /// The posted RX buffer cannot hold the message's header and payload.
    #[error("RX header buffer of {descriptor} bytes, message needs {needed}")]
    ShortRxHeader {
        /// The descriptor's length.
        descriptor: u32,
        /// What the message needs.
        needed: usize,
    },
}

/// Which limit a message storm ran into (see `StormLimits`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StormLimit {
    /// Kernel calls faster than the domain's token bucket allows.
    #[error("kernel calls over the rate")]
    KernelCallRate,
    /// Messages faster than the domain's token bucket allows.
    #[error("more than {burst} messages at once or {per_second} per second")]
    Rate {
        /// The bucket's size.
        burst: u32,
        /// Its refill rate.
        per_second: u32,
    },
    /// Too many requests whose replies the domain has not taken.
    #[error("{limit} requests in flight whose replies it has not taken")]
    Outstanding {
        /// The limit.
        limit: u32,
    },
    /// Too many one-way messages of the domain wait undelivered.
    #[error("{limit} one-way messages not yet delivered")]
    OneWay {
        /// The limit.
        limit: u32,
    },
    /// A one-way message to a domain whose inbox is full.
    #[error("one-way message to domain {to}, whose inbox is full")]
    InboxFull {
        /// The destination.
        to: DomainId,
    },
}

/// Why an IPC operation cannot be done.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OperationFault {
    /// The notify value decodes to no operation.
    #[error("value {0:#x}")]
    Undecodable(u32),
    /// A receive from a domain that does not exist, or from itself.
    #[error("receive from domain {0}")]
    ReceiveFrom(DomainId),
    /// An `AwaitReply` in a call that sent no request.
    #[error("AwaitReply without a request in the same call")]
    AwaitWithoutRequest,
    /// An `AwaitReply` for a request already answered (and its reply taken).
    #[error("AwaitReply for an answered request")]
    AwaitAnswered,
}
