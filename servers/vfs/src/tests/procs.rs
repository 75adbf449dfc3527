//! Processes: descriptor tables on first use, spawn with and without inheritance,
//! exit, and the checks on spawn messages.

use super::*;
use ankh_proto::pm::SPAWN_INHERIT_FDS;

#[test]
fn a_table_is_made_on_first_use() {
    let mut h = Harness::new();
    h.put("/f", b"");
    assert!(!h.vfs.fds.has_table(APP));
    assert_eq!(h.close(APP, 0), Err(errno::EBADF));
    assert_eq!(h.open(APP, "/f", O_RDONLY).unwrap(), 0);
    assert!(h.vfs.fds.has_table(APP));
}

#[test]
fn spawn_with_inherit_shares_open_files_and_offsets() {
    let mut h = Harness::new();
    h.put("/f", b"0123456789");
    let fd = h.open(INIT, "/f", O_RDONLY).unwrap();
    let other = h.open(INIT, "/f", O_RDONLY).unwrap();
    h.close(INIT, fd).unwrap();
    h.spawn(INIT, APP, INIT, SPAWN_INHERIT_FDS).unwrap();
    // Same slots, same open file (no new entry), same offset.
    assert_eq!(h.vfs.open_files(), 1);
    assert_eq!(h.read(APP, other, 4).unwrap(), b"0123");
    assert_eq!(h.read(INIT, other, 4).unwrap(), b"4567");
    assert_eq!(h.close(APP, fd), Err(errno::EBADF));
    // Closing in one process leaves the other's descriptor working.
    h.close(INIT, other).unwrap();
    assert_eq!(h.read(APP, other, 4).unwrap(), b"89");
    // A new descriptor in the child is its own.
    assert_eq!(h.open(APP, "/f", O_RDONLY).unwrap(), 0);
    assert_eq!(h.close(INIT, 0), Err(errno::EBADF));
}

#[test]
fn spawn_without_inherit_gives_an_empty_table() {
    let mut h = Harness::new();
    h.put("/f", b"x");
    let fd = h.open(INIT, "/f", O_RDONLY).unwrap();
    h.spawn(INIT, APP, INIT, 0).unwrap();
    assert!(h.vfs.fds.has_table(APP));
    assert_eq!(h.read(APP, fd, 1), Err(errno::EBADF));
    // A parent without a table passes nothing on.
    h.spawn(INIT, OTHER, 99, SPAWN_INHERIT_FDS).unwrap();
    assert_eq!(h.read(OTHER, fd, 1), Err(errno::EBADF));
}

#[test]
fn spawn_checks() {
    let mut h = Harness::new();
    h.put("/f", b"");
    h.open(INIT, "/f", O_RDONLY).unwrap();
    h.open(APP, "/f", O_RDONLY).unwrap();
    assert_eq!(h.spawn(INIT, OTHER, INIT, 2), Err(errno::EINVAL));
    assert_eq!(h.spawn(INIT, OTHER, OTHER, 0), Err(errno::EINVAL));
    // A process cannot make itself the child of another to copy its descriptors.
    assert_eq!(
        h.spawn(OTHER, OTHER, INIT, SPAWN_INHERIT_FDS),
        Err(errno::EPERM)
    );
    assert!(!h.vfs.fds.has_table(OTHER));
    // A table with descriptors is never replaced.
    assert_eq!(
        h.spawn(INIT, APP, INIT, SPAWN_INHERIT_FDS),
        Err(errno::EEXIST)
    );
    assert_eq!(h.vfs.open_files(), 2);
    // An empty one (made by a stray early request) is.
    assert_eq!(h.close(OTHER, 0), Err(errno::EBADF));
    h.spawn(INIT, OTHER, INIT, SPAWN_INHERIT_FDS).unwrap();
    assert_eq!(h.fstat(OTHER, 0).unwrap().kind, KIND_FILE);
}

#[test]
fn exit_closes_every_descriptor() {
    let mut h = Harness::new();
    h.put("/f", b"data");
    h.open(APP, "/f", O_RDONLY).unwrap();
    let fd = h.open(APP, "/f", O_RDWR).unwrap();
    h.dup(APP, fd).unwrap();
    h.pipe(APP).unwrap();
    h.unlink("/f").unwrap();
    assert_eq!(h.vfs.open_files(), 4);
    assert_eq!(h.vfs.pipes(), 1);
    h.exit(INIT, APP).unwrap();
    assert_eq!(h.vfs.open_files(), 0);
    assert_eq!(h.vfs.pipes(), 0);
    // The unlinked file went with its last descriptor.
    assert_eq!(h.vfs.inodes(), 1);
    assert_eq!(h.vfs.storage().used(), 0);
    assert!(!h.vfs.fds.has_table(APP));
    // Exiting again, or a process VFS never saw, is fine.
    h.exit(INIT, APP).unwrap();
    h.exit(INIT, 4242).unwrap();
    assert_eq!(h.vfs.open_files(), 0);
}

#[test]
fn exit_of_a_child_keeps_shared_files_of_the_parent() {
    let mut h = Harness::new();
    h.put("/f", b"abcdef");
    let fd = h.open(INIT, "/f", O_RDONLY).unwrap();
    h.spawn(INIT, APP, INIT, SPAWN_INHERIT_FDS).unwrap();
    assert_eq!(h.read(APP, fd, 2).unwrap(), b"ab");
    h.exit(INIT, APP).unwrap();
    assert_eq!(h.vfs.open_files(), 1);
    assert_eq!(h.read(INIT, fd, 2).unwrap(), b"cd");
}

#[test]
fn a_reused_pid_starts_afresh_after_exit() {
    let mut h = Harness::new();
    h.put("/f", b"");
    h.open(APP, "/f", O_RDONLY).unwrap();
    h.exit(INIT, APP).unwrap();
    h.spawn(INIT, APP, INIT, 0).unwrap();
    assert_eq!(h.fstat(APP, 0), Err(errno::EBADF));
}
