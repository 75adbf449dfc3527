//! Files: open flags, reads and writes, offsets, stat, limits, start-up.

use super::*;

#[test]
fn create_write_read_and_eof() {
    let mut h = Harness::new();
    assert_eq!(h.open(APP, "/f", O_RDONLY), Err(errno::ENOENT));
    let fd = h.open(APP, "/f", O_CREAT | O_RDWR).unwrap();
    assert_eq!(fd, 0);
    assert_eq!(h.write(APP, fd, b"hello world").unwrap(), 11);
    assert_eq!(h.read(APP, fd, 10).unwrap(), b"");
    assert_eq!(h.lseek(APP, fd, 0, SEEK_SET).unwrap(), 0);
    assert_eq!(h.read(APP, fd, 5).unwrap(), b"hello");
    assert_eq!(h.read(APP, fd, 100).unwrap(), b" world");
    assert_eq!(h.read(APP, fd, 100).unwrap(), b"");
    h.close(APP, fd).unwrap();
    assert_eq!(h.get("/f").unwrap(), b"hello world");
}

#[test]
fn o_excl_and_o_creat_on_existing_files() {
    let mut h = Harness::new();
    h.put("/f", b"data");
    assert_eq!(
        h.open(APP, "/f", O_CREAT | O_EXCL | O_WRONLY),
        Err(errno::EEXIST)
    );
    // Without O_EXCL, O_CREAT opens the existing file and keeps its data.
    let fd = h.open(APP, "/f", O_CREAT | O_RDONLY).unwrap();
    assert_eq!(h.read(APP, fd, 10).unwrap(), b"data");
}

#[test]
fn o_trunc_empties_a_file_opened_for_writing() {
    let mut h = Harness::new();
    h.put("/f", b"old contents");
    // O_TRUNC without write access leaves the file alone (POSIX: unspecified).
    let fd = h.open(APP, "/f", O_RDONLY | O_TRUNC).unwrap();
    assert_eq!(h.fstat(APP, fd).unwrap().size, 12);
    let fd = h.open(APP, "/f", O_WRONLY | O_TRUNC).unwrap();
    assert_eq!(h.fstat(APP, fd).unwrap().size, 0);
    assert_eq!(h.get("/f").unwrap(), b"");
}

#[test]
fn o_append_writes_at_the_end_whatever_the_offset() {
    let mut h = Harness::new();
    h.put("/log", b"one ");
    let fd = h.open(APP, "/log", O_WRONLY | O_APPEND).unwrap();
    h.lseek(APP, fd, 0, SEEK_SET).unwrap();
    h.write(APP, fd, b"two ").unwrap();
    // Another writer extends the file; appends still land at the end.
    let other = h.open(OTHER, "/log", O_WRONLY).unwrap();
    h.pwrite(OTHER, other, b"three ", 8).unwrap();
    h.write(APP, fd, b"four").unwrap();
    assert_eq!(h.lseek(APP, fd, 0, SEEK_CUR).unwrap(), 18);
    assert_eq!(h.get("/log").unwrap(), b"one two three four");
}

#[test]
fn access_modes_are_enforced_with_ebadf() {
    let mut h = Harness::new();
    h.put("/f", b"abc");
    let ro = h.open(APP, "/f", O_RDONLY).unwrap();
    let wo = h.open(APP, "/f", O_WRONLY).unwrap();
    assert_eq!(h.write(APP, ro, b"x"), Err(errno::EBADF));
    assert_eq!(h.pwrite(APP, ro, b"x", 0), Err(errno::EBADF));
    assert_eq!(h.read(APP, wo, 1), Err(errno::EBADF));
    assert_eq!(h.pread(APP, wo, 1, 0), Err(errno::EBADF));
    let rw = h.open(APP, "/f", O_RDWR).unwrap();
    assert_eq!(h.write(APP, rw, b"X").unwrap(), 1);
    assert_eq!(h.read(APP, rw, 5).unwrap(), b"bc");
}

#[test]
fn bad_open_flags_are_einval() {
    let mut h = Harness::new();
    h.put("/f", b"");
    assert_eq!(h.open(APP, "/f", O_ACCMODE), Err(errno::EINVAL));
    assert_eq!(h.open(APP, "/f", 0x8000_0000), Err(errno::EINVAL));
}

