//! The SEEP message: what one domain sends another, and how it travels.
//!
//! # Wire format
//!
//! A message is one virtio descriptor chain in the sender's TX queue:
//!
//! ```text
//! descriptor 0 (device-readable): MessageHeader (32 bytes) + inline payload
//!                                 (header.payload_len <= INLINE_PAYLOAD_MAX bytes)
//! descriptors 1.. (device-readable, optional): bulk data segments, in order;
//!                                 their lengths add up to header.bulk_len
//! ```
//!
//! The receiver gets it in a chain it posted on its RX queue:
//!
//! ```text
//! descriptor 0 (device-writable, >= MESSAGE_BUFFER_SIZE bytes): header + payload
//! descriptor 1 (device-writable, optional): room for bulk data
//! ```
//!
//! Header fields a sender writes and the VMM trusts: `destination`, `opcode`,
//! `payload_len`, `bulk_len` (all validated), `request_id` on a reply (must name a
//! request the sender received and has not answered) and `status` on a reply. A reply
//! is routed by its `request_id` alone: its `destination` is ignored and overwritten. Fields
//! the VMM always overwrites on delivery: `source` (the true sender), `request_id` on a
//! request (assigned by the VMM), `flags` (only [`FLAG_TRUNCATED`] is defined, set by
//! the VMM). The SEEP class of a message comes from the opcode table
//! ([`crate::opcode`]), never from the header.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Identifies a domain. Domains are numbered from 1 in the order of the system
/// description; [`VMM_DOMAIN`] is the VMM itself.
pub type DomainId = u32;

/// The source of messages the VMM itself sends.
pub const VMM_DOMAIN: DomainId = 0;

/// Largest inline payload.
pub const INLINE_PAYLOAD_MAX: usize = 224;

/// Size of the buffer that holds a header and the largest inline payload.
pub const MESSAGE_BUFFER_SIZE: usize = HEADER_SIZE + INLINE_PAYLOAD_MAX;

/// Size of [`MessageHeader`].
pub const HEADER_SIZE: usize = 32;

/// Largest bulk data of one message (1 MiB).
pub const BULK_MAX: u32 = 1 << 20;

/// Most descriptors in one chain (header + bulk segments).
pub const CHAIN_MAX: usize = 16;

/// Set by the VMM when the bulk data did not fit the receiver's buffer; `bulk_len` then
/// still says how much the sender sent.
pub const FLAG_TRUNCATED: u16 = 1;

/// The fixed part of every message.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct MessageHeader {
    /// The sending domain, stamped by the VMM on delivery.
    pub source: DomainId,
    /// The receiving domain.
    pub destination: DomainId,
    /// What the message asks or says (see [`crate::opcode`]).
    pub opcode: u16,
    /// Set by the VMM ([`FLAG_TRUNCATED`]); senders write 0.
    pub flags: u16,
    /// On a reply: 0 for success or an errno ([`crate::errno`]). On a request: 0.
    pub status: i32,
    /// On a request: assigned by the VMM. On a reply: the request it answers.
    pub request_id: u64,
    /// Bytes of inline payload right after the header.
    pub payload_len: u32,
    /// Bytes of bulk data in the following descriptors.
    pub bulk_len: u32,
}

const _: () = assert!(core::mem::size_of::<MessageHeader>() == HEADER_SIZE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_through_bytes() {
        let header = MessageHeader {
            source: 1,
            destination: 2,
            opcode: 3,
            flags: 0,
            status: -4,
            request_id: 5,
            payload_len: 6,
            bulk_len: 7,
        };
        let bytes = header.as_bytes();
        assert_eq!(bytes.len(), HEADER_SIZE);
        assert_eq!(MessageHeader::read_from_bytes(bytes).unwrap(), header);
    }
}
