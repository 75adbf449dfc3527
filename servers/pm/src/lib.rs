//! Ankh's process manager (PM): the process table. It spawns programs (loading their
//! ELF through VFS and asking the VMM for a domain), learns from the VMM when a
//! process domain stops, answers `wait`, kills, and lists processes.
//!
//! - [`ProcessManager`]: the server ([`ankh_proto::server::Server`]) and the queries
//!   (`PM_GETPID`, `PM_GETPPID`, `PM_GETARGS`, `PM_KILL`, `PM_PS`);
//! - `table`: a process's entry and its lifecycle (running, zombie, reaped);
//! - `spawn`: `PM_SPAWN`; `image`: reading a program through VFS;
//! - `exit`: `SYS_DOMAIN_EXITED` and `PM_WAIT`;
//! - `calls`: calling other servers.
//!
//! The protocol is in [`ankh_proto::pm`]. A pid is the domain id of the process's
//! app domain, and the source of a request is stamped by the VMM, so the caller of
//! `PM_GETPID` is who it says it is.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod calls;
mod exit;
mod image;
mod spawn;
mod table;
#[cfg(test)]
mod tests;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::opcode::{
    PM_GETARGS, PM_GETPID, PM_GETPPID, PM_KILL, PM_PS, PM_SPAWN, PM_WAIT, SYS_DOMAIN_EXITED,
    SYS_KILL_DOMAIN,
};
use ankh_proto::pm::{PidRecord, ProcEntry};
use ankh_proto::server::{Endpoint, Handled, Kernel, Reply, Request, Server};
use ankh_proto::sys::KillDomain;
use ankh_proto::{wire, Pid};
use virtio_seep::message::VMM_DOMAIN;

use table::Proc;

/// The process table and what PM does with it.
///
/// Init is created by the VMM, not spawned: it is in the table from the start with
/// parent 0. A domain that calls PM without being in the table (another app the
/// VMM started) is treated as a process whose parent is init; it is entered in the
/// table when it spawns a child. Orphans are adopted by init and reaped as soon as
/// they end unless init is waiting for any child then (once init has ended, nobody
/// adopts them: they are reaped as soon as they end).
///
/// Kill rights: a process may kill only its own descendants (children,
/// grandchildren, ..., adopted orphans included for init); anyone else gets
/// `EPERM`. The VMM (and so the kernel's own stops) does not go through `PM_KILL`.
pub struct ProcessManager {
    init: Pid,
    procs: BTreeMap<Pid, Proc>,
}

impl ProcessManager {
    /// A table holding only `init`.
    pub fn new(init: Pid) -> ProcessManager {
        let mut procs = BTreeMap::new();
        procs.insert(init, Proc::new(VMM_DOMAIN, init, Vec::new()));
        ProcessManager { init, procs }
    }

    /// The argument vector `pid` was spawned with (`arg0` first, the path not
    /// included); empty for init and for processes PM did not spawn; `None` for a
    /// pid not in the table.
    ///
    /// How a child learns its arguments is not part of the protocol yet: PM keeps
    /// them here (and `CreateDomain` carries only the image), so a later opcode or
    /// boot-info field can hand them over.
    pub fn args(&self, pid: Pid) -> Option<&[String]> {
        self.procs.get(&pid).map(|p| p.args.as_slice())
    }

    /// The table as `PM_PS` answers it: live and zombie processes, sorted by pid.
    pub fn entries(&self) -> Vec<ProcEntry> {
        self.procs
            .iter()
            .map(|(&pid, p)| ProcEntry {
                pid,
                ppid: p.ppid,
                state: p.state_code(),
                reserved: 0,
            })
            .collect()
    }

    /// Number of live (not zombie) processes.
    pub fn live(&self) -> usize {
        self.procs.values().filter(|p| p.is_running()).count()
    }

    /// Who adopts orphans and unknown callers: init while it runs, else nobody (0).
    fn adoptive_parent(&self) -> Pid {
        match self.procs.get(&self.init) {
            Some(init) if init.is_running() => self.init,
            _ => VMM_DOMAIN,
        }
    }

    /// The parent of `pid`, entered or not (the caller made sure it is not a zombie).
    fn parent_of(&self, pid: Pid) -> Pid {
        match self.procs.get(&pid) {
            Some(p) => p.ppid,
            None => self.adoptive_parent(),
        }
    }

    /// Enters an unknown caller in the table (so its children have a parent there).
    fn enter(&mut self, pid: Pid) {
        if !self.procs.contains_key(&pid) {
            let ppid = self.adoptive_parent();
            self.procs.insert(pid, Proc::new(ppid, pid, Vec::new()));
        }
    }