#[test]
fn directories_open_read_only() {
    let mut h = Harness::new();
    h.mkdir("/d").unwrap();
    assert_eq!(h.open(APP, "/d", O_WRONLY), Err(errno::EISDIR));
    assert_eq!(h.open(APP, "/d", O_RDWR), Err(errno::EISDIR));
    assert_eq!(h.open(APP, "/d", O_CREAT | O_RDONLY), Err(errno::EISDIR));
    assert_eq!(
        h.open(APP, "/d", O_CREAT | O_EXCL | O_RDONLY),
        Err(errno::EEXIST)
    );
    let fd = h.open(APP, "/d", O_RDONLY).unwrap();
    assert_eq!(h.read(APP, fd, 10), Err(errno::EISDIR));
    assert_eq!(h.pread(APP, fd, 10, 0), Err(errno::EISDIR));
    assert_eq!(h.fstat(APP, fd).unwrap().kind, KIND_DIR);
    let root = h.open(APP, "/", O_RDONLY).unwrap();
    assert_eq!(h.fstat(APP, root).unwrap().ino, crate::tree::ROOT);
}

#[test]
fn path_errors() {
    let mut h = Harness::new();
    h.put("/file", b"");
    assert_eq!(h.open(APP, "", O_RDONLY), Err(errno::EINVAL));
    assert_eq!(h.open(APP, "file", O_RDONLY), Err(errno::EINVAL));
    assert_eq!(h.open(APP, "/file/x", O_RDONLY), Err(errno::ENOTDIR));
    assert_eq!(
        h.open(APP, "/file/x", O_CREAT | O_WRONLY),
        Err(errno::ENOTDIR)
    );
    assert_eq!(h.open(APP, "/file/", O_RDONLY), Err(errno::ENOTDIR));
    assert_eq!(h.open(APP, "/file/..", O_RDONLY), Err(errno::ENOTDIR));
    assert_eq!(
        h.open(APP, "/missing/x", O_CREAT | O_WRONLY),
        Err(errno::ENOENT)
    );
    let long_name = alloc::format!("/{}", "n".repeat(NAME_MAX + 1));
    assert_eq!(
        h.open(APP, &long_name, O_CREAT | O_WRONLY),
        Err(errno::ENAMETOOLONG)
    );
    let long_path = "/a".repeat(PATH_MAX / 2 + 1);
    assert_eq!(h.stat(&long_path), Err(errno::ENAMETOOLONG));
    // The path must be exactly one NUL-terminated string.
    let open = wire::bytes(&Open {
        flags: O_RDONLY,
        mode: 0,
    });
    assert_eq!(h.call(APP, VFS_OPEN, &open, b"/file"), Err(errno::EINVAL));
    assert_eq!(
        h.call(APP, VFS_OPEN, &open, b"/file\0/x\0"),
        Err(errno::EINVAL)
    );
    assert_eq!(h.call(APP, VFS_OPEN, &open, b"\xff\0"), Err(errno::EINVAL));
}

#[test]
fn paths_are_normalized() {
    let mut h = Harness::new();
    h.mkdir("/a").unwrap();
    h.put("/a/b", b"x");
    let ino = h.stat("/a/b").unwrap().ino;
    for path in ["//a//b", "/./a/./b", "/a/../a/b", "/../../a/b", "/a/b/."] {
        match h.stat(path) {
            Ok(stat) => assert_eq!(stat.ino, ino, "{path}"),
            // `/a/b/.` names a directory, and b is a file.
            Err(status) => assert_eq!((path, status), ("/a/b/.", errno::ENOTDIR)),
        }
    }
    assert_eq!(h.stat("/..").unwrap().ino, crate::tree::ROOT);
    assert_eq!(h.stat("/a/..").unwrap().ino, crate::tree::ROOT);
}

#[test]
fn close_errors_are_ebadf() {
    let mut h = Harness::new();
    h.put("/f", b"");
    assert_eq!(h.close(APP, 0), Err(errno::EBADF));
    let fd = h.open(APP, "/f", O_RDONLY).unwrap();
    assert_eq!(h.close(OTHER, fd), Err(errno::EBADF));
    h.close(APP, fd).unwrap();
    assert_eq!(h.close(APP, fd), Err(errno::EBADF));
    assert_eq!(h.close(APP, -1), Err(errno::EBADF));
    assert_eq!(h.read(APP, fd, 1), Err(errno::EBADF));
    assert_eq!(h.write(APP, 1000, b"x"), Err(errno::EBADF));
    assert_eq!(h.fstat(APP, fd), Err(errno::EBADF));
    assert_eq!(h.lseek(APP, fd, 0, SEEK_SET), Err(errno::EBADF));
    assert_eq!(h.dup(APP, fd), Err(errno::EBADF));
}

