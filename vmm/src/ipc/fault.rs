//! The ways a domain can misuse IPC. Each stops that domain only.

use virtio_seep::message::DomainId;

use crate::virtq::QueueFault;

/// A domain's IPC misbehaviour.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IpcFault {
    /// The queue setup was refused.
    #[error("bad queue setup: {0}")]
    BadSetup(String),
    /// The domain used IPC before setting its queues up, or set them up twice.
    #[error("IPC used {0}")]
    NotSetUp(&'static str),
    /// A buffer is unusable: address outside the domain's memory or in the VMM's area,
    /// wrong direction, too short.
    #[error("bad descriptor: {0}")]
    BadDescriptor(String),
    /// Lengths that do not add up or exceed their limits.
    #[error("bad length: {0}")]
    BadLength(String),
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
    MessageStorm(String),
    /// A notify value that is not an IPC operation, or an AwaitReply with no request.
    #[error("bad IPC operation: {0}")]
    BadOperation(String),
    /// A message had to be delivered but the domain posted no RX buffer for it.
    #[error("no receive buffer posted on the RX queue")]
    NoReceiveBuffer,
}

impl IpcFault {
    /// A short, stable name of the kind, for logs, JSON and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            IpcFault::BadSetup(_) => "bad-setup",
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
