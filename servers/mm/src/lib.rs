//! Ankh's memory manager (MM): accounting of app memory, per process, against a
//! per-process limit and a system-wide budget.
//!
//! - [`MemoryManager`]: the server ([`ankh_proto::server::Server`]);
//! - `account`: one process's heap and regions.
//!
//! Limits: each process, each *session* (a process whose parent MM never saw
//! spawned, such as a program init started, with every process it spawned, directly
//! or not), and the system as a whole. The session share keeps one program from
//! spawning helpers that together take the whole budget.
//!
//! The protocol is in [`ankh_proto::mm`]. MM hands out no real memory: a region's
//! address is a handle in the process's accounting space, unique among that process's
//! regions and never reused for it. MM calls no other server.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod account;
#[cfg(test)]
mod tests;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::mm::{Brk, Region, Usage, PROCESS_LIMIT, SESSION_SHARE, SYSTEM_BUDGET};
use ankh_proto::opcode::{MM_BRK, MM_MAP, MM_PROC_EXIT, MM_PROC_SPAWN, MM_UNMAP, MM_USAGE};
use ankh_proto::server::{Handled, Kernel, Reply, Request, Server};
use ankh_proto::vfs::{ProcExit, ProcSpawn};
use ankh_proto::{wire, Pid};

use account::Account;

/// The memory manager: an account (heap and regions) per process that used memory,
/// and the limits they are checked against.
///
/// A pid MM has not heard of is a process with nothing allocated; its account is made
/// by the first request that allocates. Queries (`MM_USAGE`) never make one, so they
/// change nothing, as their SEEP class promises.
pub struct MemoryManager {
    accounts: BTreeMap<Pid, Account>,
    /// The session of each process MM saw spawned (a pid not here is its own).
    sessions: BTreeMap<Pid, Pid>,
    process_limit: u64,
    session_share: u64,
    system_budget: u64,
    system_used: u64,
    process_manager: Option<Pid>,
}

impl Default for MemoryManager {
    /// The limits of [`ankh_proto::mm`]: `PROCESS_LIMIT`, `SESSION_SHARE` and
    /// `SYSTEM_BUDGET`.
    fn default() -> MemoryManager {
        MemoryManager::new(PROCESS_LIMIT, SYSTEM_BUDGET).with_session_share(SESSION_SHARE)
    }
}

impl MemoryManager {
    /// A manager with no process, a limit per process and a budget for all of them
    /// (bytes); a session may use the whole budget until
    /// [`with_session_share`](Self::with_session_share) says otherwise.
    pub fn new(process_limit: u64, system_budget: u64) -> MemoryManager {
        MemoryManager {
            accounts: BTreeMap::new(),
            sessions: BTreeMap::new(),
            process_limit,
            session_share: system_budget,
            system_budget,
            system_used: 0,
            process_manager: None,
        }
    }

    /// Accepts `MM_PROC_SPAWN` and `MM_PROC_EXIT` only from domain `pm` (others get
    /// `EPERM`). Without it they are accepted from any source that does not name
    /// itself: the protocol does not tell a server which role sent a request, and MM
    /// does not call PM, so it has no peer entry to learn PM's id from.
    pub fn with_process_manager(mut self, pm: Pid) -> MemoryManager {
        self.process_manager = Some(pm);
        self
    }

    /// Bytes process `pid` uses (heap + regions).
    pub fn used(&self, pid: Pid) -> u64 {
        self.accounts.get(&pid).map_or(0, Account::used)
    }

    /// The session `pid` belongs to.
    fn session_of(&self, pid: Pid) -> Pid {
        self.sessions.get(&pid).copied().unwrap_or(pid)
    }

    /// Bytes the processes of `pid`'s session use.
    pub fn session_used(&self, pid: Pid) -> u64 {
        let session = self.session_of(pid);
        self.accounts
            .iter()
            .filter(|(&member, _)| self.session_of(member) == session)
            .map(|(_, account)| account.used())
            .sum()
    }

    /// Sets the share of a session (bytes; at most the budget).
    pub fn with_session_share(mut self, share: u64) -> MemoryManager {
        self.session_share = share.min(self.system_budget);
        self
    }

    /// Bytes all processes use.
    pub fn system_used(&self) -> u64 {
        self.system_used
    }

    /// The regions of `pid`, sorted by address.
    pub fn regions(&self, pid: Pid) -> Vec<Region> {
        self.accounts
            .get(&pid)
            .map_or_else(Vec::new, Account::regions)
    }

