//! `MM_PROC_SPAWN` and `MM_PROC_EXIT`.

use ankh_proto::errno::{EINVAL, EPERM};
use ankh_proto::mm::PAGE;
use ankh_proto::opcode::{MM_PROC_EXIT, MM_PROC_SPAWN};
use ankh_proto::vfs::{ProcExit, ProcSpawn};
use ankh_proto::wire;

use super::Fixture;
use crate::MemoryManager;

fn spawn(child: u32) -> Vec<u8> {
    wire::bytes(&ProcSpawn {
        child,
        parent: 1,
        flags: 0,
        reserved: 0,
    })
}

fn exit(pid: u32) -> Vec<u8> {
    wire::bytes(&ProcExit { pid, reserved: 0 })
}

#[test]
fn exit_frees_everything_of_the_process() {
    let mut f = Fixture::default();
    f.map(5, 3 * PAGE).unwrap();
    f.map(5, PAGE).unwrap();
    f.map(6, PAGE).unwrap();
    assert_eq!(f.ask(2, MM_PROC_EXIT, &exit(5)).status, 0);
    assert_eq!(f.mm.used(5), 0);
    assert!(f.mm.regions(5).is_empty());
    assert_eq!(f.mm.system_used(), PAGE);
    // Repeatable (`opcode::is_repeatable`): a second notice finds nothing and
    // changes nothing.
    assert_eq!(f.ask(2, MM_PROC_EXIT, &exit(5)).status, 0);
    assert_eq!(f.mm.system_used(), PAGE);
    assert_eq!(f.mm.used(6), PAGE);
    assert_eq!(f.ask(2, MM_PROC_EXIT, &exit(77)).status, 0);
}

#[test]
fn a_spawned_child_starts_with_nothing() {
    let mut f = Fixture::default();
    f.map(5, PAGE).unwrap();
    // A stale account under the child's pid is freed.
    assert_eq!(f.ask(2, MM_PROC_SPAWN, &spawn(5)).status, 0);
    assert_eq!(f.mm.used(5), 0);
    assert_eq!(f.mm.system_used(), 0);
    assert_eq!(f.ask(2, MM_PROC_SPAWN, &spawn(8)).status, 0);
    assert_eq!(f.mm.used(8), 0);
}

#[test]
fn lifecycle_messages_need_a_record() {
    let mut f = Fixture::default();
    assert_eq!(f.ask(2, MM_PROC_SPAWN, &[0; 4]).status, EINVAL);
    assert_eq!(f.ask(2, MM_PROC_EXIT, &[0; 4]).status, EINVAL);
}

#[test]
fn nobody_reports_its_own_spawn_or_end() {
    let mut f = Fixture::default();
    f.map(5, PAGE).unwrap();
    assert_eq!(f.ask(5, MM_PROC_EXIT, &exit(5)).status, EPERM);
    assert_eq!(f.ask(5, MM_PROC_SPAWN, &spawn(5)).status, EPERM);
    assert_eq!(f.mm.used(5), PAGE);
}

#[test]
fn a_named_process_manager_is_the_only_one_heard() {
    let mut f = Fixture::new(MemoryManager::default().with_process_manager(2));
    f.map(5, PAGE).unwrap();
    assert_eq!(f.ask(5, MM_PROC_EXIT, &exit(5)).status, EPERM);
    assert_eq!(f.ask(3, MM_PROC_SPAWN, &spawn(5)).status, EPERM);
    assert_eq!(f.mm.used(5), PAGE);
    assert_eq!(f.ask(2, MM_PROC_EXIT, &exit(5)).status, 0);
    assert_eq!(f.ask(2, MM_PROC_SPAWN, &spawn(5)).status, 0);
    assert_eq!(f.mm.used(5), 0);
}

fn spawn_of(child: u32, parent: u32) -> Vec<u8> {
    wire::bytes(&ProcSpawn {
        child,
        parent,
        flags: 0,
        reserved: 0,
    })
}

#[test]
fn a_program_s_process_tree_shares_one_session_budget_and_others_keep_theirs() {
    use ankh_proto::errno::ENOMEM;
    use ankh_proto::mm::{PROCESS_LIMIT, SESSION_SHARE};
    let mut f = Fixture::new(MemoryManager::default().with_process_manager(2));
    // Init (1) starts a program (10); it spawns helpers, and a helper spawns one.
    assert_eq!(f.ask(2, MM_PROC_SPAWN, &spawn_of(10, 1)).status, 0);
    assert_eq!(f.ask(2, MM_PROC_SPAWN, &spawn_of(11, 10)).status, 0);
    assert_eq!(f.ask(2, MM_PROC_SPAWN, &spawn_of(12, 11)).status, 0);
    f.map(10, PROCESS_LIMIT).unwrap();
    f.map(11, SESSION_SHARE - PROCESS_LIMIT).unwrap();
    // Each is under its own limit, but the session's share is used up.
    assert_eq!(f.map(12, PAGE), Err(ENOMEM));
    assert_eq!(f.mm.session_used(12), SESSION_SHARE);
    // Another program init started still gets memory, up to its own share.
    assert_eq!(f.ask(2, MM_PROC_SPAWN, &spawn_of(20, 1)).status, 0);
    f.map(20, PROCESS_LIMIT).unwrap();
    // An exit in the session frees its part of the share.
    assert_eq!(f.ask(2, MM_PROC_EXIT, &exit(11)).status, 0);
    f.map(12, PAGE).unwrap();
    assert_eq!(f.mm.session_used(10), PROCESS_LIMIT + PAGE);
}
