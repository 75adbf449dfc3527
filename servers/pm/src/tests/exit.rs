//! `SYS_DOMAIN_EXITED` and `PM_WAIT`.

use ankh_proto::ds::OwnerExit;
use ankh_proto::errno::*;
use ankh_proto::opcode::*;
use ankh_proto::pm::{Wait, WaitStatus, PROC_MAX, STATE_ZOMBIE};
use ankh_proto::server::{Handled, Reply};
use ankh_proto::sys::{DomainExited, EXIT_FAULT, EXIT_KILLED, EXIT_NORMAL};
use ankh_proto::vfs::ProcExit;
use ankh_proto::wire;

use super::{status_of, wait_status, Fixture, INIT};

#[test]
fn an_exit_makes_a_zombie_that_wait_reaps() {
    let mut f = Fixture::new();
    let child = f.spawn(INIT, &["/bin/sh"]).unwrap();
    f.world.calls.clear();
    f.exit(child, 3, EXIT_NORMAL);
    assert_eq!(
        f.world.opcodes(),
        [VFS_PROC_EXIT, MM_PROC_EXIT, DS_PROC_EXIT]
    );
    for call in &f.world.calls[..2] {
        let exit: ProcExit = wire::record(&call.payload).unwrap();
        assert_eq!(exit.pid, child);
    }
    assert_eq!(f.ps()[1].state, STATE_ZOMBIE);
    assert_eq!(f.pm.live(), 1);
    let status = wait_status(&f.wait(INIT, -1).0);
    assert_eq!(
        status,
        WaitStatus {
            pid: child,
            code: 3,
            cause: EXIT_NORMAL,
            reserved: 0
        }
    );
    assert_eq!(f.ps().len(), 1);
    assert_eq!(f.pm.args(child), None);
    assert_eq!(f.wait(INIT, -1).0, Reply::err(ECHILD).into());
}

#[test]
fn a_parked_wait_is_answered_by_the_exit() {
    let mut f = Fixture::new();
    let child = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let (handled, id) = f.wait(INIT, -1);
    assert_eq!(handled, Handled::Deferred);
    f.exit(child, 0, EXIT_KILLED);
    assert_eq!(f.world.replies.len(), 1);
    let (answered, reply) = &f.world.replies[0];
    assert_eq!(*answered, id);
    let status = status_of(reply);
    assert_eq!((status.pid, status.cause), (child, EXIT_KILLED));
    assert_eq!(f.ps().len(), 1, "reaped");
}

#[test]
fn a_wait_for_one_child_ignores_the_others() {
    let mut f = Fixture::new();
    let a = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let b = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let (handled, id) = f.wait(INIT, i32::try_from(b).unwrap());
    assert_eq!(handled, Handled::Deferred);
    f.exit(a, 1, EXIT_NORMAL);
    assert!(f.world.replies.is_empty());
    f.exit(b, 2, EXIT_FAULT);
    assert_eq!(f.world.replies[0].0, id);
    assert_eq!(status_of(&f.world.replies[0].1).pid, b);
    // `a` is still a zombie: a wait for it is answered at once.
    let status = wait_status(&f.wait(INIT, i32::try_from(a).unwrap()).0);
    assert_eq!((status.pid, status.code), (a, 1));
}

#[test]
fn zombies_are_reaped_lowest_pid_first() {
    let mut f = Fixture::new();
    let a = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let b = f.spawn(INIT, &["/bin/sh"]).unwrap();
    f.exit(b, 0, EXIT_NORMAL);
    f.exit(a, 0, EXIT_NORMAL);
    assert_eq!(wait_status(&f.wait(INIT, -1).0).pid, a);
    assert_eq!(wait_status(&f.wait(INIT, -1).0).pid, b);
}

#[test]
fn wait_errors() {
    let mut f = Fixture::new();
    assert_eq!(f.wait(INIT, -1).0, Reply::err(ECHILD).into());
    assert_eq!(f.wait(7, -1).0, Reply::err(ECHILD).into(), "unknown caller");
    let child = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let other = f.spawn(child, &["/bin/sh"]).unwrap();
    let other = i32::try_from(other).unwrap();
    assert_eq!(
        f.wait(INIT, other).0,
        Reply::err(ECHILD).into(),
        "a grandchild"
    );
    assert_eq!(f.wait(INIT, 99).0, Reply::err(ECHILD).into());
    for target in [0, -2, i32::MIN] {
        assert_eq!(f.wait(INIT, target).0, Reply::err(EINVAL).into());
    }
    let short = f.ask(INIT, PM_WAIT, &[0; 4], &[]);
    assert_eq!(short.status, EINVAL);
    // One-way: cannot be parked.
    let wait = wire::bytes(&Wait {
        pid: -1,
        reserved: 0,
    });
    let handled = f.send_with_id(INIT, PM_WAIT, 0, &wait, &[]);
    assert_eq!(handled, Reply::err(EINVAL).into());
    // One parked wait per process.
    assert_eq!(f.wait(INIT, -1).0, Handled::Deferred);
    assert_eq!(f.wait(INIT, -1).0, Reply::err(EAGAIN).into());
}

