//! Files, directories, descriptors and paths (VFS).

use alloc::string::String;
use alloc::vec;

use ankh_ulib::errno::{EBADF, EEXIST, EINVAL, EISDIR, ENAMETOOLONG, ENOENT, ENOTDIR, ENOTEMPTY};
use ankh_ulib::vfs::{
    KIND_DIR, KIND_FILE, O_APPEND, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, SEEK_CUR,
    SEEK_END, SEEK_SET,
};
use ankh_ulib::{Channel, Fd, Os};

use super::BASE;
use crate::check::Checker;

/// `BASE` + `/` + `name`.
pub(super) fn path(name: &str) -> String {
    let mut path = String::from(BASE);
    path.push('/');
    path.push_str(name);
    path
}

/// Runs the section.
pub(super) fn run<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    check.ok("mkdir base", os.mkdir(BASE));
    check.err("mkdir existing", os.mkdir(BASE), EEXIST);
    let root = check.ok("stat root", os.stat("/"));
    check.check(
        "root is a directory",
        root.is_some_and(|s| s.kind == KIND_DIR),
    );
    read_write(os, check);
    open_errors(os, check);
    flags(os, check);
    directories(os, check);
    check.ok("rmdir base", os.rmdir(BASE));
}

/// Writes, reads, seeks, stats one file.
fn read_write<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let a = path("a");
    let Some(fd) = check.ok("create file", os.open(&a, O_CREAT | O_RDWR)) else {
        return;
    };
    check.ok_eq("write", os.write(fd, b"hello world"), 11);
    check.ok_eq("lseek set", os.lseek(fd, 0, SEEK_SET), 0);
    let mut buf = [0u8; 16];
    check.ok_eq("read head", os.read(fd, &mut buf[..5]), 5);
    check.check("read head bytes", &buf[..5] == b"hello");
    check.ok_eq("read rest", os.read(fd, &mut buf), 6);
    check.check("read rest bytes", &buf[..6] == b" world");
    check.ok_eq("read at eof", os.read(fd, &mut buf), 0);
    check.ok_eq("pread", os.pread(fd, &mut buf[..5], 6), 5);
    check.check("pread bytes", &buf[..5] == b"world");
    check.ok_eq("pwrite", os.pwrite(fd, b"HELLO", 0), 5);
    check.ok_eq("pread after pwrite", os.pread(fd, &mut buf[..11], 0), 11);
    check.check("pwrite bytes", &buf[..11] == b"HELLO world");
    check.ok_eq("pread keeps offset", os.lseek(fd, 0, SEEK_CUR), 11);
    let fstat = check.ok("fstat", os.fstat(fd));
    check.check(
        "fstat size and kind",
        fstat.is_some_and(|s| s.size == 11 && s.kind == KIND_FILE),
    );
    let stat = check.ok("stat", os.stat(&a));
    check.check(
        "stat names the same inode",
        matches!((stat, fstat), (Some(s), Some(f)) if s.ino == f.ino && s.nlink == 1),
    );
    check.ok_eq("lseek end", os.lseek(fd, -5, SEEK_END), 6);
    check.err("lseek before start", os.lseek(fd, -100, SEEK_CUR), EINVAL);
    check.err("lseek bad whence", os.lseek(fd, 0, 7), EINVAL);
    check.ok_eq("lseek past end", os.lseek(fd, 100, SEEK_SET), 100);
    check.ok_eq("write past end", os.write(fd, b"!"), 1);
    let size = os.fstat(fd).map(|s| s.size);
    check.ok_eq("hole extends the file", size, 101);
    check.ok_eq("pread hole", os.pread(fd, &mut buf[..4], 50), 4);
    check.check("hole reads zeros", buf[..4] == [0; 4]);
    large(os, check, fd);
    check.ok("close", os.close(fd));
    check.err("close twice", os.close(fd), EBADF);
    check.err("read closed", os.read(fd, &mut buf), EBADF);
    check.err("fstat closed", os.fstat(fd), EBADF);
    check.err("fstat negative", os.fstat(-1), EBADF);
    check.err("write huge fd", os.write(1_000_000, b"x"), EBADF);
}

/// A 64 KiB write and read-back through one descriptor.
fn large<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>, fd: Fd) {
    let data: alloc::vec::Vec<u8> = (0..65_536u32).map(|i| (i % 251).to_le_bytes()[0]).collect();
    check.ok_eq("large pwrite", os.pwrite(fd, &data, 4096), data.len());
    let mut back = vec![0u8; data.len()];
    check.ok_eq("large pread", os.pread(fd, &mut back, 4096), data.len());
    check.check("large data intact", back == data);
}

