//! File calls (VFS).

use alloc::string::String;
use alloc::vec::Vec;
use core::slice;

use ankh_proto::errno::EIO;
use ankh_proto::opcode::{
    VFS_CLOSE, VFS_DUP, VFS_FSTAT, VFS_FSYNC, VFS_LSEEK, VFS_MKDIR, VFS_OPEN, VFS_PIPE, VFS_PREAD,
    VFS_PWRITE, VFS_READ, VFS_READDIR, VFS_RENAME, VFS_RMDIR, VFS_STAT, VFS_TRUNCATE, VFS_UNLINK,
    VFS_WRITE,
};
use ankh_proto::vfs::{Count, Fd as FdRecord, Io, Offset, Open, PipeFds, Seek};
pub use ankh_proto::vfs::{
    Stat, KIND_DIR, KIND_FILE, KIND_PIPE, O_APPEND, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_SYNC,
    O_TRUNC, O_WRONLY, SEEK_CUR, SEEK_END, SEEK_SET,
};
use ankh_proto::{wire, Errno};
use zerocopy::IntoBytes;

use crate::mem::check_io;
use crate::system::{list, strings};
use crate::{Channel, Fd, Os, Server};

/// The descriptor record of `fd`.
fn fd_record(fd: Fd) -> FdRecord {
    FdRecord { fd, reserved: 0 }
}