#[test]
fn io_over_io_max_is_einval() {
    let mut h = Harness::new();
    let fd = h.open(APP, "/f", O_CREAT | O_RDWR).unwrap();
    assert_eq!(h.read(APP, fd, IO_MAX as u32 + 1), Err(errno::EINVAL));
    assert_eq!(h.pread(APP, fd, IO_MAX as u32 + 1, 0), Err(errno::EINVAL));
    let big = alloc::vec![0u8; IO_MAX + 1];
    assert_eq!(h.write(APP, fd, &big), Err(errno::EINVAL));
    assert_eq!(h.write(APP, fd, &big[..IO_MAX]).unwrap(), IO_MAX as u64);
    assert_eq!(h.pread(APP, fd, IO_MAX as u32, 0).unwrap().len(), IO_MAX);
}

#[test]
fn pread_and_pwrite_keep_the_offset() {
    let mut h = Harness::new();
    let fd = h.open(APP, "/f", O_CREAT | O_RDWR).unwrap();
    h.write(APP, fd, b"0123456789").unwrap();
    h.lseek(APP, fd, 2, SEEK_SET).unwrap();
    assert_eq!(h.pread(APP, fd, 3, 5).unwrap(), b"567");
    assert_eq!(h.pwrite(APP, fd, b"AB", 8).unwrap(), 2);
    assert_eq!(h.lseek(APP, fd, 0, SEEK_CUR).unwrap(), 2);
    assert_eq!(h.pread(APP, fd, 3, 100).unwrap(), b"");
    // pwrite past the end leaves a hole of zeros.
    h.pwrite(APP, fd, b"Z", 12).unwrap();
    assert_eq!(h.get("/f").unwrap(), b"01234567AB\0\0Z");
    assert_eq!(h.pread(APP, fd, 1, u64::MAX), Err(errno::EINVAL));
}

#[test]
fn lseek_whences_and_errors() {
    let mut h = Harness::new();
    h.put("/f", b"0123456789");
    let fd = h.open(APP, "/f", O_RDWR).unwrap();
    assert_eq!(h.lseek(APP, fd, 4, SEEK_SET).unwrap(), 4);
    assert_eq!(h.lseek(APP, fd, 2, SEEK_CUR).unwrap(), 6);
    assert_eq!(h.lseek(APP, fd, -3, SEEK_CUR).unwrap(), 3);
    assert_eq!(h.read(APP, fd, 2).unwrap(), b"34");
    assert_eq!(h.lseek(APP, fd, -1, SEEK_END).unwrap(), 9);
    assert_eq!(h.lseek(APP, fd, -11, SEEK_END), Err(errno::EINVAL));
    assert_eq!(h.lseek(APP, fd, -1, SEEK_SET), Err(errno::EINVAL));
    assert_eq!(h.lseek(APP, fd, 0, 3), Err(errno::EINVAL));
    assert_eq!(
        h.lseek(APP, fd, i64::MAX, SEEK_SET).unwrap(),
        i64::MAX as u64
    );
    assert_eq!(h.lseek(APP, fd, 1, SEEK_CUR), Err(errno::EINVAL));
    // The failed seeks left the offset alone.
    assert_eq!(h.lseek(APP, fd, 0, SEEK_CUR).unwrap(), i64::MAX as u64);
    assert_eq!(h.read(APP, fd, 4).unwrap(), b"");
    assert_eq!(h.write(APP, fd, b"x"), Err(errno::ENOSPC));
    // Past the end, a write leaves a hole.
    h.lseek(APP, fd, 12, SEEK_SET).unwrap();
    h.write(APP, fd, b"!").unwrap();
    assert_eq!(h.get("/f").unwrap(), b"0123456789\0\0!");
}

#[test]
fn stat_and_fstat_describe_files() {
    let mut h = Harness::new();
    h.put("/f", b"12345");
    let stat = h.stat("/f").unwrap();
    assert_eq!((stat.size, stat.kind, stat.nlink), (5, KIND_FILE, 1));
    let fd = h.open(APP, "/f", O_RDONLY).unwrap();
    assert_eq!(h.fstat(APP, fd).unwrap(), stat);
    h.put("/g", b"");
    assert_ne!(h.stat("/g").unwrap().ino, stat.ino);
    assert_eq!(h.stat("/missing"), Err(errno::ENOENT));
    assert_eq!(h.stat("/f/x"), Err(errno::ENOTDIR));
}

