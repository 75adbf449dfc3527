//! `PM_SPAWN`: the happy path, every error, and the domain name.

use ankh_proto::errno::*;
use ankh_proto::opcode::*;
use ankh_proto::pm::{
    Spawn, ARG_MAX, PROC_MAX, SESSION_PROCS_MAX, SPAWN_INHERIT_FDS, STATE_RUNNING,
};
use ankh_proto::server::{Endpoint, Reply};
use ankh_proto::sys::{Created, KillDomain, EXIT_KILLED, EXIT_NORMAL};
use ankh_proto::vfs::{Io, ProcSpawn, Stat, IO_MAX, KIND_FILE};
use ankh_proto::wire;
use virtio_seep::message::BULK_MAX;
use virtio_seep::opcode::SeepClass;

use super::fake::elf;
use super::{Fixture, INIT};
use crate::image::domain_name;

#[test]
fn spawn_loads_creates_introduces_and_records() {
    let mut f = Fixture::new();
    let child = f.spawn(INIT, &["/bin/sh", "sh", "-c", "true"]).unwrap();
    assert_eq!(child, 10);
    assert_eq!(
        f.world.opcodes(),
        [
            VFS_PREAD_PATH,
            SYS_CREATE_DOMAIN,
            VFS_PROC_SPAWN,
            MM_PROC_SPAWN,
            DS_PROC_SPAWN,
            SYS_START_DOMAIN,
        ]
    );
    assert_eq!(
        f.world.started,
        [child],
        "the child runs only after VFS, MM and DS know it"
    );
    let load = &f.world.calls[0];
    let io: Io = wire::record(&load.payload).unwrap();
    assert_eq!(load.bulk, b"/bin/sh\0");
    assert_eq!((io.fd, io.offset), (0, 0));
    assert_eq!(
        io.len as usize,
        BULK_MAX as usize - "sh\0".len(),
        "all that fits"
    );
    let created = &f.world.created[0];
    assert_eq!((created.id, created.request.parent), (child, INIT));
    assert_eq!(created.request.memory_mib, 0);
    let mut bulk = b"sh\0".to_vec();
    bulk.extend_from_slice(&f.world.files["/bin/sh"]);
    assert_eq!(created.bulk, bulk);
    let spawned = ProcSpawn {
        child,
        parent: INIT,
        flags: 0,
        reserved: 0,
    };
    for (opcode, to) in [
        (VFS_PROC_SPAWN, Endpoint::Vfs),
        (MM_PROC_SPAWN, Endpoint::Mm),
        (DS_PROC_SPAWN, Endpoint::Ds),
    ] {
        let call = &f.world.calls_of(opcode)[0];
        assert_eq!(call.to, to);
        assert_eq!(wire::record::<ProcSpawn>(&call.payload).unwrap(), spawned);
    }
    assert_eq!(f.pm.args(child).unwrap(), ["sh", "-c", "true"]);
    let reply = f.ask(child, ankh_proto::opcode::PM_GETARGS, &[], &[]);
    assert_eq!(
        wire::split(&reply.bulk).unwrap(),
        ["sh", "-c", "true"],
        "the child can read them"
    );
    assert_eq!(f.pm.args(INIT).unwrap(), [] as [String; 0]);
    assert_eq!(f.pm.args(99), None);
    assert_eq!(f.pm.live(), 2);
    let entry = f.ps()[1];
    assert_eq!(
        (entry.pid, entry.ppid, entry.state),
        (child, INIT, STATE_RUNNING)
    );
}

#[test]
fn inherit_flag_reaches_vfs_and_argv_may_be_empty() {
    let mut f = Fixture::new();
    let child = f
        .spawn_flags(INIT, &["/bin/hello"], SPAWN_INHERIT_FDS)
        .unwrap();
    let call = &f.world.calls_of(VFS_PROC_SPAWN)[0];
    let record: ProcSpawn = wire::record(&call.payload).unwrap();
    assert_eq!(record.flags, SPAWN_INHERIT_FDS);
    assert!(f.pm.args(child).unwrap().is_empty());
}

/// Recovery coverage (docs/recovery.md): until PM asks the VMM for the domain, a
/// spawn has only sent queries, which change no other component's state, so a fault
/// of PM up to there is rolled back consistently under `enhanced`. The classes are
/// those of the registry the VMM closes windows by.
#[test]
fn a_spawn_sends_only_queries_before_it_asks_for_the_domain() {
    let mut f = Fixture::new();
    f.spawn_flags(INIT, &["/bin/hello", "hello"], SPAWN_INHERIT_FDS)
        .unwrap();
    let opcodes = f.world.opcodes();
    let create = opcodes
        .iter()
        .position(|&op| op == SYS_CREATE_DOMAIN)
        .unwrap();
    assert!(create > 0, "the image is read first");
    for &op in &opcodes[..create] {
        let class = virtio_seep::opcode::lookup(op).unwrap().class;
        assert_eq!(class, SeepClass::Query, "{op:#x} before the domain");
    }
}

