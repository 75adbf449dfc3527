//! Pipes within one process (VFS).

use ankh_ulib::errno::{EBADF, EPIPE, ESPIPE};
use ankh_ulib::vfs::{KIND_PIPE, SEEK_SET};
use ankh_ulib::{Channel, Os};

use crate::check::Checker;

/// Runs the section.
pub(super) fn run<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let Some((r, w)) = check.ok("pipe", os.pipe()) else {
        return;
    };
    check.check("pipe ends differ", r != w);
    check.ok_eq("pipe write", os.write(w, b"ping"), 4);
    check.ok_eq("pipe fstat kind", os.fstat(r).map(|s| s.kind), KIND_PIPE);
    check.ok_eq("pipe fstat buffered", os.fstat(r).map(|s| s.size), 4);
    let mut buf = [0u8; 16];
    check.ok_eq("pipe read", os.read(r, &mut buf), 4);
    check.check("pipe read bytes", &buf[..4] == b"ping");
    check.err("pipe lseek", os.lseek(r, 0, SEEK_SET), ESPIPE);
    check.err("pipe pread", os.pread(r, &mut buf, 0), ESPIPE);
    check.err("pipe write to read end", os.write(r, b"x"), EBADF);
    check.err("pipe read from write end", os.read(w, &mut buf), EBADF);
    // Data written before the last writer closes is still read, then end of file.
    check.ok_eq("pipe write before close", os.write(w, b"tail"), 4);
    check.ok("pipe close writer", os.close(w));
    check.ok_eq("pipe drains after close", os.read(r, &mut buf), 4);
    check.ok_eq("pipe eof", os.read(r, &mut buf), 0);
    check.ok("pipe close reader", os.close(r));
    if let Some((r, w)) = check.ok("pipe for epipe", os.pipe()) {
        check.ok("close only reader", os.close(r));
        check.err("write without reader", os.write(w, b"x"), EPIPE);
        let _ = os.close(w);
    }
}