/// A read request's length (`check_io` bounded it by `IO_MAX`, which fits a `u32`).
fn io_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl<C: Channel> Os<C> {
    /// Opens `path` with `O_*` `flags`; returns the new descriptor.
    pub fn open(&mut self, path: &str, flags: u32) -> Result<Fd, Errno> {
        let request = Open { flags, mode: 0 };
        let fd: FdRecord =
            self.request_record(Server::Vfs, VFS_OPEN, request.as_bytes(), &list([path]))?;
        Ok(fd.fd)
    }

    /// Makes what was written through `fd` (and the file system's metadata) durable:
    /// it survives crashes of the file server and the disk driver, and a restart.
    pub fn fsync(&mut self, fd: Fd) -> Result<(), Errno> {
        self.request_unit(Server::Vfs, VFS_FSYNC, fd_record(fd).as_bytes(), &[])
    }

    /// Closes `fd`.
    pub fn close(&mut self, fd: Fd) -> Result<(), Errno> {
        self.request_unit(Server::Vfs, VFS_CLOSE, fd_record(fd).as_bytes(), &[])
    }

    /// Reads up to `buf.len()` bytes at the descriptor's offset (0: end of file, or a
    /// pipe with no writer left).
    pub fn read(&mut self, fd: Fd, buf: &mut [u8]) -> Result<usize, Errno> {
        // SAFETY: `buf` is valid for writes of its length.
        unsafe { self.read_ptr(fd, buf.as_mut_ptr(), buf.len()) }
    }

    /// [`Os::read`] into `len` bytes at `ptr`: `EFAULT` (no call) when the range is not in
    /// the app's RAM, `EINVAL` when `len` exceeds `IO_MAX`.
    ///
    /// # Safety
    ///
    /// If the range lies inside the app's RAM, it must be valid for writes of `len`
    /// bytes and not be in use. A range outside it is never touched.
    pub unsafe fn read_ptr(&mut self, fd: Fd, ptr: *mut u8, len: usize) -> Result<usize, Errno> {
        check_io(&self.ram, ptr as u64, len)?;
        let request = Io {
            fd,
            len: io_len(len),
            offset: 0,
        };
        // SAFETY: the range lies in our RAM (checked) and the caller lends it.
        let buf = unsafe { slice_mut(ptr, len) };
        self.request(Server::Vfs, VFS_READ, request.as_bytes(), &[], |_, data| {
            copy_out(buf, data)
        })
    }

    /// Writes `buf` at the descriptor's offset (at the end with `O_APPEND`); returns the
    /// bytes written.
    pub fn write(&mut self, fd: Fd, buf: &[u8]) -> Result<usize, Errno> {
        // SAFETY: `buf` is valid for reads of its length.
        unsafe { self.write_ptr(fd, buf.as_ptr(), buf.len()) }
    }

    /// [`Os::write`] from `len` bytes at `ptr`, checked as [`Os::read_ptr`].
    ///
    /// # Safety
    ///
    /// If the range lies inside the app's RAM, it must be valid for reads of `len` bytes.
    /// A range outside it is never touched.
    pub unsafe fn write_ptr(&mut self, fd: Fd, ptr: *const u8, len: usize) -> Result<usize, Errno> {
        check_io(&self.ram, ptr as u64, len)?;
        // SAFETY: the range lies in our RAM (checked) and the caller lends it.
        let data = unsafe { slice_ref(ptr, len) };
        // VFS answers a pipe write with what fit (a short count), or with 0 after it
        // waited for room: the rest is sent again until all of it is written, so the
        // caller sees a blocking write. An error after some bytes went in reports
        // those bytes, as POSIX does.
        let mut done = 0;
        loop {
            let rest = &data[done..];
            let count: Count =
                match self.request_record(Server::Vfs, VFS_WRITE, fd_record(fd).as_bytes(), rest) {
                    Ok(count) => count,
                    Err(_) if done > 0 => return Ok(done),
                    Err(errno) => return Err(errno),
                };
            let moved = usize::try_from(count.count).map_err(|_| EIO)?;
            if moved > rest.len() {
                return Err(EIO);
            }
            done += moved;
            if done == data.len() {
                return Ok(done);
            }
        }
    }

    /// Reads up to `buf.len()` bytes at `offset`, without moving the descriptor's
    /// offset (`ESPIPE` on a pipe).
    pub fn pread(&mut self, fd: Fd, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        check_io(&self.ram, buf.as_ptr() as u64, buf.len())?;
        let request = Io {
            fd,
            len: io_len(buf.len()),
            offset,
        };
        self.request(
            Server::Vfs,
            VFS_PREAD,
            request.as_bytes(),
            &[],
            |_, data| copy_out(buf, data),
        )
    }

    /// Writes `buf` at `offset`, without moving the descriptor's offset.
    pub fn pwrite(&mut self, fd: Fd, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        check_io(&self.ram, buf.as_ptr() as u64, buf.len())?;
        let request = Io {
            fd,
            len: io_len(buf.len()),
            offset,
        };
        let count: Count = self.request_record(Server::Vfs, VFS_PWRITE, request.as_bytes(), buf)?;
        Ok(usize::try_from(count.count).unwrap_or(usize::MAX))
    }

    /// Moves the descriptor's offset (`SEEK_SET`, `SEEK_CUR`, `SEEK_END`); returns the
    /// new offset.
    pub fn lseek(&mut self, fd: Fd, offset: i64, whence: u32) -> Result<u64, Errno> {
        let request = Seek { fd, whence, offset };
        let at: Offset = self.request_record(Server::Vfs, VFS_LSEEK, request.as_bytes(), &[])?;
        Ok(at.offset)
    }

    /// Information about `path`.
    pub fn stat(&mut self, path: &str) -> Result<Stat, Errno> {
        self.request_record(Server::Vfs, VFS_STAT, &[], &list([path]))
    }

    /// Information about the open file `fd`.
    pub fn fstat(&mut self, fd: Fd) -> Result<Stat, Errno> {
        self.request_record(Server::Vfs, VFS_FSTAT, fd_record(fd).as_bytes(), &[])
    }

    /// Removes the file `path`.
    pub fn unlink(&mut self, path: &str) -> Result<(), Errno> {
        self.request_unit(Server::Vfs, VFS_UNLINK, &[], &list([path]))
    }

    /// Makes the directory `path`.
    pub fn mkdir(&mut self, path: &str) -> Result<(), Errno> {
        self.request_unit(Server::Vfs, VFS_MKDIR, &[], &list([path]))
    }

    /// Removes the empty directory `path`.
    pub fn rmdir(&mut self, path: &str) -> Result<(), Errno> {
        self.request_unit(Server::Vfs, VFS_RMDIR, &[], &list([path]))
    }

    /// The names in the directory `path` (reply: a NUL-terminated list in bulk data).
    pub fn readdir(&mut self, path: &str) -> Result<Vec<String>, Errno> {
        self.request(Server::Vfs, VFS_READDIR, &[], &list([path]), |_, bulk| {
            strings(bulk)
        })?
    }

    /// Renames `from` to `to`.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), Errno> {
        self.request_unit(Server::Vfs, VFS_RENAME, &[], &list([from, to]))
    }

    /// Sets the length of the file `path` to `len`.
    pub fn truncate(&mut self, path: &str, len: u64) -> Result<(), Errno> {
        let request = Offset { offset: len };
        self.request_unit(Server::Vfs, VFS_TRUNCATE, request.as_bytes(), &list([path]))
    }

    /// A new descriptor for the open file of `fd` (sharing its offset).
    pub fn dup(&mut self, fd: Fd) -> Result<Fd, Errno> {
        let new: FdRecord =
            self.request_record(Server::Vfs, VFS_DUP, fd_record(fd).as_bytes(), &[])?;
        Ok(new.fd)
    }

    /// A new pipe: `(read end, write end)`.
    pub fn pipe(&mut self) -> Result<(Fd, Fd), Errno> {
        let fds: PipeFds = self.request_record(Server::Vfs, VFS_PIPE, &[], &[])?;
        Ok((fds.read, fds.write))
    }

    /// Reads the whole file `path` (at most `limit` bytes).
    pub fn read_file(&mut self, path: &str, limit: usize) -> Result<Vec<u8>, Errno> {
        let fd = self.open(path, O_RDONLY)?;
        let mut contents = Vec::new();
        let mut chunk = [0u8; 512];
        let result = loop {
            let room = limit - contents.len();
            if room == 0 {
                break Ok(());
            }
            let want = room.min(chunk.len());
            match self.read(fd, &mut chunk[..want]) {
                Ok(0) => break Ok(()),
                Ok(n) => contents.extend_from_slice(&chunk[..n.min(want)]),
                Err(errno) => break Err(errno),
            }
        };
        let closed = self.close(fd);
        result.and(closed).map(|()| contents)
    }
}

