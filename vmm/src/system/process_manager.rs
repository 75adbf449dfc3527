//! What the VMM knows of the process manager's protocol, given to the router as
//! rules and notices (the router itself knows no server's protocol): which messages
//! only PM may send, the `SYS_DOMAIN_EXITED` notice PM gets when a process ends, and
//! which of PM's messages introduce a new process to a server (`spawn_notice_child`).

use ankh_proto::sys::{self, DomainExited};
use ankh_proto::vfs::ProcSpawn;
use ankh_proto::wire;
use virtio_seep::message::{DomainId, MessageHeader, VMM_DOMAIN};
use virtio_seep::opcode;
use zerocopy::IntoBytes;

use crate::fault::{DomainExit, DomainFault};
use crate::ipc::router::{Role, Router};
use crate::ipc::Message;

/// Opcodes that tell servers about processes: only the process manager may send them,
/// so no process can close another's descriptors, reset its memory accounting or move
/// itself out of its session. From anyone else the router answers them `EPERM` and
/// never delivers them.
pub(super) const MANAGER_ONLY: [u16; 6] = [
    opcode::VFS_PROC_SPAWN,
    opcode::VFS_PROC_EXIT,
    opcode::DS_PROC_SPAWN,
    opcode::DS_PROC_EXIT,
    opcode::MM_PROC_SPAWN,
    opcode::MM_PROC_EXIT,
];

/// The process a spawn notice of PM's introduces to a server (`VFS_PROC_SPAWN`,
/// `MM_PROC_SPAWN` and `DS_PROC_SPAWN`, whose record names the child first), or `None`
/// for any other message. What a server keeps for that child it forgets when the child ends
/// (`*_PROC_EXIT`, which PM sends for every process end it hears of, known to it or
/// not), so a notice about a child whose creation a rollback undoes is undone too.
pub(super) fn spawn_notice_child(message: &Message) -> Option<DomainId> {
    if !matches!(
        message.header.opcode,
        opcode::VFS_PROC_SPAWN | opcode::MM_PROC_SPAWN | opcode::DS_PROC_SPAWN
    ) {
        return None;
    }
    let ProcSpawn { child, .. } = wire::record(&message.payload).ok()?;
    Some(child)
}

/// How a domain ended, as the process manager is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ExitCause {
    /// `ankh_proto::sys::EXIT_NORMAL`, `EXIT_FAULT` or `EXIT_KILLED`.
    pub(super) cause: u32,
    /// The exit code (for `EXIT_NORMAL`).
    pub(super) code: i32,
}

impl ExitCause {
    /// Stopped by a fault (or never booted).
    pub(super) const FAULT: ExitCause = ExitCause {
        cause: sys::EXIT_FAULT,
        code: 0,
    };
    /// Killed (`SYS_KILL_DOMAIN`).
    pub(super) const KILLED: ExitCause = ExitCause {
        cause: sys::EXIT_KILLED,
        code: 0,
    };

    /// How the process manager is told a domain that ended with `exit` ended.
    pub(super) fn of(exit: &DomainExit) -> ExitCause {
        match exit {
            DomainExit::Exited { code } => ExitCause {
                cause: sys::EXIT_NORMAL,
                code: i32::from_ne_bytes(code.to_ne_bytes()),
            },
            DomainExit::Halted => ExitCause {
                cause: sys::EXIT_NORMAL,
                code: 0,
            },
            DomainExit::Faulted(DomainFault::Killed { .. }) => ExitCause::KILLED,
            DomainExit::Faulted(_) => ExitCause::FAULT,
        }
    }
}

/// Tells `router` that domain `id` stopped with `cause`; if it was a process and the
/// process manager runs, PM is told how it ended (`SYS_DOMAIN_EXITED`, once). Returns
/// the domains woken.
pub(super) fn domain_stopped(router: &mut Router, id: DomainId, cause: ExitCause) -> Vec<DomainId> {
    let Some(mut woken) = router.stopped(id) else {
        return Vec::new();
    };
    if let (Role::Process, Some(manager)) = (router.role(id), router.process_manager()) {
        woken.extend(router.post(manager, exit_notice(id, cause)));
    }
    woken
}