#[test]
fn exits_from_anyone_but_the_vmm_are_ignored() {
    let mut f = Fixture::new();
    let child = f.spawn(INIT, &["/bin/sh"]).unwrap();
    f.world.calls.clear();
    let record = wire::bytes(&DomainExited {
        id: child,
        code: 0,
        cause: EXIT_NORMAL,
        reserved: 0,
    });
    for source in [INIT, child, 77] {
        let handled = f.send_with_id(source, SYS_DOMAIN_EXITED, 0, &record, &[]);
        assert_eq!(handled, Handled::Deferred);
    }
    let (handled, _) = f.send(child, SYS_DOMAIN_EXITED, &record, &[]);
    assert_eq!(handled, Handled::Deferred);
    assert_eq!(f.pm.live(), 2);
    assert!(f.world.calls.is_empty() && f.world.replies.is_empty());
}

#[test]
fn malformed_and_repeated_exits_are_ignored() {
    let mut f = Fixture::new();
    let child = f.spawn(INIT, &["/bin/sh"]).unwrap();
    f.world.calls.clear();
    assert_eq!(
        f.send_with_id(0, SYS_DOMAIN_EXITED, 0, &[1, 2, 3], &[]),
        Handled::Deferred
    );
    assert!(f.world.calls.is_empty());
    f.exit(child, 5, EXIT_NORMAL);
    let calls = f.world.calls.len();
    f.exit(child, 6, EXIT_FAULT);
    assert_eq!(f.world.calls.len(), calls);
    assert_eq!(wait_status(&f.wait(INIT, -1).0).code, 5);
}

#[test]
fn an_unknown_pid_is_only_cleaned_up_in_vfs_and_mm() {
    let mut f = Fixture::new();
    f.exit(42, 0, EXIT_FAULT);
    assert_eq!(
        f.world.opcodes(),
        [VFS_PROC_EXIT, MM_PROC_EXIT, DS_PROC_EXIT]
    );
    assert_eq!(f.ps().len(), 1);
    let owner: OwnerExit = wire::record(&f.world.calls_of(DS_PROC_EXIT)[0].payload).unwrap();
    assert_eq!(
        owner,
        OwnerExit {
            pid: 42,
            heir: INIT
        },
        "an unknown pid's parent is init"
    );
}

#[test]
fn vfs_and_mm_errors_on_exit_are_ignored() {
    let mut f = Fixture::new();
    let child = f.spawn(INIT, &["/bin/sh"]).unwrap();
    f.world.script(VFS_PROC_EXIT, Ok(Reply::err(ESRCH)));
    f.world.script(MM_PROC_EXIT, Err(EDEADSRCDST));
    f.exit(child, 0, EXIT_NORMAL);
    assert_eq!(wait_status(&f.wait(INIT, -1).0).pid, child);
}

#[test]
fn orphans_go_to_init_and_answer_its_parked_wait() {
    let mut f = Fixture::new();
    let parent = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let live = f.spawn(parent, &["/bin/sh"]).unwrap();
    let dead = f.spawn(parent, &["/bin/sh"]).unwrap();
    f.exit(dead, 9, EXIT_NORMAL);
    let (handled, id) = f.wait(INIT, i32::try_from(dead).unwrap());
    assert_eq!(handled, Reply::err(ECHILD).into(), "not init's child yet");
    let (handled, id2) = f.wait(INIT, -1);
    assert_eq!(handled, Handled::Deferred);
    assert_ne!(id, id2);
    // The parent ends: init's wait collects the lowest zombie (the parent); its
    // zombie child, now init's, is reaped with nobody to wait for it.
    f.exit(parent, 0, EXIT_NORMAL);
    assert_eq!(f.world.replies.len(), 1);
    assert_eq!(f.world.replies[0].0, id2);
    assert_eq!(status_of(&f.world.replies[0].1).pid, parent);
    let table: Vec<(u32, u32)> = f.ps().iter().map(|e| (e.pid, e.ppid)).collect();
    assert_eq!(table, [(INIT, 0), (live, INIT)]);
    let reply = f.ask(live, PM_GETPPID, &[], &[]);
    assert_eq!(
        wire::record::<ankh_proto::pm::PidRecord>(&reply.payload)
            .unwrap()
            .pid,
        INIT
    );
    // A parked wait of init's for any child still collects an adopted orphan.
    let (handled, id3) = f.wait(INIT, -1);
    assert_eq!(handled, Handled::Deferred);
    f.exit(live, 4, EXIT_NORMAL);
    assert_eq!(f.world.replies.len(), 2);
    assert_eq!(f.world.replies[1].0, id3);
    assert_eq!(status_of(&f.world.replies[1].1).pid, live);
    assert_eq!(f.ps().len(), 1);
}

