//! Directories: mkdir, rmdir, unlink, readdir, rename, trailing slashes.

use super::*;

#[test]
fn mkdir_and_its_errors() {
    let mut h = Harness::new();
    h.mkdir("/a").unwrap();
    h.mkdir("/a/b/").unwrap();
    assert_eq!(h.mkdir("/a"), Err(errno::EEXIST));
    assert_eq!(h.mkdir("/"), Err(errno::EEXIST));
    assert_eq!(h.mkdir("/a/.."), Err(errno::EEXIST));
    assert_eq!(h.mkdir("/a/."), Err(errno::EEXIST));
    assert_eq!(h.mkdir("/x/y"), Err(errno::ENOENT));
    h.put("/f", b"");
    assert_eq!(h.mkdir("/f"), Err(errno::EEXIST));
    assert_eq!(h.mkdir("/f/y"), Err(errno::ENOTDIR));
    assert_eq!(h.mkdir("rel"), Err(errno::EINVAL));
    let stat = h.stat("/a").unwrap();
    assert_eq!((stat.kind, stat.nlink, stat.size), (KIND_DIR, 3, 1));
    assert_eq!(h.stat("/").unwrap().nlink, 3);
}

#[test]
fn rmdir_and_its_errors() {
    let mut h = Harness::new();
    h.mkdir("/a").unwrap();
    h.mkdir("/a/b").unwrap();
    h.put("/f", b"");
    assert_eq!(h.rmdir("/a"), Err(errno::ENOTEMPTY));
    assert_eq!(h.rmdir("/f"), Err(errno::ENOTDIR));
    assert_eq!(h.rmdir("/"), Err(errno::EINVAL));
    assert_eq!(h.rmdir("/a/b/."), Err(errno::EINVAL));
    assert_eq!(h.rmdir("/a/b/.."), Err(errno::EINVAL));
    assert_eq!(h.rmdir("/nope"), Err(errno::ENOENT));
    h.rmdir("/a/b/").unwrap();
    assert_eq!(h.stat("/a").unwrap().nlink, 2);
    h.rmdir("/a").unwrap();
    assert_eq!(h.stat("/a"), Err(errno::ENOENT));
    assert_eq!(h.stat("/").unwrap().nlink, 2);
    assert_eq!(h.vfs.inodes(), 2);
}

#[test]
fn unlink_and_its_errors() {
    let mut h = Harness::new();
    h.mkdir("/d").unwrap();
    h.put("/d/f", b"x");
    assert_eq!(h.unlink("/d"), Err(errno::EISDIR));
    assert_eq!(h.unlink("/"), Err(errno::EISDIR));
    assert_eq!(h.unlink("/d/."), Err(errno::EISDIR));
    assert_eq!(h.unlink("/d/f/"), Err(errno::ENOTDIR));
    assert_eq!(h.unlink("/d/g"), Err(errno::ENOENT));
    assert_eq!(h.unlink("/d/f/g"), Err(errno::ENOTDIR));
    h.unlink("/d/f").unwrap();
    assert_eq!(h.readdir("/d").unwrap(), Vec::<String>::new());
    assert_eq!(h.vfs.storage().used(), 0);
}

#[test]
fn readdir_lists_sorted_names() {
    let mut h = Harness::new();
    for name in ["zeta", "alpha", "Mid", "beta"] {
        h.put(&alloc::format!("/{name}"), b"");
    }
    h.mkdir("/dir").unwrap();
    assert_eq!(
        h.readdir("/").unwrap(),
        ["Mid", "alpha", "beta", "dir", "zeta"]
    );
    assert_eq!(h.readdir("/dir/").unwrap(), Vec::<String>::new());
    assert_eq!(h.readdir("/alpha"), Err(errno::ENOTDIR));
    assert_eq!(h.readdir("/nope"), Err(errno::ENOENT));
    assert_eq!(h.stat("/").unwrap().size, 5);
}

#[test]
fn rename_moves_files_and_replaces_files() {
    let mut h = Harness::new();
    h.put("/a", b"A");
    h.put("/b", b"BB");
    let ino = h.stat("/a").unwrap().ino;
    h.rename("/a", "/c").unwrap();
    assert_eq!(h.stat("/a"), Err(errno::ENOENT));
    assert_eq!(h.stat("/c").unwrap().ino, ino);
    // Replacing an existing file frees its data unless it is open.
    let fd = h.open(APP, "/b", O_RDONLY).unwrap();
    h.rename("/c", "/b").unwrap();
    assert_eq!(h.get("/b").unwrap(), b"A");
    assert_eq!(h.read(APP, fd, 9).unwrap(), b"BB");
    h.close(APP, fd).unwrap();
    assert_eq!(h.vfs.storage().used(), 1);
    // Renaming onto itself changes nothing.
    h.rename("/b", "//b").unwrap();
    assert_eq!(h.get("/b").unwrap(), b"A");
}