/// After the domain is made, a successful spawn sends only what the VMM holds or
/// undoes while PM's window is open (docs/recovery.md, "Held effects"): kernel calls,
/// and the spawn notices to VFS, MM and DS, which name the child just created (the VMM
/// reads that field to verify them). So a spawn finishes inside the window.
#[test]
fn after_the_domain_a_spawn_sends_only_what_the_vmm_holds() {
    let mut f = Fixture::new();
    let child = f
        .spawn_flags(INIT, &["/bin/hello", "hello"], SPAWN_INHERIT_FDS)
        .unwrap();
    let calls = &f.world.calls;
    let create = calls
        .iter()
        .position(|c| c.opcode == SYS_CREATE_DOMAIN)
        .unwrap();
    for call in &calls[create..] {
        match call.opcode {
            SYS_CREATE_DOMAIN | SYS_START_DOMAIN => assert_eq!(call.to, Endpoint::Kernel),
            VFS_PROC_SPAWN | MM_PROC_SPAWN | DS_PROC_SPAWN => {
                let notice: ProcSpawn = wire::record(&call.payload).unwrap();
                assert_eq!(notice.child, child);
            }
            other => panic!("{other:#x} after the domain was made"),
        }
    }
}

#[test]
fn a_file_shorter_than_its_size_is_sent_as_read() {
    let mut f = Fixture::new();
    f.world.fake_size = Some(1000);
    f.spawn(INIT, &["/bin/sh"]).unwrap();
    assert_eq!(&f.world.created[0].bulk[3..], f.world.files["/bin/sh"]);
    assert_eq!(f.world.calls_of(VFS_PREAD_PATH).len(), 1);
}

#[test]
fn images_must_fit_one_message() {
    let mut f = Fixture::new();
    let big = elf(&vec![1; IO_MAX + 100]);
    f.world.files.insert("/bin/big".into(), big.clone());
    // Larger than one message: refused, with no domain asked for.
    assert_eq!(f.spawn(INIT, &["/bin/big"]), Err(EMSGSIZE));
    assert!(f.world.created.is_empty());
    // The largest image that fits.
    let fits = BULK_MAX as usize - "ok\0".len();
    f.world
        .files
        .insert("/bin/ok".into(), elf(&vec![2; fits - 4]));
    f.spawn(INIT, &["/bin/ok"]).unwrap();
    assert_eq!(f.world.created[0].bulk.len(), BULK_MAX as usize);
    f.world
        .files
        .insert("/bin/okk".into(), elf(&vec![2; fits - 4]));
    assert_eq!(
        f.spawn(INIT, &["/bin/okk"]),
        Err(EMSGSIZE),
        "one byte of name more"
    );
}

#[test]
fn argument_lists_are_checked_before_anything_is_called() {
    let mut f = Fixture::new();
    let spawn = wire::bytes(&Spawn::default());
    let mut long = b"/bin/sh\0".to_vec();
    long.resize(ARG_MAX, b'a');
    *long.last_mut().unwrap() = 0;
    assert_eq!(f.ask(INIT, PM_SPAWN, &spawn, &long).status, 0);
    f.world.calls.clear();
    long.insert(0, b'/');
    assert_eq!(f.ask(INIT, PM_SPAWN, &spawn, &long).status, E2BIG);
    let malformed: [&[u8]; 4] = [b"", b"/bin/sh", b"\0", b"/bin/\xff\0"];
    for bulk in malformed {
        assert_eq!(
            f.ask(INIT, PM_SPAWN, &spawn, bulk).status,
            EINVAL,
            "{bulk:?}"
        );
    }
    assert_eq!(f.ask(INIT, PM_SPAWN, &[0; 4], b"/bin/sh\0").status, EINVAL);
    let bad_flags = wire::bytes(&Spawn {
        flags: 2,
        reserved: 0,
    });
    assert_eq!(
        f.ask(INIT, PM_SPAWN, &bad_flags, b"/bin/sh\0").status,
        EINVAL
    );
    assert!(f.world.calls.is_empty());
}

#[test]
fn the_table_holds_at_most_proc_max() {
    let mut f = Fixture::new();
    for _ in 1..PROC_MAX {
        f.spawn(INIT, &["/bin/sh"]).unwrap();
    }
    f.world.calls.clear();
    assert_eq!(f.spawn(INIT, &["/bin/sh"]), Err(EAGAIN));
    assert!(f.world.calls.is_empty());
    // Zombies count until they are reaped.
    f.exit(10, 0, 0);
    assert_eq!(f.spawn(INIT, &["/bin/sh"]), Err(EAGAIN));
    super::wait_status(&f.wait(INIT, 10).0);
    assert!(f.spawn(INIT, &["/bin/sh"]).is_ok());
}

