//! [`Message`]: a received message, copied out of the RX buffers.

use alloc::vec::Vec;

use ankh_proto::server::Request;
use ankh_proto::DomainId;
use virtio_seep::message::{MessageHeader, INLINE_PAYLOAD_MAX};
use virtio_seep::opcode;

/// A message owned by the server loop, so that the server can make calls (which reuse
/// the RX buffers) while it looks at the request. The bulk buffer keeps its capacity
/// from one message to the next, so steady traffic allocates nothing.
#[derive(Clone, Debug)]
pub struct Message {
    /// The true sender, stamped by the VMM.
    pub source: DomainId,
    /// The opcode.
    pub opcode: u16,
    /// The id to answer it by (0 for one-way messages).
    pub request_id: u64,
    /// Inline payload storage; the first `payload_len` bytes are valid.
    payload: [u8; INLINE_PAYLOAD_MAX],
    /// Bytes of inline payload.
    payload_len: usize,
    /// Bulk data.
    bulk: Vec<u8>,
}

impl Message {
    /// An empty message.
    pub const fn new() -> Message {
        Message {
            source: 0,
            opcode: 0,
            request_id: 0,
            payload: [0; INLINE_PAYLOAD_MAX],
            payload_len: 0,
            bulk: Vec::new(),
        }
    }

    /// Replaces the contents with a copy of a delivered message (a payload longer than
    /// `INLINE_PAYLOAD_MAX` is cut there, as the runtime already does).
    pub fn fill(&mut self, header: &MessageHeader, payload: &[u8], bulk: &[u8]) {
        self.source = header.source;
        self.opcode = header.opcode;
        self.request_id = header.request_id;
        let len = payload.len().min(INLINE_PAYLOAD_MAX);
        self.payload[..len].copy_from_slice(&payload[..len]);
        self.payload_len = len;
        self.bulk.clear();
        self.bulk.extend_from_slice(bulk);
    }

    /// The inline payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload[..self.payload_len]
    }

    /// The bulk data.
    pub fn bulk(&self) -> &[u8] {
        &self.bulk
    }

    /// Whether the sender waits for an answer (the opcode expects a reply).
    pub fn is_request(&self) -> bool {
        opcode::lookup(self.opcode).is_some_and(|info| info.expects_reply)
    }

    /// The message as the server interface's [`Request`].
    pub fn request(&self) -> Request<'_> {
        Request {
            source: self.source,
            opcode: self.opcode,
            request_id: self.request_id,
            payload: self.payload(),
            bulk: self.bulk(),
        }
    }
}

impl Default for Message {
    fn default() -> Message {
        Message::new()
    }
}
