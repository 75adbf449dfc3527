//! The handlers of the `VFS_*` requests other than the process messages: they decode
//! the request's records, check descriptors and access modes, and call the tree, the
//! storage or a pipe.

use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::server::{Handled, Reply, Request};
use ankh_proto::vfs::{
    Count, Fd, Io, Offset, Open, PipeFds, Seek, IO_MAX, KIND_FILE, O_ACCMODE, O_APPEND, O_CREAT,
    O_EXCL, O_RDONLY, O_SYNC, O_TRUNC, O_WRONLY, PIPE_PARKED_MAX, SEEK_CUR, SEEK_END, SEEK_SET,
};
use ankh_proto::{wire, Pid};

use crate::fd::{End, OpenFile, Target};
use crate::server::Vfs;
use ankh_ext2::BlockDevice;

use crate::fs::FileSystem;
use crate::storage::Ino;

/// The `O_*` flags `VFS_OPEN` knows.
const OPEN_FLAGS: u32 = O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_SYNC;

/// Largest offset (offsets are `off_t`-like: they fit an `i64`).
const OFFSET_MAX: u64 = i64::MAX as u64;

/// A reply carrying `count` (and the data read, for reads).
fn count_reply(count: usize, data: Vec<u8>) -> Reply {
    let count = Count {
        count: u64::try_from(count).unwrap_or(u64::MAX),
    };
    Reply::ok_with_bulk(wire::bytes(&count), data)
}

/// A reply carrying a descriptor.
fn fd_reply(fd: i32) -> Reply {
    Reply::ok(wire::bytes(&Fd { fd, reserved: 0 }))
}

/// A read length: `EINVAL` over [`IO_MAX`].
fn io_len(len: u32) -> Result<usize, Errno> {
    usize::try_from(len)
        .ok()
        .filter(|&len| len <= IO_MAX)
        .ok_or(errno::EINVAL)
}

/// Write data: `EINVAL` over [`IO_MAX`].
fn io_data<'a>(request: &Request<'a>) -> Result<&'a [u8], Errno> {
    if request.bulk.len() > IO_MAX {
        return Err(errno::EINVAL);
    }
    Ok(request.bulk)
}

/// An offset given by a client: `EINVAL` past [`OFFSET_MAX`].
fn offset(offset: u64) -> Result<u64, Errno> {
    if offset > OFFSET_MAX {
        return Err(errno::EINVAL);
    }
    Ok(offset)
}

/// The one path in a request's bulk data.
fn path<'a>(request: &Request<'a>) -> Result<&'a str, Errno> {
    wire::single(request.bulk)
}

/// Turns a handler's result into an answer: `None` means parked.
fn maybe_parked(result: Result<Option<Reply>, Errno>) -> Handled {
    match result {
        Ok(Some(reply)) => Handled::Reply(reply),
        Ok(None) => Handled::Deferred,
        Err(status) => Handled::Reply(Reply::err(status)),
    }
}

impl<F: FileSystem> Vfs<F> {
    /// `VFS_OPEN`.
    pub(crate) fn open(
        &mut self,
        dev: &mut dyn BlockDevice,
        pid: Pid,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        let open: Open = wire::record(request.payload)?;
        let path = path(request)?;
        if open.flags & !OPEN_FLAGS != 0 || open.flags & O_ACCMODE == O_ACCMODE {
            return Err(errno::EINVAL);
        }
        // Descriptor room first, so that a failed open creates nothing.
        self.fds.check_room(pid, 1)?;
        if open.flags & O_CREAT != 0
            && self.space_left(pid).inodes == 0
            && self.fs.resolve(dev, path).is_err()
        {
            return Err(errno::ENOSPC);
        }
        let ino = self.fs.open(dev, path, open.flags)?;
        let file = OpenFile::new(Target::Node(ino), open.flags);
        match self.fds.install(pid, file) {
            Ok(fd) => Ok(fd_reply(fd)),
            Err(status) => {
                self.fs.close(dev, ino);
                Err(status)
            }
        }
    }

    /// `VFS_CLOSE`.
    pub(crate) fn close(
        &mut self,
        dev: &mut dyn BlockDevice,
        pid: Pid,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        let fd: Fd = wire::record(request.payload)?;
        if let Some(file) = self.fds.close(pid, fd.fd)? {
            self.release(dev, file);
        }
        Ok(Reply::ok(Vec::new()))
    }