#[test]
fn truncate_grows_with_zeros_and_shrinks() {
    let mut h = Harness::new();
    h.put("/f", b"hello");
    h.truncate("/f", 2).unwrap();
    assert_eq!(h.get("/f").unwrap(), b"he");
    h.truncate("/f", 4).unwrap();
    assert_eq!(h.get("/f").unwrap(), b"he\0\0");
    h.mkdir("/d").unwrap();
    assert_eq!(h.truncate("/d", 0), Err(errno::EISDIR));
    assert_eq!(h.truncate("/missing", 0), Err(errno::ENOENT));
    assert_eq!(h.truncate("/f", u64::MAX), Err(errno::EINVAL));
    assert_eq!(
        h.call(APP, VFS_TRUNCATE, &[1], &wire::join(["/f"])),
        Err(errno::EINVAL)
    );
}

#[test]
fn unlinked_files_live_while_open() {
    let mut h = Harness::new();
    h.put("/f", b"still here");
    let inodes = h.vfs.inodes();
    let fd = h.open(APP, "/f", O_RDWR).unwrap();
    h.unlink("/f").unwrap();
    assert_eq!(h.stat("/f"), Err(errno::ENOENT));
    assert_eq!(h.unlink("/f"), Err(errno::ENOENT));
    assert_eq!(h.read(APP, fd, 100).unwrap(), b"still here");
    h.write(APP, fd, b"!").unwrap();
    assert_eq!(h.fstat(APP, fd).unwrap().nlink, 0);
    // A new file of the same name is another file.
    h.put("/f", b"new");
    assert_eq!(h.pread(APP, fd, 100, 0).unwrap(), b"still here!");
    assert_eq!(h.vfs.inodes(), inodes + 1);
    h.close(APP, fd).unwrap();
    assert_eq!(h.vfs.inodes(), inodes);
    assert_eq!(h.vfs.storage().used(), 3);
}

#[test]
fn the_data_budget_gives_enospc() {
    let mut h = Harness::with_config(Config {
        data_budget: 100,
        ..Config::default()
    });
    // Two sessions take 40 bytes each, within their shares (50).
    let fd = h.open(APP, "/f", O_CREAT | O_RDWR).unwrap();
    assert_eq!(h.write(APP, fd, &[7; 40]).unwrap(), 40);
    let other = h.open(OTHER, "/o", O_CREAT | O_RDWR).unwrap();
    assert_eq!(h.write(OTHER, other, &[6; 40]).unwrap(), 40);
    // A third has its whole share left but the budget has 20 bytes: a short write,
    // then nothing.
    let third = OTHER + 1;
    let g = h.open(third, "/g", O_CREAT | O_RDWR).unwrap();
    assert_eq!(h.write(third, g, &[8; 60]).unwrap(), 20);
    assert_eq!(h.write(third, g, &[9]), Err(errno::ENOSPC));
    assert_eq!(h.pwrite(third, g, &[9], 500), Err(errno::ENOSPC));
    // Overwriting costs nothing; other files have no room either.
    assert_eq!(h.pwrite(APP, fd, &[1; 10], 0).unwrap(), 10);
    h.put("/empty", b"");
    assert_eq!(h.truncate("/empty", 1), Err(errno::ENOSPC));
    // Freeing data makes room.
    h.truncate("/f", 10).unwrap();
    h.truncate("/empty", 30).unwrap();
    assert_eq!(h.vfs.storage().used(), 100);
}

