//! The queue pair of a domain and the IPC hypercall.
//!
//! Every domain owns two virtio split virtqueues in its own memory: TX (domain to VMM)
//! carries the messages it sends, RX (VMM to domain) the buffers the VMM delivers
//! messages into. The guest registers them once with the `IpcSetup` hypercall (`rdi` =
//! address of a [`QueueSetup`]); the VMM validates every address and then drives them
//! as the device side.
//!
//! Notification: the `Ipc` hypercall is the queue notify. Its value ([`IpcOp`] in the
//! low 8 bits, a source domain in the upper 24) says what the domain does after the VMM
//! has consumed every chain on its TX queue:
//! - [`IpcOp::Flush`]: continue (`send`, `reply`);
//! - [`IpcOp::Receive`]: wait until a message is delivered on RX (`receive`,
//!   `reply_recv`); with a source, only a message from that domain;
//! - [`IpcOp::AwaitReply`]: the last TX chain was a request; wait until its reply is
//!   delivered on RX (`sendrec`).
//!
//! The VMM writes to RX only while the domain waits, one message per wait, so the
//! domain needs only one RX chain posted. Each IPC operation therefore costs one exit on
//! the calling side.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::message::DomainId;

/// Where one split virtqueue lives in guest memory.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct RingAddresses {
    /// Descriptor table (16-byte aligned, `size` entries of 16 bytes).
    pub desc: u64,
    /// Available ring (2-byte aligned).
    pub avail: u64,
    /// Used ring (4-byte aligned).
    pub used: u64,
    /// Number of descriptors: a power of two, at most [`QUEUE_SIZE_MAX`].
    pub size: u16,
    /// Zero.
    pub reserved: [u16; 3],
}

/// The argument of the `IpcSetup` hypercall.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct QueueSetup {
    /// Domain to VMM.
    pub tx: RingAddresses,
    /// VMM to domain.
    pub rx: RingAddresses,
}

/// Largest queue size the VMM accepts.
pub const QUEUE_SIZE_MAX: u16 = 256;

/// What a domain does after the VMM consumed its TX queue (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum IpcOp {
    /// Continue.
    Flush = 0,
    /// Wait for a message (from the given source, or any).
    Receive = 1,
    /// Wait for the reply to the last request sent.
    AwaitReply = 2,
}

impl IpcOp {
    /// The hypercall value for this op, waiting for `source` (0: any).
    pub const fn encode(self, source: DomainId) -> u32 {
        (source << 8) | self as u32
    }

    /// Splits a hypercall value into the op and the source; `None` for an unknown op
    /// or a source that does not fit.
    pub fn decode(value: u32) -> Option<(IpcOp, DomainId)> {
        let op = match value & 0xff {
            0 => IpcOp::Flush,
            1 => IpcOp::Receive,
            2 => IpcOp::AwaitReply,
            _ => return None,
        };
        Some((op, value >> 8))
    }
}

const _: () = assert!(core::mem::size_of::<RingAddresses>() == 32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip() {
        for op in [IpcOp::Flush, IpcOp::Receive, IpcOp::AwaitReply] {
            assert_eq!(IpcOp::decode(op.encode(0)), Some((op, 0)));
            assert_eq!(IpcOp::decode(op.encode(7)), Some((op, 7)));
        }
        assert_eq!(IpcOp::decode(3), None);
    }
}