    /// The inode behind a descriptor (`ESPIPE` for a pipe).
    fn seekable(&self, pid: Pid, fd: i32) -> Result<(Ino, &OpenFile), Errno> {
        let file = self.fds.get(pid, fd)?;
        match file.target {
            Target::Node(ino) => Ok((ino, file)),
            Target::Pipe { .. } => Err(errno::ESPIPE),
        }
    }

    /// `VFS_READ`: at the offset, which moves; a pipe may park it.
    pub(crate) fn read(
        &mut self,
        dev: &mut dyn BlockDevice,
        pid: Pid,
        request: &Request<'_>,
    ) -> Handled {
        maybe_parked(self.try_read(dev, pid, request))
    }

    fn try_read(
        &mut self,
        dev: &mut dyn BlockDevice,
        pid: Pid,
        request: &Request<'_>,
    ) -> Result<Option<Reply>, Errno> {
        let io: Io = wire::record(request.payload)?;
        let file = self.fds.get(pid, io.fd)?;
        if !file.readable() {
            return Err(errno::EBADF);
        }
        let (target, at) = (file.target, file.offset);
        let len = io_len(io.len)?;
        match target {
            Target::Node(ino) => {
                let data = self.fs.read(dev, ino, at, len)?;
                let moved = u64::try_from(data.len()).unwrap_or(u64::MAX);
                self.fds.get_mut(pid, io.fd)?.offset = at.saturating_add(moved);
                Ok(Some(count_reply(data.len(), data)))
            }
            Target::Pipe { pipe, .. } => {
                self.may_park(pid)?;
                let pipe = self.pipes.get_mut(pipe)?;
                Ok(pipe.read(request.request_id, pid, len, &mut self.woken))
            }
        }
    }

    /// `EAGAIN` when `pid` has `PIPE_PARKED_MAX` requests parked on pipes already
    /// (so a process that sends without waiting cannot make VFS hold an unbounded
    /// list of parked requests).
    fn may_park(&self, pid: Pid) -> Result<(), Errno> {
        if self.pipes.parked_by(pid) >= PIPE_PARKED_MAX {
            return Err(errno::EAGAIN);
        }
        Ok(())
    }

    /// `VFS_WRITE`: at the offset (the end with `O_APPEND`), which moves; a pipe may
    /// park it.
    pub(crate) fn write(
        &mut self,
        dev: &mut dyn BlockDevice,
        pid: Pid,
        request: &Request<'_>,
    ) -> Handled {
        maybe_parked(self.try_write(dev, pid, request))
    }

    fn try_write(
        &mut self,
        dev: &mut dyn BlockDevice,
        pid: Pid,
        request: &Request<'_>,
    ) -> Result<Option<Reply>, Errno> {
        let fd: Fd = wire::record(request.payload)?;
        let file = self.fds.get(pid, fd.fd)?;
        if !file.writable() {
            return Err(errno::EBADF);
        }
        let (target, at, append, sync) =
            (file.target, file.offset, file.append(), file.sync_writes());
        let data = io_data(request)?;
        match target {
            Target::Node(ino) => {
                let at = if append { self.fs.len(dev, ino)? } else { at };
                let data = self.within_share(dev, pid, ino, at, data)?;
                let n = self.fs.write(dev, ino, at, data)?;
                if sync {
                    self.fs.sync(dev)?;
                }
                let moved = u64::try_from(n).unwrap_or(u64::MAX);
                self.fds.get_mut(pid, fd.fd)?.offset = at.saturating_add(moved);
                Ok(Some(count_reply(n, Vec::new())))
            }
            Target::Pipe { pipe, .. } => {
                self.may_park(pid)?;
                let pipe = self.pipes.get_mut(pipe)?;
                Ok(pipe.write(request.request_id, pid, data, &mut self.woken))
            }
        }
    }

