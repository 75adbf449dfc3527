//! What the library refuses without a call, and malformed or misdirected requests VFS,
//! DS and MM must refuse (PM's are in `processes`).

use ankh_proto::opcode::{
    DS_LIST, DS_PUBLISH, DS_RETRIEVE, MM_BRK, MM_USAGE, SYS_ROOT_FS, TEST_PING, VFS_OPEN, VFS_READ,
};
use ankh_proto::vfs::{Io, Open, IO_MAX, O_RDONLY};
use ankh_ulib::errno::{EFAULT, EINVAL, ENOSYS};
use ankh_ulib::{Channel, Os, Server};
use zerocopy::IntoBytes;

use crate::check::Checker;

/// Runs the section.
pub(super) fn run<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    library(os, check);
    malformed(os, check);
    misdirected(os, check);
}

/// Buffers the library refuses: `EFAULT` outside the app's RAM, `EINVAL` over `IO_MAX`.
fn library<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let ram = os.ram();
    // SAFETY: every range below lies (at least partly) outside the app's RAM, so the
    // library refuses it before touching it; the last one is only checked for length.
    unsafe {
        check.err(
            "efault low memory",
            os.write_ptr(0, 0x2000 as *const u8, 16),
            EFAULT,
        );
        let end = usize::try_from(ram.end).unwrap_or(usize::MAX);
        check.err(
            "efault past ram",
            os.read_ptr(0, (end - 8) as *mut u8, 16),
            EFAULT,
        );
        check.err(
            "efault wraps",
            os.write_ptr(0, (usize::MAX - 4) as *const u8, 16),
            EFAULT,
        );
        check.err(
            "einval huge read",
            os.read_ptr(
                0,
                usize::try_from(ram.start).unwrap_or(0) as *mut u8,
                IO_MAX + 1,
            ),
            EINVAL,
        );
    }
}

/// Requests with bad records, lists or lengths.
fn malformed<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    if let Some(fd) = check.ok("open root", os.open("/", O_RDONLY)) {
        let io = Io {
            fd,
            len: u32::MAX,
            offset: 0,
        };
        let huge = os.call(Server::Vfs, VFS_READ, io.as_bytes(), &[]);
        check.err("server huge read", huge, EINVAL);
        let _ = os.close(fd);
    }
    let open = Open {
        flags: O_RDONLY,
        mode: 0,
    };
    let short = os.call(Server::Vfs, VFS_OPEN, &[0; 3], b"/\0");
    check.err("short record", short, EINVAL);
    let unterminated = os.call(Server::Vfs, VFS_OPEN, open.as_bytes(), b"/bin");
    check.err("unterminated path", unterminated, EINVAL);
    let not_utf8 = os.call(Server::Vfs, VFS_OPEN, open.as_bytes(), b"/\xff\xfe\0");
    check.err("path not utf-8", not_utf8, EINVAL);
    let two_paths = os.call(Server::Vfs, VFS_OPEN, open.as_bytes(), b"/a\0/b\0");
    check.err("two paths", two_paths, EINVAL);
    check.err(
        "ds publish one item",
        os.call(Server::Ds, DS_PUBLISH, &[], b"k\0"),
        EINVAL,
    );
    check.err(
        "ds retrieve no list",
        os.call(Server::Ds, DS_RETRIEVE, &[], &[]),
        EINVAL,
    );
    check.err(
        "mm short brk",
        os.call(Server::Mm, MM_BRK, &[0; 4], &[]),
        EINVAL,
    );
}

/// Valid opcodes sent to a server that does not serve them. (The process-lifecycle
/// opcodes only PM may send are the VMM's business: it stops any other sender.)
fn misdirected<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    check.err(
        "ds opcode to mm",
        os.call(Server::Mm, DS_LIST, &[], b"\0"),
        ENOSYS,
    );
    check.err(
        "vfs opcode to ds",
        os.call(Server::Ds, VFS_OPEN, &[0; 8], b"/\0"),
        ENOSYS,
    );
    check.err(
        "mm opcode to vfs",
        os.call(Server::Vfs, MM_USAGE, &[], &[]),
        ENOSYS,
    );
    check.err(
        "test opcode to vfs",
        os.call(Server::Vfs, TEST_PING, &[], &[]),
        ENOSYS,
    );
    check.err(
        "kernel opcode to vfs",
        os.call(Server::Vfs, SYS_ROOT_FS, &[], &[]),
        ENOSYS,
    );
}
