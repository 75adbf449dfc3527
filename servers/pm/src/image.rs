//! Reading a program's image through VFS.
//!
//! PM reads a program by its path with one query (`VFS_PREAD_PATH`): no descriptor
//! of PM's is involved, and VFS's state does not change.

use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::opcode::VFS_PREAD_PATH;
use ankh_proto::server::{Endpoint, Kernel};
use ankh_proto::vfs::{Io, Stat, IO_MAX, KIND_FILE};
use ankh_proto::wire;
use virtio_seep::message::BULK_MAX;

use crate::calls::call;

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
/// bulk data (`EMSGSIZE` otherwise), with one `VFS_PREAD_PATH`: a query, which makes
/// no descriptor in VFS, so that a spawn has changed nothing outside PM until it asks
/// for the domain (its recovery window stays open; docs/recovery.md, "Coverage"). The
/// file's status comes with the bytes, from the same request, so the size checked is
/// that of the bytes read. VFS's errors come back unchanged; `ENOEXEC` when it is
/// not a regular file or not ELF.
pub(crate) fn load(kernel: &mut dyn Kernel, path: &str, out: &mut Vec<u8>) -> Result<(), Errno> {
    let room = usize::try_from(BULK_MAX)
        .unwrap_or(usize::MAX)
        .saturating_sub(out.len())
        .min(IO_MAX);
    let io = Io {
        fd: 0,
        len: u32::try_from(room).unwrap_or(u32::MAX),
        offset: 0,
    };
    let reply = match call(
        kernel,
        Endpoint::Vfs,
        VFS_PREAD_PATH,
        &wire::bytes(&io),
        &wire::join([path]),
    ) {
        Err(errno::EISDIR) => return Err(errno::ENOEXEC),
        reply => reply?,
    };
    let stat: Stat = wire::record(&reply.payload)?;
    if stat.kind != KIND_FILE {
        return Err(errno::ENOEXEC);
    }
    if usize::try_from(stat.size).map_or(true, |size| size > room) {
        return Err(errno::EMSGSIZE);
    }
    // A reply longer than the file is malformed; a shorter one is a file that ends
    // early, and the VMM judges what it gets.
    let size = usize::try_from(stat.size).unwrap_or(usize::MAX);
    let image = &reply.bulk[..reply.bulk.len().min(size)];
    if !image.starts_with(ELF_MAGIC) {
        return Err(errno::ENOEXEC);
    }
    out.extend_from_slice(image);
    Ok(())
}