/// Copies a read's reply data into `buf`; returns the bytes copied (the server never
/// sends more than asked, but a longer reply is cut, not trusted).
fn copy_out(buf: &mut [u8], data: &[u8]) -> usize {
    let n = data.len().min(buf.len());
    buf[..n].copy_from_slice(&data[..n]);
    n
}

/// `len` bytes at `ptr` as a mutable slice (an empty one for `len` 0, whatever `ptr`).
///
/// # Safety
///
/// For `len` > 0, the range must be valid for writes and not in use elsewhere.
unsafe fn slice_mut<'a>(ptr: *mut u8, len: usize) -> &'a mut [u8] {
    if len == 0 {
        return &mut [];
    }
    // SAFETY: forwarded to the caller.
    unsafe { slice::from_raw_parts_mut(ptr, len) }
}

/// `len` bytes at `ptr` as a slice (an empty one for `len` 0, whatever `ptr`).
///
/// # Safety
///
/// For `len` > 0, the range must be valid for reads.
unsafe fn slice_ref<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: forwarded to the caller.
    unsafe { slice::from_raw_parts(ptr, len) }
}

/// The first string of a NUL-terminated list (a DS value), owned.
pub(crate) fn first_string(bulk: &[u8]) -> Result<String, Errno> {
    Ok(String::from(wire::single(bulk)?))
}