    /// Bytes of `grow` more for `pid` fit the process limit, its session's share and
    /// the budget (`ENOMEM` otherwise).
    fn check_room(&self, pid: Pid, grow: u64) -> Result<(), Errno> {
        let fits = |used: u64, limit: u64| used.checked_add(grow).is_some_and(|n| n <= limit);
        if fits(self.used(pid), self.process_limit)
            && fits(self.system_used, self.system_budget)
            && fits(self.session_used(pid), self.session_share)
        {
            Ok(())
        } else {
            Err(errno::ENOMEM)
        }
    }

    /// `MM_BRK`: sets the caller's heap size. Growing must fit the limits; shrinking
    /// always works. Replies the resulting size.
    fn brk(&mut self, pid: Pid, payload: &[u8]) -> Result<Reply, Errno> {
        let Brk { size } = wire::record(payload)?;
        let heap = self.accounts.get(&pid).map_or(0, Account::heap);
        if size > heap {
            self.check_room(pid, size - heap)?;
            self.system_used += size - heap;
        } else {
            self.system_used -= heap - size;
        }
        self.accounts.entry(pid).or_default().set_heap(size);
        Ok(Reply::ok(wire::bytes(&Brk { size })))
    }

    /// `MM_MAP`: a new region of `len` bytes rounded up to pages (`EINVAL` when 0,
    /// `ENOMEM` over the limits). Replies the region.
    fn map(&mut self, pid: Pid, payload: &[u8]) -> Result<Reply, Errno> {
        let Region { len, .. } = wire::record(payload)?;
        let len = account::round_to_pages(len)?;
        self.check_room(pid, len)?;
        let addr = self.accounts.entry(pid).or_default().map(len)?;
        self.system_used += len;
        Ok(Reply::ok(wire::bytes(&Region { addr, len })))
    }

    /// `MM_UNMAP`: frees a region, named exactly as `MM_MAP` answered it (`EINVAL`
    /// otherwise).
    fn unmap(&mut self, pid: Pid, payload: &[u8]) -> Result<Reply, Errno> {
        let region: Region = wire::record(payload)?;
        let account = self.accounts.get_mut(&pid).ok_or(errno::EINVAL)?;
        account.unmap(region)?;
        self.system_used -= region.len;
        Ok(Reply::ok(Vec::new()))
    }

    /// `MM_USAGE`: the caller's and the system's use and limits.
    fn usage(&self, pid: Pid) -> Reply {
        Reply::ok(wire::bytes(&Usage {
            used: self.used(pid),
            limit: self.process_limit,
            system_used: self.system_used,
            system_budget: self.system_budget,
        }))
    }

    /// Frees everything of `pid` and forgets its account.
    fn free(&mut self, pid: Pid) {
        if let Some(account) = self.accounts.remove(&pid) {
            self.system_used -= account.used();
        }
    }

    /// `MM_PROC_SPAWN` (from PM): the child starts with nothing (whatever an earlier
    /// process with that pid left is freed). `EPERM` when the sender names itself
    /// as the child (PM never does).
    fn proc_spawn(&mut self, source: Pid, payload: &[u8]) -> Result<Reply, Errno> {
        ankh_proto::pm::check_manager(self.process_manager, source)?;
        let ProcSpawn { child, parent, .. } = wire::record(payload)?;
        if child == source {
            return Err(errno::EPERM);
        }
        self.free(child);
        let session = match self.sessions.get(&parent) {
            Some(&session) => session,
            // A parent MM never saw spawned (init): the child starts a session.
            None => child,
        };
        self.sessions.insert(child, session);
        Ok(Reply::ok(Vec::new()))
    }

    /// `MM_PROC_EXIT` (from PM): frees everything of the process. Idempotent: a pid
    /// with nothing allocated is not an error. `EPERM` when the sender names itself
    /// (PM reports a process's end after its domain stopped, so never its own).
    fn proc_exit(&mut self, source: Pid, payload: &[u8]) -> Result<Reply, Errno> {
        ankh_proto::pm::check_manager(self.process_manager, source)?;
        let ProcExit { pid, .. } = wire::record(payload)?;
        if pid == source {
            return Err(errno::EPERM);
        }
        self.free(pid);
        self.sessions.remove(&pid);
        Ok(Reply::ok(Vec::new()))
    }
}

impl Server for MemoryManager {
    fn handle(&mut self, request: &Request<'_>, _kernel: &mut dyn Kernel) -> Handled {
        let (pid, payload) = (request.source, request.payload);
        match request.opcode {
            MM_BRK => self.brk(pid, payload).into(),
            MM_MAP => self.map(pid, payload).into(),
            MM_UNMAP => self.unmap(pid, payload).into(),
            MM_USAGE => self.usage(pid).into(),
            MM_PROC_SPAWN => self.proc_spawn(pid, payload).into(),
            MM_PROC_EXIT => self.proc_exit(pid, payload).into(),
            _ => Reply::err(errno::ENOSYS).into(),
        }
    }
}
