//! Host tests of the memory manager with a fake kernel.

mod lifecycle;
mod memory;
mod prop;

use ankh_proto::errno::Errno;
use ankh_proto::server::{Handled, Reply, Request, Server};
use ankh_proto::Pid;
use ankh_proto::{mm::Region, wire};

use crate::MemoryManager;

/// A kernel that records calls and replies.
pub(crate) type FakeKernel = ankh_proto::testing::RecordingKernel;

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
