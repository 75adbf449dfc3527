//! Process calls (PM).

use alloc::string::String;
use alloc::vec::Vec;

use ankh_proto::errno::{ECHILD, EINVAL};
use ankh_proto::opcode::{PM_GETARGS, PM_GETPID, PM_GETPPID, PM_KILL, PM_PS, PM_SPAWN, PM_WAIT};
pub use ankh_proto::pm::WaitStatus;
use ankh_proto::pm::{PidRecord, ProcEntry, Spawn, Wait, SPAWN_INHERIT_FDS};
use ankh_proto::{Errno, Pid};
use core::mem::size_of;

use zerocopy::{FromBytes, IntoBytes};

use crate::system::list;
use crate::{Channel, Os, Server};

impl<C: Channel> Os<C> {
    /// Starts the program at `path` as a child with arguments `argv` (by convention
    /// `argv[0]` is the program's name); with `inherit`, the child gets copies of this
    /// process's open descriptors. Returns the child's pid.
    pub fn spawn(&mut self, path: &str, argv: &[&str], inherit: bool) -> Result<Pid, Errno> {
        let request = Spawn {
            flags: if inherit { SPAWN_INHERIT_FDS } else { 0 },
            reserved: 0,
        };
        let bulk = list(core::iter::once(path).chain(argv.iter().copied()));
        let child: PidRecord =
            self.request_record(Server::Pm, PM_SPAWN, request.as_bytes(), &bulk)?;
        Ok(child.pid)
    }

    /// Waits until the child `pid` ends and returns how it ended (`ECHILD`: not a
    /// child of this process).
    pub fn wait(&mut self, pid: Pid) -> Result<WaitStatus, Errno> {
        self.wait_raw(i32::try_from(pid).map_err(|_| ECHILD)?)
    }

    /// Waits until any child ends (`ECHILD`: there is none).
    pub fn wait_any(&mut self) -> Result<WaitStatus, Errno> {
        self.wait_raw(-1)
    }

    /// `PM_WAIT` for `pid` as the wire has it (-1: any child).
    pub fn wait_raw(&mut self, pid: i32) -> Result<WaitStatus, Errno> {
        let request = Wait { pid, reserved: 0 };
        self.request_record(Server::Pm, PM_WAIT, request.as_bytes(), &[])
    }

    /// This process's pid.
    pub fn getpid(&mut self) -> Result<Pid, Errno> {
        let record: PidRecord = self.request_record(Server::Pm, PM_GETPID, &[], &[])?;
        Ok(record.pid)
    }

    /// The parent's pid (0 for init).
    pub fn getppid(&mut self) -> Result<Pid, Errno> {
        let record: PidRecord = self.request_record(Server::Pm, PM_GETPPID, &[], &[])?;
        Ok(record.pid)
    }

    /// This process's argument list, as its parent passed it to `spawn` (empty for
    /// processes the VMM started, like init).
    pub fn args(&mut self) -> Result<Vec<String>, Errno> {
        self.request(Server::Pm, PM_GETARGS, &[], &[], |_, bulk| {
            ankh_proto::wire::split(bulk).map(|args| args.into_iter().map(String::from).collect())
        })?
    }

    /// Stops the process `pid` (its parent's `wait` reports `EXIT_KILLED`).
    pub fn kill(&mut self, pid: Pid) -> Result<(), Errno> {
        let request = PidRecord { pid, reserved: 0 };
        self.request_unit(Server::Pm, PM_KILL, request.as_bytes(), &[])
    }

    /// The process table.
    pub fn ps(&mut self) -> Result<Vec<ProcEntry>, Errno> {
        self.request(Server::Pm, PM_PS, &[], &[], |_, bulk| {
            let entries = bulk.chunks_exact(size_of::<ProcEntry>());
            if !entries.remainder().is_empty() {
                return Err(EINVAL);
            }
            entries
                .map(|entry| ProcEntry::read_from_bytes(entry).map_err(|_| EINVAL))
                .collect()
        })?
    }
}
