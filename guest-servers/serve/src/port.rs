//! [`Port`]: the IPC operations the server loop uses.

use ankh_proto::server::Reply;
use ankh_proto::{DomainId, Errno};

use crate::Message;

/// A domain's IPC endpoint as the server loop sees it. Each operation is one IPC
/// operation of `ankh_guest_rt::ipc::Ipc` (one VM exit); received messages are copied
/// into a [`Message`].
///
/// The callers guarantee the runtime's limits: payloads of at most `INLINE_PAYLOAD_MAX`
/// bytes, bulk data of at most `BULK_MAX`, replies only to requests received and not yet
/// answered, `sendrec` only with opcodes that expect a reply.
pub trait Port {
    /// Waits for the next message and copies it into `into`. `Err`: a failure the VMM
    /// delivered instead of a message.
    fn receive(&mut self, into: &mut Message) -> Result<(), Errno>;

    /// Answers `request_id`, then waits for the next message (one exit), as
    /// [`Port::receive`].
    fn reply_recv(
        &mut self,
        request_id: u64,
        status: Errno,
        payload: &[u8],
        bulk: &[u8],
        into: &mut Message,
    ) -> Result<(), Errno>;

    /// Answers `request_id` without waiting.
    fn reply(&mut self, request_id: u64, status: Errno, payload: &[u8], bulk: &[u8]);

    /// Sends a one-way message without waiting.
    fn send(&mut self, to: DomainId, opcode: u16, payload: &[u8], bulk: &[u8]);

    /// Sends a request and waits for its reply: `Ok` with the reply's payload and bulk
    /// data copied, or `Err` with its non-zero status.
    fn sendrec(
        &mut self,
        to: DomainId,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
    ) -> Result<Reply, Errno>;
}