#[test]
fn a_session_may_grow_the_file_system_by_half_its_capacity() {
    let mut h = Harness::with_config(Config {
        data_budget: 1000,
        ..Config::default()
    });
    // APP spawns a helper: one session, one share (500 bytes) for both.
    h.spawn(INIT, APP, INIT, 0).unwrap();
    h.spawn(INIT, APP + 100, APP, 0).unwrap();
    let helper = APP + 100;
    let fd = h.open(APP, "/f", O_CREAT | O_RDWR).unwrap();
    assert_eq!(h.write(APP, fd, &[1; 300]).unwrap(), 300);
    let hfd = h.open(helper, "/h", O_CREAT | O_RDWR).unwrap();
    // The helper's write is cut to what is left of the session's share.
    assert_eq!(h.write(helper, hfd, &[2; 300]).unwrap(), 200);
    assert_eq!(h.write(helper, hfd, &[3]), Err(errno::ENOSPC));
    // An empty file costs no data (only an inode), but nothing can be written to it.
    let new = h.open(helper, "/new", O_CREAT | O_RDWR).unwrap();
    assert_eq!(h.write(helper, new, &[3]), Err(errno::ENOSPC));
    h.close(helper, new).unwrap();
    assert_eq!(h.vfs.session_space_used(helper).bytes, 500);
    // Another session still has its whole share, and the session can still open
    // what exists and overwrite it.
    let other = h.open(OTHER, "/o", O_CREAT | O_RDWR).unwrap();
    assert_eq!(h.write(OTHER, other, &[4; 400]).unwrap(), 400);
    assert!(h.open(APP, "/f", O_CREAT | O_RDWR).is_ok());
    assert_eq!(h.pwrite(APP, fd, &[5; 100], 0).unwrap(), 100);
    // Freeing its own data gives the session room again.
    h.call(APP, VFS_UNLINK, &[], &wire::join(["/h"])).unwrap();
    h.close(helper, hfd).unwrap();
    assert_eq!(h.vfs.session_space_used(APP).bytes, 300);
    assert_eq!(h.write(APP, fd, &[6; 300]).unwrap(), 200);
    // When the session's last process ends, its files stay, charged to nobody.
    h.exit(INIT, helper).unwrap();
    assert_eq!(h.vfs.session_space_used(APP).bytes, 500);
    h.exit(INIT, APP).unwrap();
    assert_eq!(h.vfs.session_space_used(APP).bytes, 0);
    assert_eq!(h.vfs.storage().used(), 900);
}

#[test]
fn a_session_may_make_half_the_inodes() {
    let mut h = Harness::with_config(Config {
        max_inodes: 20,
        ..Config::default()
    });
    let before = h.vfs.inodes();
    // Empty files cost no data, but each takes an inode: a session stops at half the
    // inodes (the root directory is one of them), the others still get theirs.
    let mut made = 0;
    let refused = loop {
        let name = format!("/e{made}");
        match h.open(APP, &name, O_CREAT | O_WRONLY) {
            Ok(fd) => {
                h.close(APP, fd).unwrap();
                made += 1;
            }
            Err(errno) => break errno,
        }
    };
    assert_eq!((refused, made), (errno::ENOSPC, 10));
    assert_eq!(h.vfs.inodes(), before + 10);
    assert_eq!(
        h.call(APP, VFS_MKDIR, &[], &wire::join(["/d"])).map(drop),
        Err(errno::ENOSPC)
    );
    // Opening what exists is no growth; another session can still make files.
    assert!(h.open(APP, "/e0", O_CREAT | O_WRONLY).is_ok());
    assert!(h.open(OTHER, "/o", O_CREAT | O_WRONLY).is_ok());
    // Removing its files gives the session its inodes back.
    h.call(APP, VFS_UNLINK, &[], &wire::join(["/e1"])).unwrap();
    assert!(h.open(APP, "/e10", O_CREAT | O_WRONLY).is_ok());
}

#[test]
fn the_inode_limit_gives_enospc() {
    let mut h = Harness::with_config(Config {
        max_inodes: 3,
        ..Config::default()
    });
    h.mkdir("/d").unwrap();
    h.put("/d/f", b"");
    assert_eq!(h.mkdir("/e"), Err(errno::ENOSPC));
    assert_eq!(h.open(APP, "/g", O_CREAT | O_WRONLY), Err(errno::ENOSPC));
    h.unlink("/d/f").unwrap();
    h.mkdir("/e").unwrap();
}

#[test]
fn emfile_beyond_open_max_per_process() {
    let mut h = Harness::new();
    h.put("/f", b"");
    for fd in 0..OPEN_MAX {
        assert_eq!(h.open(APP, "/f", O_RDONLY).unwrap(), fd as i32);
    }
    assert_eq!(h.open(APP, "/f", O_RDONLY), Err(errno::EMFILE));
    // EMFILE comes before looking at the path, and creates nothing.
    assert_eq!(h.open(APP, "/new", O_CREAT | O_RDONLY), Err(errno::EMFILE));
    assert_eq!(h.stat("/new"), Err(errno::ENOENT));
    assert_eq!(h.dup(APP, 0), Err(errno::EMFILE));
    assert_eq!(h.pipe(APP), Err(errno::EMFILE));
    // Other processes are not affected; a closed slot is reused.
    assert!(h.open(OTHER, "/f", O_RDONLY).is_ok());
    h.close(APP, 7).unwrap();
    assert_eq!(h.open(APP, "/f", O_RDONLY).unwrap(), 7);
}