#[test]
fn rename_moves_directories_with_their_contents() {
    let mut h = Harness::new();
    h.mkdir("/src").unwrap();
    h.mkdir("/src/sub").unwrap();
    h.put("/src/sub/f", b"deep");
    h.mkdir("/dst").unwrap();
    h.rename("/src", "/dst/moved").unwrap();
    assert_eq!(h.get("/dst/moved/sub/f").unwrap(), b"deep");
    assert_eq!(
        h.stat("/dst/moved/sub/../..").unwrap().ino,
        h.stat("/dst").unwrap().ino
    );
    assert_eq!(h.stat("/").unwrap().nlink, 3);
    assert_eq!(h.stat("/dst").unwrap().nlink, 3);
    // Onto an empty directory: replaced.
    h.mkdir("/empty").unwrap();
    h.rename("/dst/moved", "/empty").unwrap();
    assert_eq!(h.readdir("/empty").unwrap(), ["sub"]);
    assert_eq!(h.stat("/dst").unwrap().nlink, 2);
}

#[test]
fn rename_errors() {
    let mut h = Harness::new();
    h.mkdir("/d").unwrap();
    h.mkdir("/d/sub").unwrap();
    h.mkdir("/full").unwrap();
    h.put("/full/x", b"");
    h.put("/f", b"");
    assert_eq!(h.rename("/d", "/d/sub/inside"), Err(errno::EINVAL));
    assert_eq!(h.rename("/d", "/d/inside"), Err(errno::EINVAL));
    assert_eq!(h.rename("/nope", "/x"), Err(errno::ENOENT));
    assert_eq!(h.rename("/f", "/nope/x"), Err(errno::ENOENT));
    assert_eq!(h.rename("/f", "/f/x"), Err(errno::ENOTDIR));
    assert_eq!(h.rename("/f", "/d"), Err(errno::EISDIR));
    assert_eq!(h.rename("/d", "/f"), Err(errno::ENOTDIR));
    assert_eq!(h.rename("/d", "/full"), Err(errno::ENOTEMPTY));
    assert_eq!(h.rename("/", "/x"), Err(errno::EINVAL));
    assert_eq!(h.rename("/d", "/"), Err(errno::EINVAL));
    assert_eq!(h.rename("/d/sub/..", "/x"), Err(errno::EINVAL));
    assert_eq!(h.rename("/f/", "/g"), Err(errno::ENOTDIR));
    assert_eq!(h.rename("/f", "/g/"), Err(errno::ENOTDIR));
    assert_eq!(
        h.call(APP, VFS_RENAME, &[], &wire::join(["/f"])),
        Err(errno::EINVAL)
    );
    assert_eq!(
        h.call(APP, VFS_RENAME, &[], &wire::join(["/f", "/g", "/h"])),
        Err(errno::EINVAL)
    );
    // Nothing moved.
    assert_eq!(h.readdir("/").unwrap(), ["d", "f", "full"]);
    assert_eq!(h.readdir("/d").unwrap(), ["sub"]);
}

#[test]
fn trailing_slashes_name_directories() {
    let mut h = Harness::new();
    h.put("/f", b"");
    assert_eq!(h.open(APP, "/new/", O_CREAT | O_WRONLY), Err(errno::EISDIR));
    assert_eq!(h.open(APP, "/f/", O_CREAT | O_RDONLY), Err(errno::ENOTDIR));
    assert_eq!(h.stat("/f/"), Err(errno::ENOTDIR));
    h.mkdir("/d/").unwrap();
    assert_eq!(h.stat("/d/").unwrap().kind, KIND_DIR);
    assert!(h.open(APP, "/d/", O_RDONLY).is_ok());
}

#[test]
fn removed_directories_live_while_open() {
    let mut h = Harness::new();
    h.mkdir("/d").unwrap();
    let fd = h.open(APP, "/d", O_RDONLY).unwrap();
    h.rmdir("/d").unwrap();
    let stat = h.fstat(APP, fd).unwrap();
    assert_eq!((stat.kind, stat.nlink), (KIND_DIR, 0));
    assert_eq!(h.vfs.inodes(), 2);
    h.close(APP, fd).unwrap();
    assert_eq!(h.vfs.inodes(), 1);
}