#[test]
fn a_program_s_process_tree_stops_at_its_session_share_and_others_still_spawn() {
    let mut f = Fixture::new();
    let bomb = f.spawn(INIT, &["/bin/sh"]).unwrap();
    // Children and grandchildren alike count against the program init started.
    let child = f.spawn(bomb, &["/bin/sh"]).unwrap();
    let mut members = vec![bomb, child];
    while members.len() < SESSION_PROCS_MAX {
        let parent = members[members.len() % 2];
        members.push(f.spawn(parent, &["/bin/sh"]).unwrap());
    }
    f.world.calls.clear();
    assert_eq!(f.spawn(bomb, &["/bin/sh"]), Err(EAGAIN));
    assert_eq!(f.spawn(child, &["/bin/sh"]), Err(EAGAIN));
    assert!(
        f.world.calls.is_empty(),
        "refused before any domain is made"
    );
    // Another program, and init, still spawn: the table is far from full.
    assert!(f.ps().len() < PROC_MAX);
    let other = f.spawn(INIT, &["/bin/sh"]).unwrap();
    assert!(f.spawn(other, &["/bin/sh"]).is_ok());
    // The bomb ends and is reaped: its orphans stay in its session (adopted by
    // init, they still count), so exactly one more fits.
    f.exit(bomb, 0, 0);
    super::wait_status(&f.wait(INIT, i32::try_from(bomb).unwrap()).0);
    let last = members[SESSION_PROCS_MAX - 1];
    assert!(f.spawn(last, &["/bin/sh"]).is_ok());
    assert_eq!(f.spawn(last, &["/bin/sh"]), Err(EAGAIN));
    // An orphan's end reaps it at once and frees its place.
    f.exit(child, 0, 0);
    assert!(f.spawn(last, &["/bin/sh"]).is_ok());
    assert_eq!(f.spawn(last, &["/bin/sh"]), Err(EAGAIN));
}

#[test]
fn a_caller_pm_did_not_spawn_is_the_root_of_its_own_session() {
    let mut f = Fixture::new();
    let stranger = 40;
    for _ in 1..SESSION_PROCS_MAX {
        f.spawn(stranger, &["/bin/sh"]).unwrap();
    }
    assert_eq!(f.spawn(stranger, &["/bin/sh"]), Err(EAGAIN));
    assert!(f.spawn(INIT, &["/bin/sh"]).is_ok());
}

#[test]
fn vfs_errors_come_back() {
    let mut f = Fixture::new();
    assert_eq!(f.spawn(INIT, &["/bin/nope"]), Err(ENOENT));
    assert_eq!(f.world.opcodes(), [VFS_PREAD_PATH]);
    f.world.script(VFS_PREAD_PATH, Err(EDEADSRCDST));
    assert_eq!(f.spawn(INIT, &["/bin/sh"]), Err(EDEADSRCDST));
    f.world.script(VFS_PREAD_PATH, Ok(Reply::err(EIO)));
    assert_eq!(f.spawn(INIT, &["/bin/sh"]), Err(EIO));
    assert!(f.world.created.is_empty());
    assert_eq!(f.pm.live(), 1);
}

#[test]
fn malformed_vfs_replies_are_einval() {
    let mut f = Fixture::new();
    f.world.script(VFS_PREAD_PATH, Ok(Reply::ok(vec![1, 2])));
    assert_eq!(f.spawn(INIT, &["/bin/sh"]), Err(EINVAL));
    // Bytes beyond the file's size are not part of it.
    let stat = Stat {
        ino: 1,
        size: 8,
        kind: KIND_FILE,
        nlink: 1,
    };
    f.world.script(
        VFS_PREAD_PATH,
        Ok(Reply::ok_with_bulk(wire::bytes(&stat), elf(&[9; 2000]))),
    );
    f.spawn(INIT, &["/bin/sh"]).unwrap();
    assert_eq!(f.world.created[0].bulk, b"sh\0\x7fELF\x09\x09\x09\x09");
}

#[test]
fn only_regular_elf_files_run() {
    let mut f = Fixture::new();
    assert_eq!(f.spawn(INIT, &["/etc/motd"]), Err(ENOEXEC));
    assert_eq!(f.spawn(INIT, &["/bin"]), Err(ENOEXEC));
    f.world.files.insert("/bin/empty".into(), Vec::new());
    assert_eq!(f.spawn(INIT, &["/bin/empty"]), Err(ENOEXEC));
    f.world.files.insert("/bin/tiny".into(), b"\x7fEL".to_vec());
    assert_eq!(f.spawn(INIT, &["/bin/tiny"]), Err(ENOEXEC));
    assert!(f.world.created.is_empty());
}