#[test]
fn enfile_beyond_nfile_in_the_system() {
    let mut h = Harness::new();
    h.put("/f", b"");
    // 31 descriptors per process, so that the last process has room for a dup.
    let mut pid = 100;
    for i in 0..NFILE {
        if i % (OPEN_MAX - 1) == 0 {
            pid += 1;
        }
        h.open(pid, "/f", O_RDONLY).unwrap();
    }
    assert_eq!(h.vfs.open_files(), NFILE);
    assert_eq!(h.open(APP, "/f", O_RDONLY), Err(errno::ENFILE));
    assert_eq!(h.pipe(APP), Err(errno::ENFILE));
    // dup shares an open file: no new entry needed.
    let copy = h.dup(pid, 0).unwrap();
    h.close(pid, 0).unwrap();
    assert_eq!(h.open(APP, "/f", O_RDONLY), Err(errno::ENFILE));
    h.close(pid, copy).unwrap();
    assert_eq!(h.open(APP, "/f", O_RDONLY).unwrap(), 0);
}

#[test]
fn dup_takes_the_lowest_free_fd_and_shares_the_offset() {
    let mut h = Harness::new();
    h.put("/f", b"abcdef");
    let a = h.open(APP, "/f", O_RDONLY).unwrap();
    let b = h.open(APP, "/f", O_RDONLY).unwrap();
    h.close(APP, a).unwrap();
    let c = h.dup(APP, b).unwrap();
    assert_eq!(c, a);
    assert_eq!(h.read(APP, b, 2).unwrap(), b"ab");
    assert_eq!(h.read(APP, c, 2).unwrap(), b"cd");
    assert_eq!(h.vfs.open_files(), 1);
    h.close(APP, b).unwrap();
    assert_eq!(h.read(APP, c, 9).unwrap(), b"ef");
    h.close(APP, c).unwrap();
    assert_eq!(h.vfs.open_files(), 0);
}

#[test]
fn malformed_requests() {
    let mut h = Harness::new();
    assert_eq!(
        h.call(APP, VFS_OPEN, &[0; 3], &wire::join(["/f"])),
        Err(errno::EINVAL)
    );
    assert_eq!(h.call(APP, VFS_CLOSE, &[], &[]), Err(errno::EINVAL));
    assert_eq!(h.call(APP, VFS_READ, &[0; 8], &[]), Err(errno::EINVAL));
    assert_eq!(h.call(APP, VFS_LSEEK, &[0; 8], &[]), Err(errno::EINVAL));
    assert_eq!(
        h.call(APP, VFS_PROC_SPAWN, &[0; 4], &[]),
        Err(errno::EINVAL)
    );
    assert_eq!(h.call(APP, VFS_STAT, &[], &[]), Err(errno::EINVAL));
    assert_eq!(h.call(APP, DS_PUBLISH, &[], &[]), Err(errno::ENOSYS));
    assert_eq!(h.call(APP, 0xffff, &[], &[]), Err(errno::ENOSYS));
}

#[test]
fn the_open_file_count_is_published_when_it_changes_if_asked() {
    let mut h = Harness::with_config(Config {
        publish_open_files: true,
        ..Config::default()
    });
    h.put("/f", b"");
    let fd = h.open(APP, "/f", O_RDONLY).unwrap();
    h.dup(APP, fd).unwrap();
    h.stat("/f").unwrap();
    h.pipe(APP).unwrap();
    h.close(APP, fd).unwrap();
    h.exit(INIT, APP).unwrap();
    // put: 1 then 0; open: 1; dup, stat, close of a shared file: no change; pipe: 3.
    assert_eq!(h.kernel.published(), ["1", "0", "1", "3", "0"]);
    let call = h.kernel.calls.last().unwrap();
    assert_eq!(call.bulk, b"vfs.open-files\x000\0");

    // By default VFS keeps it to itself (each publication would close its window).
    let mut quiet = Harness::new();
    quiet.put("/f", b"");
    let fd = quiet.open(APP, "/f", O_RDONLY).unwrap();
    quiet.close(APP, fd).unwrap();
    assert!(quiet.kernel.calls.is_empty());
}

#[test]
fn decimal_without_fmt() {
    use crate::server::decimal;
    assert_eq!(decimal(0), "0");
    assert_eq!(decimal(7), "7");
    assert_eq!(decimal(256), "256");
    assert_eq!(decimal(u64::MAX), "18446744073709551615");
}

