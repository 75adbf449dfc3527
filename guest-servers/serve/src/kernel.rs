//! [`PortKernel`]: the server interface's [`Kernel`] over a [`Port`].

use ankh_proto::errno::{EINVAL, EMSGSIZE, ENOSYS};
use ankh_proto::server::{Endpoint, Kernel, Reply};
use ankh_proto::Errno;
use virtio_seep::message::{BULK_MAX, INLINE_PAYLOAD_MAX};
use virtio_seep::opcode;

use crate::{Peers, Port};

/// What a server may do besides answering the request in hand, over a [`Port`]:
/// [`Kernel::call`] is `sendrec` (or `send` for a one-way opcode), [`Kernel::reply`] is
/// the port's `reply`.
#[derive(Debug)]
pub struct PortKernel<'a, P: Port> {
    /// The domain's IPC.
    port: &'a mut P,
    /// Where the endpoints are.
    peers: &'a Peers,
}

impl<'a, P: Port> PortKernel<'a, P> {
    /// A kernel over `port`, reaching the servers in `peers`.
    pub fn new(port: &'a mut P, peers: &'a Peers) -> PortKernel<'a, P> {
        PortKernel { port, peers }
    }
}

/// Whether a message with these lengths fits the wire format.
fn fits(payload: &[u8], bulk: &[u8]) -> bool {
    payload.len() <= INLINE_PAYLOAD_MAX && bulk.len() <= BULK_MAX as usize
}

/// Sends `reply` to `request_id` through `port`, or an empty `EMSGSIZE` error when it
/// does not fit a message (a server bug that must not trip the runtime's checks).
pub(crate) fn send_reply<P: Port>(port: &mut P, request_id: u64, reply: &Reply) {
    let (status, payload, bulk) = checked(reply);
    port.reply(request_id, status, payload, bulk);
}

/// The status, payload and bulk data to send for `reply`: itself, or `EMSGSIZE` with
/// nothing when it does not fit a message.
pub(crate) fn checked(reply: &Reply) -> (Errno, &[u8], &[u8]) {
    if fits(&reply.payload, &reply.bulk) {
        (reply.status, &reply.payload, &reply.bulk)
    } else {
        (EMSGSIZE, &[], &[])
    }
}

impl<P: Port> Kernel for PortKernel<'_, P> {
    /// Calls `to`: `Err(ENOSYS)` when this domain has no such peer or the opcode is
    /// unknown, `Err(EINVAL)` for `REPLY` (answers go through [`Kernel::reply`]),
    /// `Err(EMSGSIZE)` when the message does not fit; for a one-way opcode the message is
    /// sent and an empty reply returned at once.
    fn call(
        &mut self,
        to: Endpoint,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
    ) -> Result<Reply, Errno> {
        let destination = self.peers.resolve(to).ok_or(ENOSYS)?;
        let info = opcode::lookup(opcode).ok_or(ENOSYS)?;
        if opcode == opcode::REPLY {
            return Err(EINVAL);
        }
        if !fits(payload, bulk) {
            return Err(EMSGSIZE);
        }
        if info.expects_reply {
            self.port.sendrec(destination, opcode, payload, bulk)
        } else {
            self.port.send(destination, opcode, payload, bulk);
            Ok(Reply::default())
        }
    }

    fn reply(&mut self, request_id: u64, reply: Reply) {
        send_reply(self.port, request_id, &reply);
    }
}