#[test]
fn a_dead_process_s_parked_wait_is_closed() {
    let mut f = Fixture::new();
    let parent = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let child = f.spawn(parent, &["/bin/sh"]).unwrap();
    let (handled, id) = f.wait(parent, -1);
    assert_eq!(handled, Handled::Deferred);
    f.exit(parent, 0, EXIT_KILLED);
    assert_eq!(f.world.replies, [(id, Reply::err(ESRCH))]);
    // The child's end concerns init only, which is not waiting: it is reaped.
    f.exit(child, 0, EXIT_NORMAL);
    assert_eq!(f.world.replies.len(), 1);
    assert_eq!(wait_status(&f.wait(INIT, -1).0).pid, parent);
    assert_eq!(f.wait(INIT, -1).0, Reply::err(ECHILD).into());
}

#[test]
fn orphans_never_fill_the_process_table() {
    let mut f = Fixture::new();
    // Many times over the table's size: a parent spawns a child and ends; the
    // orphan ends later while init waits for its own job by pid only.
    let job = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let (handled, _) = f.wait(INIT, i32::try_from(job).unwrap());
    assert_eq!(handled, Handled::Deferred);
    for round in 0..3 * PROC_MAX {
        let parent = f.spawn(job, &["/bin/sh"]).unwrap();
        let orphan = f
            .spawn(parent, &["/bin/sh"])
            .unwrap_or_else(|e| panic!("round {round}: spawn failed with {e}"));
        f.exit(parent, 0, EXIT_NORMAL);
        assert_eq!(wait_status(&f.wait(job, -1).0).pid, parent);
        f.exit(orphan, 0, EXIT_NORMAL);
        assert_eq!(
            f.ps().len(),
            2,
            "round {round}: only init and the job remain"
        );
    }
    f.exit(job, 0, EXIT_NORMAL);
    assert_eq!(status_of(&f.world.replies.last().unwrap().1).pid, job);
}

#[test]
fn an_exit_hands_ds_keys_to_the_parent() {
    let mut f = Fixture::new();
    let parent = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let child = f.spawn(parent, &["/bin/sh"]).unwrap();
    f.exit(child, 0, EXIT_NORMAL);
    f.exit(parent, 0, EXIT_NORMAL);
    f.exit(INIT, 0, EXIT_NORMAL);
    let owners: Vec<OwnerExit> = f
        .world
        .calls_of(DS_PROC_EXIT)
        .iter()
        .map(|c| wire::record(&c.payload).unwrap())
        .collect();
    let expected = [
        OwnerExit {
            pid: child,
            heir: parent,
        },
        OwnerExit {
            pid: parent,
            heir: INIT,
        },
        OwnerExit { pid: INIT, heir: 0 },
    ];
    assert_eq!(owners, expected);
}

#[test]
fn after_init_ends_orphans_are_reaped_at_once() {
    let mut f = Fixture::new();
    let a = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let b = f.spawn(INIT, &["/bin/sh"]).unwrap();
    f.exit(b, 0, EXIT_NORMAL);
    f.exit(INIT, 0, EXIT_NORMAL);
    let table: Vec<(u32, u32)> = f.ps_from(a).iter().map(|e| (e.pid, e.ppid)).collect();
    assert_eq!(table, [(a, 0)]);
    // A newcomer has no parent either, and nor do its orphans.
    let c = f.spawn(7, &["/bin/sh"]).unwrap();
    f.exit(7, 0, EXIT_NORMAL);
    f.exit(a, 0, EXIT_NORMAL);
    let table: Vec<(u32, u32)> = f.ps_from(c).iter().map(|e| (e.pid, e.ppid)).collect();
    assert_eq!(table, [(c, 0)]);
    f.exit(c, 0, EXIT_NORMAL);
    assert!(f.ps_from(99).is_empty());
}

#[test]
fn exit_notices_are_sent_again_to_a_rolled_back_server() {
    let mut f = Fixture::new();
    let child = f.spawn(INIT, &["/bin/sh"]).unwrap();
    f.world.calls.clear();
    f.world.script(VFS_PROC_EXIT, Ok(Reply::err(ERESTART)));
    f.world.script(MM_PROC_EXIT, Err(ERESTART));
    f.world.script(DS_PROC_EXIT, Ok(Reply::err(ERESTART)));
    f.world.script(DS_PROC_EXIT, Ok(Reply::err(ERESTART)));
    f.exit(child, 0, EXIT_NORMAL);
    assert_eq!(f.world.calls_of(VFS_PROC_EXIT).len(), 2);
    assert_eq!(f.world.calls_of(MM_PROC_EXIT).len(), 2);
    assert_eq!(f.world.calls_of(DS_PROC_EXIT).len(), 3);
    // A server that keeps rolling back is not called forever.
    let other = f.spawn(INIT, &["/bin/sh"]).unwrap();
    let retries = usize::try_from(ankh_proto::server::RESTART_RETRIES).unwrap();
    for _ in 0..retries + 10 {
        f.world.script(VFS_PROC_EXIT, Ok(Reply::err(ERESTART)));
    }
    f.world.calls.clear();
    f.exit(other, 0, EXIT_NORMAL);
    assert_eq!(f.world.calls_of(VFS_PROC_EXIT).len(), 1 + retries);
    assert_eq!(wait_status(&f.wait(INIT, -1).0).pid, child);
}