fn sample_archive() -> Vec<u8> {
    archive(&[
        (rootfs::ENTRY_DIR, "/", b""),
        (rootfs::ENTRY_DIR, "/bin", b""),
        (rootfs::ENTRY_FILE, "/bin/init", b"\x7fELF"),
        (rootfs::ENTRY_DIR, "/etc", b""),
        (rootfs::ENTRY_FILE, "/etc/motd", b"welcome\n"),
    ])
}

#[test]
fn start_loads_the_root_file_system_from_the_kernel() {
    let mut h = Harness::new();
    h.kernel.root_fs = Ok(Reply::ok_with_bulk(Vec::new(), sample_archive()));
    h.vfs.start(&mut h.kernel);
    // First it looks for a block driver (none answers with a geometry here).
    assert_eq!(h.kernel.calls[0].to, Endpoint::Blk);
    assert_eq!(h.kernel.calls[0].opcode, BLK_INFO);
    assert_eq!(h.kernel.calls[1].to, Endpoint::Kernel);
    assert_eq!(h.kernel.calls[1].opcode, SYS_ROOT_FS);
    assert_eq!(h.readdir("/").unwrap(), ["bin", "etc"]);
    assert_eq!(h.get("/bin/init").unwrap(), b"\x7fELF");
    assert_eq!(h.get("/etc/motd").unwrap(), b"welcome\n");
    assert_eq!(h.stat("/").unwrap().nlink, 4);
}

#[test]
fn start_without_a_root_file_system_serves_an_empty_root() {
    for answer in [Err(errno::EDEADSRCDST), Ok(Reply::err(errno::ENOENT))] {
        let mut h = Harness::new();
        h.kernel.root_fs = answer;
        h.vfs.start(&mut h.kernel);
        assert_eq!(h.readdir("/").unwrap(), Vec::<String>::new());
        h.put("/works", b"yes");
    }
}

#[test]
fn a_driver_that_fails_at_start_is_not_taken_for_no_disk() {
    for answer in [
        Err(errno::ERESTART),
        Ok(Reply::err(errno::EIO)),
        Ok(Reply::ok(Vec::new())),
    ] {
        let mut h = Harness::new();
        h.kernel.root_fs = Ok(Reply::ok_with_bulk(Vec::new(), sample_archive()));
        h.kernel.blk = answer.clone();
        h.vfs.start(&mut h.kernel);
        assert!(
            h.kernel.calls.iter().all(|call| call.opcode != SYS_ROOT_FS),
            "{answer:?}: fell back to the archive in memory"
        );
        assert_eq!(h.stat("/etc/motd"), Err(errno::EIO), "{answer:?}");
        assert_eq!(h.readdir("/"), Err(errno::EIO), "{answer:?}");
    }
}

#[test]
fn malformed_archives_give_an_empty_root() {
    let mut truncated = sample_archive();
    truncated.pop();
    let orphan = archive(&[(rootfs::ENTRY_FILE, "/no/parent", b"x")]);
    let relative = archive(&[(rootfs::ENTRY_FILE, "rel", b"x")]);
    let twice = archive(&[
        (rootfs::ENTRY_FILE, "/a", b""),
        (rootfs::ENTRY_FILE, "/a", b""),
    ]);
    let under_file = archive(&[
        (rootfs::ENTRY_FILE, "/a", b""),
        (rootfs::ENTRY_DIR, "/a/b", b""),
    ]);
    for bad in [
        truncated,
        orphan,
        relative,
        twice,
        under_file,
        alloc::vec![9, 0, 0],
    ] {
        let mut h = Harness::new();
        h.kernel.root_fs = Ok(Reply::ok_with_bulk(Vec::new(), bad));
        h.vfs.start(&mut h.kernel);
        assert_eq!(h.readdir("/").unwrap(), Vec::<String>::new());
        assert_eq!(h.vfs.inodes(), 1);
        assert_eq!(h.vfs.storage().used(), 0);
    }
    // An archive larger than the budget does not fit either.
    let mut vfs = Vfs::with_config(Config {
        data_budget: 4,
        ..Config::default()
    });
    vfs.start(&mut FakeKernel {
        root_fs: Ok(Reply::ok_with_bulk(Vec::new(), sample_archive())),
        ..FakeKernel::new()
    });
    assert_eq!(vfs.inodes(), 1);
}

#[test]
fn with_root_builds_a_tree_for_tests() {
    let mut h = Harness::with_vfs(Vfs::with_root(&sample_archive()));
    assert_eq!(h.readdir("/bin").unwrap(), ["init"]);
    assert_eq!(h.vfs.open_files(), 0);
    let h2 = Harness::with_vfs(Vfs::with_root(b"garbage"));
    assert_eq!(h2.vfs.inodes(), 1);
}

