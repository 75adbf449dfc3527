//! [`Channel`]: how the library reaches a server.

use ankh_proto::{DomainId, Errno};

/// A request-reply channel to the servers: `sendrec` in a guest, a script in tests.
pub trait Channel {
    /// Sends the request `opcode` to `to`, waits for the reply and hands its payload and
    /// bulk data to `reply` (which must copy what it keeps: in a guest they are the RX
    /// buffers). `Err`: the reply's non-zero status.
    ///
    /// Callers keep `payload` within `INLINE_PAYLOAD_MAX` bytes and `bulk` within
    /// `BULK_MAX`, and use only opcodes that expect a reply.
    fn call<R>(
        &mut self,
        to: DomainId,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
        reply: impl FnOnce(&[u8], &[u8]) -> R,
    ) -> Result<R, Errno>;
}

impl<T: ankh_guest_rt::ipc::Transport> Channel for ankh_guest_rt::ipc::Ipc<T> {
    fn call<R>(
        &mut self,
        to: DomainId,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
        reply: impl FnOnce(&[u8], &[u8]) -> R,
    ) -> Result<R, Errno> {
        let message = self.sendrec(to, opcode, payload, bulk)?;
        Ok(reply(message.payload, message.bulk))
    }
}