    /// The session a child of `parent` joins: `None` for a child of init (or of
    /// nobody), which starts its own; else the parent's (its own when PM did not
    /// spawn it).
    fn session_of_child(&self, parent: Pid) -> Option<Pid> {
        if parent == self.init || parent == VMM_DOMAIN {
            return None;
        }
        Some(self.procs.get(&parent).map_or(parent, |p| p.session))
    }

    /// Entries (live or zombie) of `session`.
    fn session_size(&self, session: Pid) -> usize {
        self.procs.values().filter(|p| p.session == session).count()
    }

    /// True when `ancestor` is `pid`'s parent, or its parent's, and so on.
    fn is_descendant(&self, pid: Pid, ancestor: Pid) -> bool {
        let mut at = pid;
        // Each step goes to an entry's parent; the table has at most `PROC_MAX`
        // entries, so a longer walk would be a cycle (which PM never makes).
        for _ in 0..=self.procs.len() {
            let Some(proc) = self.procs.get(&at) else {
                return false;
            };
            if proc.ppid == ancestor {
                return true;
            }
            if proc.ppid == VMM_DOMAIN {
                return false;
            }
            at = proc.ppid;
        }
        false
    }

    /// `PM_KILL` from `caller`: asks the VMM to stop a live descendant of the caller
    /// (never init). The exit itself arrives later, as `SYS_DOMAIN_EXITED` with cause
    /// `EXIT_KILLED`. Errors: `ESRCH` (no such live process), `EPERM` (init, or not a
    /// descendant of the caller), the VMM's errors.
    fn kill(
        &mut self,
        caller: Pid,
        payload: &[u8],
        kernel: &mut dyn Kernel,
    ) -> Result<Reply, Errno> {
        let PidRecord { pid, .. } = wire::record(payload)?;
        match self.procs.get(&pid) {
            Some(p) if p.is_running() => {}
            _ => return Err(errno::ESRCH),
        }
        if pid == self.init || !self.is_descendant(pid, caller) {
            return Err(errno::EPERM);
        }
        calls::call(
            kernel,
            Endpoint::Kernel,
            SYS_KILL_DOMAIN,
            &wire::bytes(&KillDomain {
                id: pid,
                reserved: 0,
            }),
            &[],
        )?;
        Ok(Reply::ok(Vec::new()))
    }

    /// `PM_PS`: the table as consecutive [`ProcEntry`] records in the bulk data.
    fn ps(&self) -> Reply {
        let mut bulk = Vec::new();
        for entry in self.entries() {
            bulk.extend_from_slice(&wire::bytes(&entry));
        }
        Reply::ok_with_bulk(Vec::new(), bulk)
    }

    /// Serves a `PM_*` request from a live process.
    fn serve(&mut self, request: &Request<'_>, kernel: &mut dyn Kernel) -> Handled {
        let pid = request.source;
        let record = |pid| Reply::ok(wire::bytes(&PidRecord { pid, reserved: 0 }));
        match request.opcode {
            PM_SPAWN => self.spawn(request, kernel).into(),
            PM_WAIT => self.wait(request),
            PM_GETPID => record(pid).into(),
            PM_GETPPID => record(self.parent_of(pid)).into(),
            PM_KILL => self.kill(pid, request.payload, kernel).into(),
            PM_PS => self.ps().into(),
            PM_GETARGS => {
                let args = self.args(pid).unwrap_or_default();
                Reply::ok_with_bulk(Vec::new(), wire::join(args.iter().map(String::as_str))).into()
            }
            _ => Reply::err(errno::ENOSYS).into(),
        }
    }
}

impl Server for ProcessManager {
    fn handle(&mut self, request: &Request<'_>, kernel: &mut dyn Kernel) -> Handled {
        if request.opcode == SYS_DOMAIN_EXITED {
            // One-way: nothing to answer, whoever sent it.
            if request.source == VMM_DOMAIN {
                self.domain_exited(request.payload, kernel);
            }
            return Handled::Deferred;
        }
        if request.source == VMM_DOMAIN {
            // The VMM is not a process.
            return Reply::err(errno::EPERM).into();
        }
        if self
            .procs
            .get(&request.source)
            .is_some_and(|p| !p.is_running())
        {
            // A message sent just before its sender ended.
            return Reply::err(errno::ESRCH).into();
        }
        self.serve(request, kernel)
    }
}
