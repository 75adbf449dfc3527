//! `PM_GETPID`, `PM_GETPPID`, `PM_KILL`, `PM_PS`, and requests PM refuses whatever
//! they ask.

use ankh_proto::errno::*;
use ankh_proto::opcode::*;
use ankh_proto::pm::{PidRecord, ProcEntry, STATE_RUNNING, STATE_ZOMBIE};
use ankh_proto::server::Reply;
use ankh_proto::sys::{KillDomain, EXIT_KILLED};
use ankh_proto::wire;

use super::{Fixture, INIT};

fn pid_of(reply: &Reply) -> u32 {
    assert_eq!(reply.status, 0);
    wire::record::<PidRecord>(&reply.payload).unwrap().pid
}

fn kill(f: &mut Fixture, source: u32, pid: u32) -> Reply {
    f.ask(
        source,
        PM_KILL,
        &wire::bytes(&PidRecord { pid, reserved: 0 }),
        &[],
    )
}

#[test]
fn getpid_and_getppid() {
    let mut f = Fixture::new();
    let child = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let grandchild = f.spawn(child, &["/bin/sh"]).unwrap();
    for (pid, ppid) in [(INIT, 0), (child, INIT), (grandchild, child), (55, INIT)] {
        assert_eq!(pid_of(&f.ask(pid, PM_GETPID, &[], &[])), pid);
        assert_eq!(pid_of(&f.ask(pid, PM_GETPPID, &[], &[])), ppid);
    }
    assert_eq!(f.ps().len(), 3, "queries enter nobody");
}

#[test]
fn kill_asks_the_vmm_and_the_end_follows() {
    let mut f = Fixture::new();
    let parent = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let child = f.spawn(parent, &["/bin/sh"]).unwrap();
    f.world.calls.clear();
    let reply = kill(&mut f, parent, child);
    assert_eq!((reply.status, reply.payload.len()), (0, 0));
    assert_eq!(f.world.opcodes(), [SYS_KILL_DOMAIN]);
    let record: KillDomain = wire::record(&f.world.calls[0].payload).unwrap();
    assert_eq!(record.id, child);
    assert_eq!(f.pm.live(), 3, "it runs until the VMM reports its end");
    f.exit(child, 0, EXIT_KILLED);
    assert_eq!(kill(&mut f, parent, child).status, ESRCH, "a zombie");
    assert_eq!(super::wait_status(&f.wait(parent, -1).0).cause, EXIT_KILLED);
}

#[test]
fn kill_errors() {
    let mut f = Fixture::new();
    let child = f.spawn(INIT, &["/bin/sh"]).unwrap();
    f.world.calls.clear();
    assert_eq!(kill(&mut f, child, 99).status, ESRCH);
    assert_eq!(kill(&mut f, child, 0).status, ESRCH);
    assert_eq!(kill(&mut f, child, INIT).status, EPERM);
    assert_eq!(f.ask(child, PM_KILL, &[1], &[]).status, EINVAL);
    assert!(f.world.calls.is_empty());
    f.world.script(SYS_KILL_DOMAIN, Ok(Reply::err(EPERM)));
    assert_eq!(kill(&mut f, INIT, child).status, EPERM);
    f.world.script(SYS_KILL_DOMAIN, Err(EDEADLK));
    assert_eq!(kill(&mut f, INIT, child).status, EDEADLK);
}

#[test]
fn only_ancestors_may_kill() {
    let mut f = Fixture::new();
    let parent = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let child = f.spawn(parent, &["/bin/sh"]).unwrap();
    let grandchild = f.spawn(child, &["/bin/sh"]).unwrap();
    let stranger = f.spawn(INIT, &["/bin/sh"]).unwrap();
    f.world.calls.clear();
    assert_eq!(
        kill(&mut f, stranger, child).status,
        EPERM,
        "a sibling's child"
    );
    assert_eq!(kill(&mut f, child, parent).status, EPERM, "its own parent");
    assert_eq!(kill(&mut f, child, child).status, EPERM, "itself");
    assert_eq!(
        kill(&mut f, 77, grandchild).status,
        EPERM,
        "an unknown caller"
    );
    assert!(f.world.killed.is_empty());
    assert_eq!(kill(&mut f, parent, grandchild).status, 0, "a grandchild");
    assert_eq!(kill(&mut f, INIT, child).status, 0, "init's descendant");
    assert_eq!(f.world.killed, [grandchild, child]);
    // An orphan adopted by init is init's to kill, not its old grandparent's.
    f.exit(child, 0, EXIT_KILLED);
    assert_eq!(kill(&mut f, parent, grandchild).status, EPERM);
    assert_eq!(kill(&mut f, INIT, grandchild).status, 0);
}

#[test]
fn ps_lists_live_and_zombie_processes_by_pid() {
    let mut f = Fixture::new();
    let a = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let b = f.spawn(a, &["/bin/sh"]).unwrap();
    let c = f.spawn(INIT, &["/bin/sh"]).unwrap();
    f.exit(b, 0, 0);
    let entry = |pid, ppid, state| ProcEntry {
        pid,
        ppid,
        state,
        reserved: 0,
    };
    let expected = [
        entry(INIT, 0, STATE_RUNNING),
        entry(a, INIT, STATE_RUNNING),
        entry(b, a, STATE_ZOMBIE),
        entry(c, INIT, STATE_RUNNING),
    ];
    assert_eq!(f.ps(), expected);
    assert_eq!(f.pm.entries(), expected);
}

#[test]
fn the_vmm_and_the_dead_are_refused() {
    let mut f = Fixture::new();
    let child = f.spawn(INIT, &["/bin/sh"]).unwrap();
    for opcode in [PM_GETPID, PM_PS, PM_SPAWN, PM_WAIT, PM_KILL, 0x7777] {
        assert_eq!(f.ask(0, opcode, &[], &[]).status, EPERM);
    }
    f.exit(child, 0, 0);
    for opcode in [PM_GETPID, PM_PS, PM_SPAWN, PM_WAIT, PM_KILL] {
        assert_eq!(f.ask(child, opcode, &[], &[]).status, ESRCH);
    }
}

#[test]
fn unknown_opcodes_are_enosys() {
    let mut f = Fixture::new();
    for opcode in [VFS_OPEN, DS_PUBLISH, SYS_CREATE_DOMAIN, 0xffff] {
        assert_eq!(f.ask(INIT, opcode, &[], &[]).status, ENOSYS);
    }
}
