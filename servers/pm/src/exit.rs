//! `SYS_DOMAIN_EXITED` (a process ended) and `PM_WAIT` (collect a child's end).

use alloc::vec::Vec;

use ankh_proto::ds::OwnerExit;
use ankh_proto::errno::{self, Errno};
use ankh_proto::opcode::{DS_PROC_EXIT, MM_PROC_EXIT, VFS_PROC_EXIT};
use ankh_proto::pm::{Wait, WaitStatus};
use ankh_proto::server::{Endpoint, Handled, Kernel, Reply, Request};
use ankh_proto::sys::DomainExited;
use ankh_proto::vfs::ProcExit;
use ankh_proto::{wire, Pid};
use virtio_seep::message::VMM_DOMAIN;

use crate::calls;
use crate::table::{ParkedWait, State};
use crate::ProcessManager;

impl ProcessManager {
    /// `SYS_DOMAIN_EXITED` (from the VMM, one-way): the process becomes a zombie, VFS
    /// and MM free what it held, DS ends its subscriptions and hands its keys to its
    /// parent, its children go to init (adopted: reaped when they end, see
    /// [`ProcessManager::settle`]), and its parent's parked wait is answered if it
    /// matches. A malformed record, or a second report of the same end, is ignored.
    pub(crate) fn domain_exited(&mut self, payload: &[u8], kernel: &mut dyn Kernel) {
        let Ok(DomainExited {
            id, code, cause, ..
        }) = wire::record(payload)
        else {
            return;
        };
        let parked = match self.procs.get_mut(&id) {
            Some(proc) if !proc.is_running() => return,
            Some(proc) => {
                proc.state = State::Zombie { code, cause };
                Some(proc.wait.take())
            }
            None => None,
        };
        // Its DS keys go to its parent (who is charged for them from now on).
        let keys_heir = match self.procs.get(&id) {
            Some(proc) => proc.ppid,
            None => self.adoptive_parent(),
        };
        // VFS, MM and DS forget the process even when PM never knew it (a domain the
        // VMM started, or one whose creation failed). A rolled-back server gets the
        // notice again (else what the process held would leak); other errors change
        // nothing here.
        let exit = wire::bytes(&ProcExit {
            pid: id,
            reserved: 0,
        });
        let _ = calls::call_retrying(kernel, Endpoint::Vfs, VFS_PROC_EXIT, &exit, &[]);
        let _ = calls::call_retrying(kernel, Endpoint::Mm, MM_PROC_EXIT, &exit, &[]);
        let owner = wire::bytes(&OwnerExit {
            pid: id,
            heir: keys_heir,
        });
        let _ = calls::call_retrying(kernel, Endpoint::Ds, DS_PROC_EXIT, &owner, &[]);
        let Some(parked) = parked else {
            return;
        };
        if let Some(wait) = parked {
            // Nobody will read this; answering lets the VMM forget the request.
            kernel.reply(wait.request_id, Reply::err(errno::ESRCH));
        }
        let heir = self.adoptive_parent();
        for proc in self.procs.values_mut().filter(|p| p.ppid == id) {
            proc.ppid = heir;
            proc.adopted = true;
        }
        let parent = self.procs.get(&id).map_or(VMM_DOMAIN, |p| p.ppid);
        self.settle(parent, kernel);
        if heir != parent {
            self.settle(heir, kernel);
        }
    }

    /// Answers `parent`'s parked wait if a zombie child matches, then reaps the
    /// zombie children nobody will wait for: all of them when `parent` is 0, the
    /// detached ones, and the adopted ones (orphans init took over).
    ///
    /// The adopted rule is what keeps orphans from filling the process table: init
    /// waits for its own jobs by pid, and never learns the pids of the processes it
    /// adopts, so an adopted orphan that ends is reaped at once, unless a wait of
    /// init's that matches it is parked at that moment (a `wait(-1)`), which then
    /// collects it as before.
    fn settle(&mut self, parent: Pid, kernel: &mut dyn Kernel) {
        let wait = self.procs.get(&parent).and_then(|p| p.wait);
        if let Some(wait) = wait {
            if let Some(status) = self.reap(parent, wait.target) {
                if let Some(proc) = self.procs.get_mut(&parent) {
                    proc.wait = None;
                }
                kernel.reply(wait.request_id, Reply::ok(wire::bytes(&status)));
            }
        }
        let unwanted: Vec<Pid> = self
            .procs
            .iter()
            .filter(|(_, p)| {
                p.ppid == parent
                    && !p.is_running()
                    && (parent == VMM_DOMAIN || p.detached || p.adopted)
            })
            .map(|(&pid, _)| pid)
            .collect();
        for pid in unwanted {
            self.procs.remove(&pid);
        }
    }

    /// Removes the lowest-numbered zombie child of `parent` that `target` matches;
    /// its status.
    fn reap(&mut self, parent: Pid, target: i32) -> Option<WaitStatus> {
        let (pid, code, cause) = self.procs.iter().find_map(|(&pid, p)| match p.state {
            State::Zombie { code, cause } if p.is_waitable_by(pid, parent, target) => {
                Some((pid, code, cause))
            }
            _ => None,
        })?;
        self.procs.remove(&pid);
        Some(WaitStatus {
            pid,
            code,
            cause,
            reserved: 0,
        })
    }

    /// `PM_WAIT` (`Wait{pid: -1 or a child}`): a matching zombie child is reaped and
    /// answered now; with only live matching children the request is parked.
    pub(crate) fn wait(&mut self, request: &Request<'_>) -> Handled {
        match self.try_wait(request) {
            Ok(Some(status)) => Reply::ok(wire::bytes(&status)).into(),
            Ok(None) => Handled::Deferred,
            Err(status) => Reply::err(status).into(),
        }
    }

    /// `PM_WAIT`: the status now, `None` when parked. Errors: `EINVAL` (malformed
    /// record, a pid of 0 or below -1, or a one-way message that would be parked),
    /// `ECHILD` (no matching child), `EAGAIN` (the caller has a wait parked already).
    fn try_wait(&mut self, request: &Request<'_>) -> Result<Option<WaitStatus>, Errno> {
        let Wait { pid: target, .. } = wire::record(request.payload)?;
        if target == 0 || target < -1 {
            return Err(errno::EINVAL);
        }
        let parent = request.source;
        if let Some(status) = self.reap(parent, target) {
            return Ok(Some(status));
        }
        let waits_for_some = self
            .procs
            .iter()
            .any(|(&pid, p)| p.is_running() && p.is_waitable_by(pid, parent, target));
        // A parent with children is in the table: it spawned them.
        let proc = match self.procs.get_mut(&parent) {
            Some(proc) if waits_for_some => proc,
            _ => return Err(errno::ECHILD),
        };
        if request.request_id == 0 {
            return Err(errno::EINVAL);
        }
        if proc.wait.is_some() {
            return Err(errno::EAGAIN);
        }
        proc.wait = Some(ParkedWait {
            request_id: request.request_id,
            target,
        });
        Ok(None)
    }
}
