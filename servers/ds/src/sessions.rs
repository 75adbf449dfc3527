//! Which session each process belongs to, as PM's spawn notices (`DS_PROC_SPAWN`)
//! tell it: a process whose parent DS never saw spawned (a program init started)
//! starts a session, and every process it spawns, directly or not, joins it.

use alloc::collections::BTreeMap;

use ankh_proto::errno::{self, Errno};
use ankh_proto::pm::PROC_MAX;
use ankh_proto::Pid;

/// The session of each process DS saw spawned and that has not ended (a pid not here
/// is its own session). At most [`PROC_MAX`] entries: PM has no more processes alive,
/// and DS forgets each at its end (`DS_PROC_EXIT`).
#[derive(Default)]
pub(crate) struct Sessions {
    of: BTreeMap<Pid, Pid>,
}

impl Sessions {
    /// The session `pid` belongs to.
    pub(crate) fn of(&self, pid: Pid) -> Pid {
        self.of.get(&pid).copied().unwrap_or(pid)
    }

    /// Number of processes known to be in a session.
    pub(crate) fn len(&self) -> usize {
        self.of.len()
    }

    /// `child` joins `parent`'s session (or starts one, when DS never saw `parent`
    /// spawned). `EAGAIN` when [`PROC_MAX`] other processes are known already: more
    /// than PM has alive, so some end was not reported, and DS keeps its bound rather
    /// than grow.
    pub(crate) fn join(&mut self, child: Pid, parent: Pid) -> Result<(), Errno> {
        if self.of.len() >= PROC_MAX && !self.of.contains_key(&child) {
            return Err(errno::EAGAIN);
        }
        // A parent DS never saw spawned (init): the child starts a session.
        let session = self.of.get(&parent).copied().unwrap_or(child);
        self.of.insert(child, session);
        Ok(())
    }

    /// Forgets `pid`, which ended.
    pub(crate) fn leave(&mut self, pid: Pid) {
        self.of.remove(&pid);
    }
}
