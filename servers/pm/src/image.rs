//! Reading a program's image through VFS.
//!
//! PM calls VFS as itself: the descriptor it opens is in PM's own descriptor table,
//! and the program must be readable by PM.

use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::opcode::{VFS_CLOSE, VFS_FSTAT, VFS_OPEN, VFS_READ};
use ankh_proto::server::{Endpoint, Kernel};
use ankh_proto::vfs::{Count, Fd, Io, Open, Stat, IO_MAX, KIND_FILE, O_RDONLY};
use ankh_proto::wire;
use virtio_seep::message::BULK_MAX;

use crate::calls::{call, call_retrying};

/// Longest domain name the VMM accepts.
pub(crate) const DOMAIN_NAME_MAX: usize = 16;

/// What every ELF file starts with.
const ELF_MAGIC: &[u8] = b"\x7fELF";

/// The domain name of a program: the last component of its path, cut to
/// [`DOMAIN_NAME_MAX`] bytes at a character boundary. (The VMM replaces a name it
/// does not like with a default.)
pub(crate) fn domain_name(path: &str) -> &str {
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let mut end = name.len().min(DOMAIN_NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Appends the ELF image at `path` to `out`, which must stay within one message's
/// bulk data (`EMSGSIZE` otherwise): opens it read-only, reads it whole, closes it.
/// VFS's errors come back unchanged; `ENOEXEC` when it is not a regular file or not
/// ELF.
pub(crate) fn load(kernel: &mut dyn Kernel, path: &str, out: &mut Vec<u8>) -> Result<(), Errno> {
    let open = Open {
        flags: O_RDONLY,
        mode: 0,
    };
    let opened = call(
        kernel,
        Endpoint::Vfs,
        VFS_OPEN,
        &wire::bytes(&open),
        &wire::join([path]),
    )?;
    let Fd { fd, .. } = wire::record(&opened.payload)?;
    let start = out.len();
    let read = read_all(kernel, fd, out);
    // A failed close leaks one of PM's descriptors, nothing the spawner can mend; a
    // rolled-back VFS gets it again.
    let _ = call_retrying(
        kernel,
        Endpoint::Vfs,
        VFS_CLOSE,
        &wire::bytes(&Fd { fd, reserved: 0 }),
        &[],
    );
    read?;
    if !out[start..].starts_with(ELF_MAGIC) {
        return Err(errno::ENOEXEC);
    }
    Ok(())
}

/// Appends the whole file behind `fd`, read in chunks of at most `IO_MAX` bytes. A
/// file that turns out shorter than its size ends at the first empty read.
fn read_all(kernel: &mut dyn Kernel, fd: i32, out: &mut Vec<u8>) -> Result<(), Errno> {
    let fd_record = wire::bytes(&Fd { fd, reserved: 0 });
    let stat: Stat =
        wire::record(&call(kernel, Endpoint::Vfs, VFS_FSTAT, &fd_record, &[])?.payload)?;
    if stat.kind != KIND_FILE {
        return Err(errno::ENOEXEC);
    }
    let room = usize::try_from(BULK_MAX)
        .unwrap_or(usize::MAX)
        .saturating_sub(out.len());
    let size = usize::try_from(stat.size)
        .ok()
        .filter(|&size| size <= room)
        .ok_or(errno::EMSGSIZE)?;
    let end = out.len() + size;
    out.reserve(size);
    while out.len() < end {
        let want = (end - out.len()).min(IO_MAX);
        let io = Io {
            fd,
            len: u32::try_from(want).unwrap_or(u32::MAX),
            offset: 0,
        };
        let reply = call(kernel, Endpoint::Vfs, VFS_READ, &wire::bytes(&io), &[])?;
        let Count { count } = wire::record(&reply.payload)?;
        let got = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(reply.bulk.len())
            .min(want);
        if got == 0 {
            break;
        }
        out.extend_from_slice(&reply.bulk[..got]);
    }
    Ok(())
}
