//! [`Port`] over the guest runtime's IPC endpoint.

use ankh_guest_rt::ipc::{Ipc, Transport};
use ankh_proto::server::Reply;
use ankh_proto::{DomainId, Errno};

use crate::{Message, Port};

impl<T: Transport> Port for Ipc<T> {
    fn receive(&mut self, into: &mut Message) -> Result<(), Errno> {
        let message = Ipc::receive(self)?;
        into.fill(&message.header, message.payload, message.bulk);
        Ok(())
    }

    fn reply_recv(
        &mut self,
        request_id: u64,
        status: Errno,
        payload: &[u8],
        bulk: &[u8],
        into: &mut Message,
    ) -> Result<(), Errno> {
        let message = Ipc::reply_recv(self, request_id, status, payload, bulk)?;
        into.fill(&message.header, message.payload, message.bulk);
        Ok(())
    }

    fn reply(&mut self, request_id: u64, status: Errno, payload: &[u8], bulk: &[u8]) {
        Ipc::reply(self, request_id, status, payload, bulk);
    }

    fn send(&mut self, to: DomainId, opcode: u16, payload: &[u8], bulk: &[u8]) {
        Ipc::send(self, to, opcode, payload, bulk);
    }

    fn sendrec(
        &mut self,
        to: DomainId,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
    ) -> Result<Reply, Errno> {
        let reply = Ipc::sendrec(self, to, opcode, payload, bulk)?;
        Ok(Reply::ok_with_bulk(reply.payload, reply.bulk.to_vec()))
    }
}