#[test]
fn vmm_errors_come_back() {
    let mut f = Fixture::new();
    f.world.script(SYS_CREATE_DOMAIN, Ok(Reply::err(ENOMEM)));
    assert_eq!(f.spawn(INIT, &["/bin/sh"]), Err(ENOMEM));
    f.world.script(SYS_CREATE_DOMAIN, Err(EDEADLK));
    assert_eq!(f.spawn(INIT, &["/bin/sh"]), Err(EDEADLK));
    f.world.script(SYS_CREATE_DOMAIN, Ok(Reply::ok(vec![0; 3])));
    assert_eq!(f.spawn(INIT, &["/bin/sh"]), Err(EINVAL));
    assert_eq!(f.pm.live(), 1);
    assert!(f.world.calls_of(VFS_PROC_SPAWN).is_empty());
}

#[test]
fn an_id_already_in_the_table_is_refused() {
    let mut f = Fixture::new();
    let child = f.spawn(INIT, &["/bin/sh"]).unwrap();
    for id in [child, INIT, 0] {
        let created = wire::bytes(&Created { id, reserved: 0 });
        f.world.script(SYS_CREATE_DOMAIN, Ok(Reply::ok(created)));
        assert_eq!(f.spawn(INIT, &["/bin/sh"]), Err(EAGAIN));
    }
    assert_eq!(f.pm.live(), 2);
    assert_eq!(f.pm.args(child).unwrap().len(), 0);
}

#[test]
fn a_child_vfs_mm_or_ds_refuses_is_killed_and_detached() {
    for opcode in [VFS_PROC_SPAWN, MM_PROC_SPAWN, DS_PROC_SPAWN] {
        let mut f = Fixture::new();
        f.world.script(opcode, Ok(Reply::err(EMFILE)));
        assert_eq!(f.spawn(INIT, &["/bin/sh"]), Err(EMFILE));
        let kill: KillDomain = wire::record(&f.world.calls_of(SYS_KILL_DOMAIN)[0].payload).unwrap();
        assert_eq!(kill.id, 10);
        // Nobody may wait for it...
        assert_eq!(f.wait(INIT, 10).0, Reply::err(ECHILD).into());
        assert_eq!(f.wait(INIT, -1).0, Reply::err(ECHILD).into());
        // ...and its end removes it.
        f.exit(10, 0, EXIT_KILLED);
        assert!(f.ps().iter().all(|e| e.pid != 10));
        assert!(f.world.replies.is_empty());
    }
}

#[test]
fn spawns_and_exits_publish_nothing_to_ds() {
    let mut f = Fixture::new();
    let child = f.spawn(INIT, &["/bin/sh"]).unwrap();
    f.exit(child, 0, EXIT_NORMAL);
    assert!(f.world.calls_of(DS_PUBLISH).is_empty());
    assert!(f.world.ds.is_empty(), "{:?}", f.world.ds);
}

#[test]
fn an_unknown_caller_becomes_a_child_of_init() {
    let mut f = Fixture::new();
    let child = f.spawn(5, &["/bin/sh"]).unwrap();
    assert_eq!(f.world.created[0].request.parent, 5);
    let table: Vec<(u32, u32)> = f.ps().iter().map(|e| (e.pid, e.ppid)).collect();
    assert_eq!(table, [(INIT, 0), (5, INIT), (child, 5)]);
}

#[test]
fn domain_names_are_the_last_component_cut_to_16_bytes() {
    assert_eq!(domain_name("/bin/sh"), "sh");
    assert_eq!(domain_name("sh"), "sh");
    assert_eq!(domain_name("/bin/sh/"), "sh");
    assert_eq!(domain_name("/"), "");
    assert_eq!(
        domain_name("/bin/a-very-long-program-name"),
        "a-very-long-prog"
    );
    // 15 ASCII bytes then a two-byte character: cut before it.
    assert_eq!(domain_name("/x/abcdefghijklmnoé"), "abcdefghijklmno");
    let mut f = Fixture::new();
    f.world
        .files
        .insert("/bin/a-very-long-program-name".into(), elf(b""));
    f.spawn(INIT, &["/bin/a-very-long-program-name"]).unwrap();
    assert!(f.world.created[0]
        .bulk
        .starts_with(b"a-very-long-prog\0\x7fELF"));
}

#[test]
fn stat_of_a_non_file_is_enoexec() {
    let mut f = Fixture::new();
    let stat = Stat {
        ino: 1,
        size: 10,
        kind: KIND_FILE + 2,
        nlink: 1,
    };
    let reply = Reply::ok_with_bulk(wire::bytes(&stat), elf(b"12345"));
    f.world.script(VFS_PREAD_PATH, Ok(reply));
    assert_eq!(f.spawn(INIT, &["/bin/sh"]), Err(ENOEXEC));
    assert!(f.world.created.is_empty());
}
