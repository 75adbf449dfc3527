//! A message in flight: validated and copied out of its sender.

use virtio_seep::message::MessageHeader;

/// A message the router holds between its sender's TX queue and its receiver's RX
/// queue. The router stamps `source`, `request_id` and `flags` in the header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The header.
    pub header: MessageHeader,
    /// Inline payload (at most `INLINE_PAYLOAD_MAX` bytes).
    pub payload: Vec<u8>,
    /// Bulk data (at most `BULK_MAX` bytes).
    pub bulk: Vec<u8>,
}