/// The `SYS_DOMAIN_EXITED` notice of domain `id`'s end.
fn exit_notice(id: DomainId, cause: ExitCause) -> Message {
    let record = DomainExited {
        id,
        code: cause.code,
        cause: cause.cause,
        reserved: 0,
    };
    Message {
        header: MessageHeader {
            source: VMM_DOMAIN,
            opcode: opcode::SYS_DOMAIN_EXITED,
            payload_len: u32::try_from(size_of::<DomainExited>()).expect("small"),
            ..MessageHeader::default()
        },
        payload: record.as_bytes().to_vec(),
        bulk: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::router::{StormLimits, WaitOutcome};
    use virtio_seep::queue::IpcOp;

    #[test]
    fn the_process_manager_hears_of_process_ends_only() {
        let roles = vec![Role::ProcessManager, Role::Server, Role::Process];
        let mut r = Router::with_roles(roles, [], StormLimits::default());
        assert_eq!(
            r.wait(1, IpcOp::Receive, 0, None).unwrap(),
            WaitOutcome::Blocked
        );
        let exited = ExitCause::of(&DomainExit::Halted);
        assert!(
            domain_stopped(&mut r, 2, exited).is_empty(),
            "servers are not processes"
        );
        assert_eq!(domain_stopped(&mut r, 3, ExitCause::FAULT), [1]);
        let notice = r.take_delivery(1).unwrap();
        assert_eq!(notice.header.opcode, opcode::SYS_DOMAIN_EXITED);
        assert_eq!(notice.header.source, VMM_DOMAIN);
        let record: DomainExited = ankh_proto::wire::record(&notice.payload).unwrap();
        assert_eq!((record.id, record.cause), (3, sys::EXIT_FAULT));
        assert!(domain_stopped(&mut r, 3, exited).is_empty(), "once");
    }

    #[test]
    fn only_spawn_notices_name_a_child() {
        let record = ProcSpawn {
            child: 9,
            parent: 5,
            flags: 0,
            reserved: 0,
        };
        let mut message = Message {
            payload: record.as_bytes().to_vec(),
            ..Message::default()
        };
        for (code, child) in [
            (opcode::VFS_PROC_SPAWN, Some(9)),
            (opcode::MM_PROC_SPAWN, Some(9)),
            (opcode::DS_PROC_SPAWN, Some(9)),
            (opcode::VFS_PROC_EXIT, None),
            (opcode::DS_PROC_EXIT, None),
            (opcode::DS_PUBLISH, None),
        ] {
            message.header.opcode = code;
            assert_eq!(spawn_notice_child(&message), child, "{code:#x}");
        }
        message.header.opcode = opcode::VFS_PROC_SPAWN;
        message.payload.truncate(3);
        assert_eq!(spawn_notice_child(&message), None, "a malformed record");
    }

    #[test]
    fn every_process_notice_is_for_the_process_manager_only() {
        let notices: Vec<u16> = opcode::OPCODES
            .iter()
            .filter(|info| info.name.contains("-proc-"))
            .map(|info| info.code)
            .collect();
        let mut listed = MANAGER_ONLY.to_vec();
        listed.sort_unstable();
        assert_eq!(notices, listed);
    }

    #[test]
    fn exit_codes_reach_the_process_manager_unchanged() {
        let cause = ExitCause::of(&DomainExit::Exited { code: u32::MAX });
        assert_eq!((cause.cause, cause.code), (sys::EXIT_NORMAL, -1));
        let killed = ExitCause::of(&DomainExit::Faulted(DomainFault::Killed { by: 1 }));
        assert_eq!(killed, ExitCause::KILLED);
    }
}
