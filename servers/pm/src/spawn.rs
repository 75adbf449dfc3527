//! `PM_SPAWN`: from a path and an argument list to a running, registered child.

use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::opcode::{
    DS_PROC_SPAWN, MM_PROC_SPAWN, SYS_CREATE_DOMAIN, SYS_KILL_DOMAIN, SYS_START_DOMAIN,
    VFS_PROC_SPAWN,
};
use ankh_proto::pm::{PidRecord, Spawn, ARG_MAX, PROC_MAX, SESSION_PROCS_MAX, SPAWN_INHERIT_FDS};
use ankh_proto::server::{Endpoint, Kernel, Reply, Request};
use ankh_proto::sys::{CreateDomain, Created, KillDomain, StartDomain};
use ankh_proto::vfs::ProcSpawn;
use ankh_proto::{wire, Pid};
use virtio_seep::message::VMM_DOMAIN;

use crate::calls::{self, call};
use crate::image;
use crate::table::Proc;
use crate::ProcessManager;

impl ProcessManager {
    /// `PM_SPAWN` (`Spawn` record, bulk `path\0arg0\0...`): loads the program through
    /// VFS, has the VMM make its domain, introduces the child to VFS, MM and DS, enters
    /// it in the table and answers its pid.
    ///
    /// The order keeps PM's recovery window (docs/recovery.md, "Coverage") open as
    /// long as it can be: the checks and the program's read (a query) come first,
    /// then the calls about the new domain, whose effects the VMM holds or undoes
    /// while the window is open (`SYS_CREATE_DOMAIN`, `VFS_PROC_SPAWN`,
    /// `MM_PROC_SPAWN` and `DS_PROC_SPAWN` about the child, `SYS_START_DOMAIN`;
    /// docs/recovery.md, "Held effects"). No DS publication: it would close the
    /// window, and the count of processes PM once published there had no reader
    /// (`PM_PS` lists the table).
    ///
    /// Errors: `E2BIG` (list over `ARG_MAX`), `EINVAL` (malformed record, flags or
    /// list, or an empty path), `EAGAIN` (`PROC_MAX` entries, live or zombie, or
    /// `SESSION_PROCS_MAX` in the caller's session), VFS's
    /// errors for the file, `ENOEXEC` (not a regular ELF file), `EMSGSIZE` (the image
    /// does not fit a message), the VMM's errors for the domain. When VFS, MM or DS
    /// refuses the child after its domain was made, the domain is killed, the child
    /// is detached (reaped when its end is reported) and their error is answered.
    pub(crate) fn spawn(
        &mut self,
        request: &Request<'_>,
        kernel: &mut dyn Kernel,
    ) -> Result<Reply, Errno> {
        let parent = request.source;
        let Spawn { flags, .. } = wire::record(request.payload)?;
        if flags & !SPAWN_INHERIT_FDS != 0 {
            return Err(errno::EINVAL);
        }
        if request.bulk.len() > ARG_MAX {
            return Err(errno::E2BIG);
        }
        let list = wire::split(request.bulk)?;
        let Some((path, args)) = list.split_first() else {
            return Err(errno::EINVAL);
        };
        if path.is_empty() {
            return Err(errno::EINVAL);
        }
        if self.procs.len() >= PROC_MAX {
            return Err(errno::EAGAIN);
        }
        let session = self.session_of_child(parent);
        // A parent PM did not spawn is entered below, as its own session's root.
        let unentered = usize::from(!self.procs.contains_key(&parent));
        if session.is_some_and(|s| self.session_size(s) + unentered >= SESSION_PROCS_MAX) {
            return Err(errno::EAGAIN);
        }
        let child = create_domain(kernel, parent, path)?;
        if child == VMM_DOMAIN || self.procs.contains_key(&child) {
            // The VMM numbers domains and never reuses an id; PM does not take
            // that on trust and refuses to overwrite an entry.
            return Err(errno::EAGAIN);
        }
        self.enter(parent);
        self.procs
            .insert(child, Proc::spawned(parent, session.unwrap_or(child), args));
        // The child runs only once VFS, MM and DS know it.
        let introduced = introduce(kernel, child, parent, flags).and_then(|()| {
            let start = StartDomain {
                id: child,
                reserved: 0,
            };
            call(
                kernel,
                Endpoint::Kernel,
                SYS_START_DOMAIN,
                &wire::bytes(&start),
                &[],
            )
            .map(|_| ())
        });
        if introduced.is_err() {
            if let Some(proc) = self.procs.get_mut(&child) {
                proc.detached = true;
            }
            let kill = KillDomain {
                id: child,
                reserved: 0,
            };
            let kill = wire::bytes(&kill);
            let _ = calls::call_retrying(kernel, Endpoint::Kernel, SYS_KILL_DOMAIN, &kill, &[]);
        }
        introduced?;
        Ok(Reply::ok(wire::bytes(&PidRecord {
            pid: child,
            reserved: 0,
        })))
    }
}

/// Loads `path` and asks the VMM for a domain running it; the new domain's id.
fn create_domain(kernel: &mut dyn Kernel, parent: Pid, path: &str) -> Result<Pid, Errno> {
    let name = image::domain_name(path);
    let mut bulk = Vec::with_capacity(name.len() + 1);
    bulk.extend_from_slice(name.as_bytes());
    bulk.push(0);
    image::load(kernel, path, &mut bulk)?;
    let create = CreateDomain {
        parent,
        memory_mib: 0,
    };
    let reply = call(
        kernel,
        Endpoint::Kernel,
        SYS_CREATE_DOMAIN,
        &wire::bytes(&create),
        &bulk,
    )?;
    let Created { id, .. } = wire::record(&reply.payload)?;
    Ok(id)
}

/// Tells VFS (which gives the child a descriptor table), MM (an empty account) and DS
/// (whose session share its keys count against) about the child.
fn introduce(kernel: &mut dyn Kernel, child: Pid, parent: Pid, flags: u32) -> Result<(), Errno> {
    let record = wire::bytes(&ProcSpawn {
        child,
        parent,
        flags,
        reserved: 0,
    });
    call(kernel, Endpoint::Vfs, VFS_PROC_SPAWN, &record, &[])?;
    call(kernel, Endpoint::Mm, MM_PROC_SPAWN, &record, &[])?;
    call(kernel, Endpoint::Ds, DS_PROC_SPAWN, &record, &[])?;
    Ok(())
}