/// `VFS_PREAD_PATH` as PM sends it: `Io` with descriptor 0, the path in bulk.
fn pread_path(h: &mut Harness, path: &str, len: u32, offset: u64) -> Result<Reply, Errno> {
    let io = Io { fd: 0, len, offset };
    h.call(APP, VFS_PREAD_PATH, &wire::bytes(&io), &wire::join([path]))
}

#[test]
fn pread_path_answers_the_bytes_and_the_status_of_the_file_a_path_names() {
    let mut h = Harness::new();
    h.mkdir("/bin").unwrap();
    h.put("/bin/prog", b"\x7fELF program");
    let reply = pread_path(&mut h, "/bin/prog", 100, 0).unwrap();
    let stat: Stat = wire::record(&reply.payload).unwrap();
    assert_eq!(stat, h.stat("/bin/prog").unwrap());
    assert_eq!((stat.kind, stat.size), (KIND_FILE, 12));
    assert_eq!(reply.bulk, b"\x7fELF program");
    let reply = pread_path(&mut h, "/bin/prog", 3, 5).unwrap();
    assert_eq!(reply.bulk, b"pro");
    assert!(pread_path(&mut h, "/bin/prog", 8, 40)
        .unwrap()
        .bulk
        .is_empty());
    assert_eq!(pread_path(&mut h, "/bin", 8, 0), Err(errno::EISDIR));
    assert_eq!(pread_path(&mut h, "/bin/none", 8, 0), Err(errno::ENOENT));
    assert_eq!(
        pread_path(&mut h, "/bin/prog", IO_MAX as u32 + 1, 0),
        Err(errno::EINVAL)
    );
    let io = Io {
        fd: 3,
        len: 8,
        offset: 0,
    };
    let with_fd = h.call(
        APP,
        VFS_PREAD_PATH,
        &wire::bytes(&io),
        &wire::join(["/bin/prog"]),
    );
    assert_eq!(with_fd, Err(errno::EINVAL), "no descriptor is involved");
}

/// The SEEP classification of `VFS_PREAD_PATH` (a Query: PM's recovery window stays
/// open across it) holds only if it changes nothing in VFS: no descriptor, no open
/// file, no offset, no open count on the inode, nothing published. The whole server
/// (tree, storage, descriptors, pipes) is the same before and after, answered or not.
#[test]
fn pread_path_changes_no_state_of_the_file_server() {
    let mut h = Harness::with_config(Config {
        publish_open_files: true,
        ..Config::default()
    });
    h.mkdir("/bin").unwrap();
    h.put("/bin/prog", &[7; 5000]);
    let fd = h.open(APP, "/bin/prog", O_RDONLY).unwrap();
    h.read(APP, fd, 10).unwrap();
    h.unlink("/bin/prog").unwrap();
    h.put("/bin/prog", b"new");
    let before = format!("{:?}", h.vfs);
    let calls = h.kernel.calls.len();
    for (path, len, offset) in [
        ("/bin/prog", 3, 0),
        ("/bin/prog", 100, 1),
        ("/bin", 1, 0),
        ("/nowhere", 1, 0),
    ] {
        let _ = pread_path(&mut h, path, len, offset);
        assert_eq!(format!("{:?}", h.vfs), before, "{path} {len} {offset}");
    }
    assert_eq!(
        h.kernel.calls.len(),
        calls,
        "it called nobody (no DS publish)"
    );
    assert_eq!(
        h.read(APP, fd, 10).unwrap(),
        [7; 10],
        "the open file is untouched"
    );
}

/// `VFS_PROC_EXIT` is repeatable (`opcode::is_repeatable`): PM's exit handling may be
/// rolled back and replayed, and the second notice must find nothing more to do. The
/// whole server is the same after it as after the first.
#[test]
fn a_second_exit_notice_changes_nothing() {
    let mut h = Harness::new();
    h.spawn(INIT, APP, INIT, 0).unwrap();
    h.put("/f", b"data");
    h.open(APP, "/f", O_RDONLY).unwrap();
    let (_read, _write) = h.pipe(APP).unwrap();
    h.exit(INIT, APP).unwrap();
    let after_first = format!("{:?}", h.vfs);
    h.exit(INIT, APP).unwrap();
    assert_eq!(format!("{:?}", h.vfs), after_first);
}