/// Opens that must fail, and why.
fn open_errors<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let a = path("a");
    check.err(
        "open excl existing",
        os.open(&a, O_CREAT | O_EXCL | O_RDWR),
        EEXIST,
    );
    check.err("open missing", os.open(&path("missing"), O_RDONLY), ENOENT);
    check.err(
        "create in missing dir",
        os.open(&path("missing/x"), O_CREAT | O_RDWR),
        ENOENT,
    );
    check.err(
        "file as directory",
        os.open(&path("a/x"), O_RDONLY),
        ENOTDIR,
    );
    check.err("open dir for writing", os.open(BASE, O_WRONLY), EISDIR);
    check.err("relative path", os.open("suite/a", O_RDONLY), EINVAL);
    check.err("empty path", os.open("", O_RDONLY), EINVAL);
    let long = "/x".repeat(200);
    check.err("path too long", os.open(&long, O_RDONLY), ENAMETOOLONG);
    let mut long_name = String::from("/");
    long_name.push_str(&"n".repeat(100));
    check.err(
        "name too long",
        os.open(&long_name, O_CREAT | O_RDWR),
        ENAMETOOLONG,
    );
    check.err("bad access mode", os.open(&a, 3), EINVAL);
    check.err("unknown flag", os.open(&a, O_RDONLY | 0x4000_0000), EINVAL);
    if let Some(fd) = check.ok("open read-only", os.open(&a, O_RDONLY)) {
        check.err("write read-only", os.write(fd, b"x"), EBADF);
        let _ = os.close(fd);
    }
    if let Some(fd) = check.ok("open write-only", os.open(&a, O_WRONLY)) {
        check.err("read write-only", os.read(fd, &mut [0u8; 4]), EBADF);
        let _ = os.close(fd);
    }
    if let Some(fd) = check.ok("open dir read-only", os.open(BASE, O_RDONLY)) {
        check.err("read dir", os.read(fd, &mut [0u8; 4]), EISDIR);
        let _ = os.close(fd);
    }
}

/// `O_TRUNC`, `O_APPEND`, truncate, dup, unlinked-but-open files.
fn flags<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let a = path("a");
    if let Some(fd) = check.ok("open trunc", os.open(&a, O_WRONLY | O_TRUNC)) {
        check.ok_eq("trunc empties", os.fstat(fd).map(|s| s.size), 0);
        check.ok_eq("write after trunc", os.write(fd, b"ab"), 2);
        let _ = os.close(fd);
    }
    if let Some(fd) = check.ok("open append", os.open(&a, O_WRONLY | O_APPEND)) {
        let _ = os.lseek(fd, 0, SEEK_SET);
        check.ok_eq("append write", os.write(fd, b"cd"), 2);
        let _ = os.close(fd);
    }
    let contents = os.read_file(&a, 64);
    check.ok_eq("append appends", contents, b"abcd".to_vec());
    check.ok("truncate shorter", os.truncate(&a, 1));
    check.ok_eq("truncated size", os.stat(&a).map(|s| s.size), 1);
    check.ok("truncate longer", os.truncate(&a, 8));
    check.ok_eq(
        "truncate zero-fills",
        os.read_file(&a, 64),
        b"a\0\0\0\0\0\0\0".to_vec(),
    );
    check.err("truncate dir", os.truncate(BASE, 0), EISDIR);
    check.err("truncate missing", os.truncate(&path("missing"), 0), ENOENT);
    if let Some(fd) = check.ok("open for dup", os.open(&a, O_RDWR)) {
        if let Some(copy) = check.ok("dup", os.dup(fd)) {
            check.check("dup is a new descriptor", copy != fd);
            let _ = os.write(copy, b"xyz");
            check.ok_eq("dup shares the offset", os.lseek(fd, 0, SEEK_CUR), 3);
            let _ = os.close(copy);
            check.ok("original survives close of dup", os.fstat(fd));
        }
        check.err("dup bad fd", os.dup(-7), EBADF);
        check.ok("unlink open file", os.unlink(&a));
        check.err("unlinked name is gone", os.stat(&a), ENOENT);
        check.ok_eq(
            "unlinked file still readable",
            os.pread(fd, &mut [0u8; 3], 0),
            3,
        );
        let _ = os.close(fd);
    }
}

/// Directories: readdir, rename, rmdir, unlink and their errors.
fn directories<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let (d, f, g) = (path("d"), path("d/f"), path("g"));
    check.ok("mkdir nested", os.mkdir(&d));
    if let Some(fd) = check.ok("create in nested", os.open(&f, O_CREAT | O_WRONLY)) {
        let _ = os.close(fd);
    }
    if let Some(fd) = check.ok("create g", os.open(&g, O_CREAT | O_WRONLY)) {
        let _ = os.close(fd);
    }
    let names = os.readdir(BASE);
    check.ok_eq(
        "readdir",
        names,
        alloc::vec![String::from("d"), String::from("g")],
    );
    check.err("readdir file", os.readdir(&g), ENOTDIR);
    check.err("readdir missing", os.readdir(&path("missing")), ENOENT);
    check.err("mkdir under file", os.mkdir(&path("g/x")), ENOTDIR);
    check.err("rmdir not empty", os.rmdir(&d), ENOTEMPTY);
    check.err("rmdir file", os.rmdir(&g), ENOTDIR);
    check.err("unlink dir", os.unlink(&d), EISDIR);
    check.err("unlink missing", os.unlink(&path("missing")), ENOENT);
    let h = path("h");
    check.ok("rename", os.rename(&g, &h));
    check.err("rename source gone", os.stat(&g), ENOENT);
    check.ok("rename target there", os.stat(&h));
    check.err("rename missing", os.rename(&g, &h), ENOENT);
    check.err("rename file over dir", os.rename(&h, &d), EISDIR);
    check.err(
        "rename dir into itself",
        os.rename(&d, &path("d/sub")),
        EINVAL,
    );
    check.ok("unlink nested", os.unlink(&f));
    check.ok("rmdir empty", os.rmdir(&d));
    check.err("rmdir gone", os.stat(&d), ENOENT);
    check.ok("unlink h", os.unlink(&h));
    check.ok_eq("base empty", os.readdir(BASE), alloc::vec::Vec::new());
}
