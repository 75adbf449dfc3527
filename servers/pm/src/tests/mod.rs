//! Host tests of the process manager against a fake world.

mod exit;
mod fake;
mod prop;
mod queries;
mod spawn;

use ankh_proto::errno::Errno;
use ankh_proto::opcode::{PM_PS, PM_SPAWN, PM_WAIT, SYS_DOMAIN_EXITED};
use ankh_proto::pm::{PidRecord, ProcEntry, Spawn, Wait, WaitStatus};
use ankh_proto::server::{Handled, Reply, Request, Server};
use ankh_proto::sys::DomainExited;
use ankh_proto::{wire, Pid};

use crate::ProcessManager;
use fake::World;

/// Init's pid in every test.
pub(crate) const INIT: Pid = 1;

/// PM, the world around it, and shortcuts for requests.
pub(crate) struct Fixture {
    pub(crate) pm: ProcessManager,
    pub(crate) world: World,
    next_id: u64,
}

impl Fixture {
    /// PM with only init, in a fresh world.
    pub(crate) fn new() -> Fixture {
        Fixture {
            pm: ProcessManager::new(INIT),
            world: World::new(),
            next_id: 100,
        }
    }

    /// Sends a request with a fresh id; what PM did and the id.
    pub(crate) fn send(
        &mut self,
        source: Pid,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
    ) -> (Handled, u64) {
        self.next_id += 1;
        let id = self.next_id;
        (self.send_with_id(source, opcode, id, payload, bulk), id)
    }

    /// Sends a request with the given id.
    pub(crate) fn send_with_id(
        &mut self,
        source: Pid,
        opcode: u16,
        request_id: u64,
        payload: &[u8],
        bulk: &[u8],
    ) -> Handled {
        let request = Request {
            source,
            opcode,
            request_id,
            payload,
            bulk,
        };
        self.pm.handle(&request, &mut self.world)
    }

    /// Sends a request and expects an immediate reply.
    pub(crate) fn ask(&mut self, source: Pid, opcode: u16, payload: &[u8], bulk: &[u8]) -> Reply {
        match self.send(source, opcode, payload, bulk).0 {
            Handled::Reply(reply) => reply,
            Handled::Deferred => panic!("opcode {opcode:#x} was deferred"),
        }
    }

    /// `PM_SPAWN` from `parent` of `list` (`path, arg0, ...`) with `flags`.
    pub(crate) fn spawn_flags(
        &mut self,
        parent: Pid,
        list: &[&str],
        flags: u32,
    ) -> Result<Pid, Errno> {
        let spawn = wire::bytes(&Spawn { flags, reserved: 0 });
        let reply = self.ask(parent, PM_SPAWN, &spawn, &wire::join(list.iter().copied()));
        match reply.status {
            0 => Ok(wire::record::<PidRecord>(&reply.payload).unwrap().pid),
            status => Err(status),
        }
    }

    /// `PM_SPAWN` from `parent` of `list` without flags.
    pub(crate) fn spawn(&mut self, parent: Pid, list: &[&str]) -> Result<Pid, Errno> {
        self.spawn_flags(parent, list, 0)
    }

    /// The VMM reports that `pid` ended.
    pub(crate) fn exit(&mut self, pid: Pid, code: i32, cause: u32) {
        let record = wire::bytes(&DomainExited {
            id: pid,
            code,
            cause,
            reserved: 0,
        });
        let handled = self.send_with_id(0, SYS_DOMAIN_EXITED, 0, &record, &[]);
        assert_eq!(handled, Handled::Deferred);
    }

    /// `PM_WAIT` from `parent` for `target`: what PM did and the request id.
    pub(crate) fn wait(&mut self, parent: Pid, target: i32) -> (Handled, u64) {
        let wait = wire::bytes(&Wait {
            pid: target,
            reserved: 0,
        });
        self.send(parent, PM_WAIT, &wait, &[])
    }

    /// `PM_PS` (asked by init) as records.
    pub(crate) fn ps(&mut self) -> Vec<ProcEntry> {
        self.ps_from(INIT)
    }

    /// `PM_PS` asked by `source`, as records.
    pub(crate) fn ps_from(&mut self, source: Pid) -> Vec<ProcEntry> {
        let reply = self.ask(source, PM_PS, &[], &[]);
        assert_eq!(reply.status, 0);
        assert_eq!(reply.bulk.len() % 16, 0);
        reply
            .bulk
            .chunks(16)
            .map(|c| wire::record(c).unwrap())
            .collect()
    }
}

/// A successful `PM_WAIT` reply's status.
pub(crate) fn wait_status(handled: &Handled) -> WaitStatus {
    match handled {
        Handled::Reply(reply) => {
            assert_eq!(reply.status, 0, "wait failed");
            wire::record(&reply.payload).unwrap()
        }
        Handled::Deferred => panic!("wait was parked"),
    }
}

/// A successful reply's status as a `WaitStatus` (for a parked wait's answer).
pub(crate) fn status_of(reply: &Reply) -> WaitStatus {
    assert_eq!(reply.status, 0);
    wire::record(&reply.payload).unwrap()
}