    /// `data`, to be written at `at` in `ino` by `pid`, cut to what overwrites the
    /// file plus what is left of the session's share of the space (a short write);
    /// `ENOSPC` when that is nothing.
    fn within_share<'a>(
        &mut self,
        dev: &mut dyn BlockDevice,
        pid: Pid,
        ino: Ino,
        at: u64,
        data: &'a [u8],
    ) -> Result<&'a [u8], Errno> {
        let left = usize::try_from(self.space_left(pid).bytes).unwrap_or(usize::MAX);
        if left >= data.len() {
            return Ok(data);
        }
        let overwritten = self.fs.len(dev, ino)?.saturating_sub(at);
        let overwritten = usize::try_from(overwritten).unwrap_or(usize::MAX);
        match overwritten.saturating_add(left).min(data.len()) {
            0 if !data.is_empty() => Err(errno::ENOSPC),
            allowed => Ok(&data[..allowed]),
        }
    }

    /// `VFS_PREAD`: at a given offset, which the descriptor does not keep.
    pub(crate) fn pread(
        &mut self,
        dev: &mut dyn BlockDevice,
        pid: Pid,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        let io: Io = wire::record(request.payload)?;
        let (ino, file) = self.seekable(pid, io.fd)?;
        if !file.readable() {
            return Err(errno::EBADF);
        }
        let at = offset(io.offset)?;
        let data = self.fs.read(dev, ino, at, io_len(io.len)?)?;
        Ok(count_reply(data.len(), data))
    }

    /// `VFS_PREAD_PATH` (`Io` with `fd` 0, the path in bulk): up to `len` bytes at
    /// `offset` of the regular file `path` names, with the file's status, in one
    /// answer. A query: it makes no descriptor and no open file and moves no offset,
    /// so it changes nothing a later request could see (it calls what `VFS_STAT` and
    /// `VFS_PREAD` call). Errors: the path's, `EISDIR` for a directory, `EINVAL` for
    /// a descriptor other than 0, a length over `IO_MAX` or an offset past the last.
    pub(crate) fn pread_path(
        &mut self,
        dev: &mut dyn BlockDevice,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        let io: Io = wire::record(request.payload)?;
        if io.fd != 0 {
            return Err(errno::EINVAL);
        }
        let (at, len) = (offset(io.offset)?, io_len(io.len)?);
        let ino = self.fs.resolve(dev, path(request)?)?;
        let stat = self.fs.stat(dev, ino)?;
        if stat.kind != KIND_FILE {
            return Err(errno::EISDIR);
        }
        let data = self.fs.read(dev, ino, at, len)?;
        Ok(Reply::ok_with_bulk(wire::bytes(&stat), data))
    }

    /// `VFS_PWRITE`: at a given offset, which the descriptor does not keep.
    pub(crate) fn pwrite(
        &mut self,
        dev: &mut dyn BlockDevice,
        pid: Pid,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        let io: Io = wire::record(request.payload)?;
        let (ino, file) = self.seekable(pid, io.fd)?;
        if !file.writable() {
            return Err(errno::EBADF);
        }
        let sync = file.sync_writes();
        let at = offset(io.offset)?;
        let data = self.within_share(dev, pid, ino, at, io_data(request)?)?;
        let n = self.fs.write(dev, ino, at, data)?;
        if sync {
            self.fs.sync(dev)?;
        }
        Ok(count_reply(n, Vec::new()))
    }

    /// `VFS_FSYNC`: makes the file system durable up to now (`EINVAL` for a pipe, as
    /// POSIX says for objects that cannot be synchronized).
    pub(crate) fn fsync(
        &mut self,
        dev: &mut dyn BlockDevice,
        pid: Pid,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        let fd: Fd = wire::record(request.payload)?;
        match self.fds.get(pid, fd.fd)?.target {
            Target::Node(_) => self.fs.sync(dev)?,
            Target::Pipe { .. } => return Err(errno::EINVAL),
        }
        Ok(Reply::ok(Vec::new()))
    }

    /// `VFS_LSEEK`.
    pub(crate) fn lseek(
        &mut self,
        dev: &mut dyn BlockDevice,
        pid: Pid,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        let seek: Seek = wire::record(request.payload)?;
        let (ino, file) = self.seekable(pid, seek.fd)?;
        let base = match seek.whence {
            SEEK_SET => 0,
            SEEK_CUR => file.offset,
            SEEK_END => self.fs.stat(dev, ino)?.size,
            _ => return Err(errno::EINVAL),
        };
        let base = i64::try_from(base).map_err(|_| errno::EINVAL)?;
        let target = base.checked_add(seek.offset).ok_or(errno::EINVAL)?;
        let target = u64::try_from(target).map_err(|_| errno::EINVAL)?;
        self.fds.get_mut(pid, seek.fd)?.offset = target;
        Ok(Reply::ok(wire::bytes(&Offset { offset: target })))
    }

    /// `VFS_STAT`.
    pub(crate) fn stat(
        &mut self,
        dev: &mut dyn BlockDevice,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        let ino = self.fs.resolve(dev, path(request)?)?;
        Ok(Reply::ok(wire::bytes(&self.fs.stat(dev, ino)?)))
    }

    /// `VFS_FSTAT`.
    pub(crate) fn fstat(
        &mut self,
        dev: &mut dyn BlockDevice,
        pid: Pid,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        let fd: Fd = wire::record(request.payload)?;
        let stat = match self.fds.get(pid, fd.fd)?.target {
            Target::Node(ino) => self.fs.stat(dev, ino)?,
            Target::Pipe { pipe, .. } => self.pipes.get_mut(pipe)?.stat(),
        };
        Ok(Reply::ok(wire::bytes(&stat)))
    }

    /// `VFS_UNLINK`.
    pub(crate) fn unlink(
        &mut self,
        dev: &mut dyn BlockDevice,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        self.fs.unlink(dev, path(request)?)?;
        Ok(Reply::ok(Vec::new()))
    }

    /// `VFS_MKDIR`.
    pub(crate) fn mkdir(
        &mut self,
        dev: &mut dyn BlockDevice,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        let left = self.space_left(request.source);
        if left.inodes == 0 || left.bytes == 0 {
            return Err(errno::ENOSPC);
        }
        self.fs.mkdir(dev, path(request)?)?;
        Ok(Reply::ok(Vec::new()))
    }

    /// `VFS_RMDIR`.
    pub(crate) fn rmdir(
        &mut self,
        dev: &mut dyn BlockDevice,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        self.fs.rmdir(dev, path(request)?)?;
        Ok(Reply::ok(Vec::new()))
    }

    /// `VFS_READDIR`: the names as a NUL-terminated list in the bulk data.
    pub(crate) fn readdir(
        &mut self,
        dev: &mut dyn BlockDevice,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        let ino = self.fs.resolve(dev, path(request)?)?;
        let names = self.fs.readdir(dev, ino)?;
        if names.len() > IO_MAX {
            return Err(errno::EMSGSIZE);
        }
        Ok(Reply::ok_with_bulk(Vec::new(), names))
    }

    /// `VFS_RENAME`: bulk `old\0new\0`.
    pub(crate) fn rename(
        &mut self,
        dev: &mut dyn BlockDevice,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        let [old, new] = wire::split(request.bulk)?[..] else {
            return Err(errno::EINVAL);
        };
        self.fs.rename(dev, old, new)?;
        Ok(Reply::ok(Vec::new()))
    }

    /// `VFS_TRUNCATE`: the path in bulk, the length in an [`Offset`].
    pub(crate) fn truncate(
        &mut self,
        dev: &mut dyn BlockDevice,
        request: &Request<'_>,
    ) -> Result<Reply, Errno> {
        let len: Offset = wire::record(request.payload)?;
        let ino = self.fs.resolve(dev, path(request)?)?;
        let len = offset(len.offset)?;
        let growth = len.saturating_sub(self.fs.len(dev, ino)?);
        if growth > self.space_left(request.source).bytes {
            return Err(errno::ENOSPC);
        }
        self.fs.truncate(dev, ino, len)?;
        Ok(Reply::ok(Vec::new()))
    }

    /// `VFS_DUP`.
    pub(crate) fn dup(&mut self, pid: Pid, request: &Request<'_>) -> Result<Reply, Errno> {
        let fd: Fd = wire::record(request.payload)?;
        Ok(fd_reply(self.fds.dup(pid, fd.fd)?))
    }

    /// `VFS_PIPE`.
    pub(crate) fn pipe(&mut self, pid: Pid) -> Result<Reply, Errno> {
        self.fds.check_room(pid, 2)?;
        let ino = self.alloc_pipe_ino();
        let pipe = self.pipes.create(ino);
        let end = |end| Target::Pipe { pipe, end };
        let read = self
            .fds
            .install(pid, OpenFile::new(end(End::Read), O_RDONLY))?;
        let write = self
            .fds
            .install(pid, OpenFile::new(end(End::Write), O_WRONLY))?;
        Ok(Reply::ok(wire::bytes(&PipeFds { read, write })))
    }
}
