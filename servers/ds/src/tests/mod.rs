//! Host tests of the data store with a fake kernel.

mod ops;
mod prop;
mod sessions;
mod subscribe;

use ankh_proto::errno::Errno;
use ankh_proto::server::{Handled, Reply, Request, Server};
use ankh_proto::{wire, Pid};

use crate::DataStore;

/// A kernel that records calls and replies.
pub(crate) type FakeKernel = ankh_proto::testing::RecordingKernel;

/// A store and a kernel, with shortcuts for requests.
#[derive(Default)]
pub(crate) struct Fixture {
    pub(crate) ds: DataStore,
    pub(crate) kernel: FakeKernel,
    next_id: u64,
}

impl Fixture {
    /// Sends a request from `source` with a fresh request id; returns what DS did.
    pub(crate) fn send_from(&mut self, source: Pid, opcode: u16, bulk: &[u8]) -> Handled {
        self.next_id += 1;
        self.send_with_id(source, opcode, self.next_id, bulk)
    }

    /// Sends a request with the given request id.
    pub(crate) fn send_with_id(
        &mut self,
        source: Pid,
        opcode: u16,
        request_id: u64,
        bulk: &[u8],
    ) -> Handled {
        let request = Request {
            source,
            opcode,
            request_id,
            payload: &[],
            bulk,
        };
        self.ds.handle(&request, &mut self.kernel)
    }

    /// Sends a request with a payload (a record) from `source`; the reply's status.
    pub(crate) fn notice(&mut self, source: Pid, opcode: u16, payload: &[u8]) -> Errno {
        self.next_id += 1;
        let request = Request {
            source,
            opcode,
            request_id: self.next_id,
            payload,
            bulk: &[],
        };
        match self.ds.handle(&request, &mut self.kernel) {
            Handled::Reply(reply) => reply.status,
            Handled::Deferred => panic!("opcode {opcode:#x} was deferred"),
        }
    }

    /// Sends a request from pid 7 and expects an immediate reply.
    pub(crate) fn ask(&mut self, opcode: u16, bulk: &[u8]) -> Reply {
        match self.send_from(7, opcode, bulk) {
            Handled::Reply(reply) => reply,
            Handled::Deferred => panic!("opcode {opcode:#x} was deferred"),
        }
    }

    /// The status of an immediate reply.
    pub(crate) fn status(&mut self, opcode: u16, bulk: &[u8]) -> Errno {
        self.ask(opcode, bulk).status
    }

    /// The id the last request was sent with.
    pub(crate) fn last_id(&self) -> u64 {
        self.next_id
    }
}

/// `key\0value\0`.
pub(crate) fn kv(key: &str, value: &str) -> Vec<u8> {
    wire::join([key, value])
}

/// `item\0`.
pub(crate) fn one(item: &str) -> Vec<u8> {
    wire::join([item])
}
