//! Host tests of the memory manager with a fake kernel.

mod lifecycle;
mod memory;
mod prop;

use ankh_proto::errno::{self, Errno};
use ankh_proto::server::{Endpoint, Handled, Kernel, Reply, Request, Server};
use ankh_proto::Pid;
use ankh_proto::{mm::Region, wire};

use crate::MemoryManager;

/// A kernel that records calls (answering `ENOSYS`: MM calls nobody) and replies.
#[derive(Debug, Default)]
pub(crate) struct FakeKernel {
    pub(crate) calls: Vec<(Endpoint, u16)>,
    pub(crate) replies: Vec<(u64, Reply)>,
}

impl Kernel for FakeKernel {
    fn call(
        &mut self,
        to: Endpoint,
        opcode: u16,
        _payload: &[u8],
        _bulk: &[u8],
    ) -> Result<Reply, Errno> {
        self.calls.push((to, opcode));
        Err(errno::ENOSYS)
    }

    fn reply(&mut self, request_id: u64, reply: Reply) {
        self.replies.push((request_id, reply));
    }
}

/// A manager and a kernel, with shortcuts for requests.
pub(crate) struct Fixture {
    pub(crate) mm: MemoryManager,
    pub(crate) kernel: FakeKernel,
}

impl Fixture {
    /// A fixture around `mm`.
    pub(crate) fn new(mm: MemoryManager) -> Fixture {
        Fixture {
            mm,
            kernel: FakeKernel::default(),
        }
    }

    /// Sends a request and expects an immediate reply (MM never defers).
    pub(crate) fn ask(&mut self, source: Pid, opcode: u16, payload: &[u8]) -> Reply {
        let request = Request {
            source,
            opcode,
            request_id: 1,
            payload,
            bulk: &[],
        };
        match self.mm.handle(&request, &mut self.kernel) {
            Handled::Reply(reply) => reply,
            Handled::Deferred => panic!("MM deferred opcode {opcode:#x}"),
        }
    }

    /// Maps `len` bytes for `pid`: the region, or the errno.
    pub(crate) fn map(&mut self, pid: Pid, len: u64) -> Result<Region, Errno> {
        let payload = wire::bytes(&Region { addr: 0, len });
        let reply = self.ask(pid, ankh_proto::opcode::MM_MAP, &payload);
        match reply.status {
            0 => Ok(wire::record(&reply.payload).unwrap()),
            status => Err(status),
        }
    }
}

impl Default for Fixture {
    fn default() -> Fixture {
        Fixture::new(MemoryManager::default())
    }
}
