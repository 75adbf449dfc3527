//! Host tests: a fake kernel, a harness that speaks the protocol to a [`Vfs`] and
//! checks its invariants after every request, and the tests by area.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]

mod dirs;
mod files;
mod pipes;
mod procs;
mod random;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::opcode::*;
use ankh_proto::rootfs;
use ankh_proto::server::{Endpoint, Handled, Kernel, Reply, Request, Server};
use ankh_proto::vfs::*;
use ankh_proto::{wire, Pid};

use crate::fd::{End, Target};
use crate::{Config, Storage, Vfs};

/// A call a server made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub to: Endpoint,
    pub opcode: u16,
    pub payload: Vec<u8>,
    pub bulk: Vec<u8>,
}

/// A kernel that records calls and deferred replies.
pub struct FakeKernel {
    pub calls: Vec<Call>,
    pub replies: Vec<(u64, Reply)>,
    /// The answer to `SYS_ROOT_FS`.
    pub root_fs: Result<Reply, Errno>,
    /// The answer to every call to the block driver (`ENOSYS`: there is none).
    pub blk: Result<Reply, Errno>,
}

impl FakeKernel {
    pub fn new() -> FakeKernel {
        FakeKernel {
            calls: Vec::new(),
            replies: Vec::new(),
            root_fs: Err(errno::ENOSYS),
            blk: Err(errno::ENOSYS),
        }
    }

    /// The values published under `vfs.open-files`, in order.
    pub fn published(&self) -> Vec<String> {
        self.calls
            .iter()
            .filter(|call| call.to == Endpoint::Ds && call.opcode == DS_PUBLISH)
            .map(|call| {
                let list = wire::split(&call.bulk).unwrap();
                assert_eq!(list[0], DS_KEY_OPEN_FILES);
                String::from(list[1])
            })
            .collect()
    }
}

impl Kernel for FakeKernel {
    fn call(
        &mut self,
        to: Endpoint,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
    ) -> Result<Reply, Errno> {
        self.calls.push(Call {
            to,
            opcode,
            payload: payload.to_vec(),
            bulk: bulk.to_vec(),
        });
        match (to, opcode) {
            (Endpoint::Kernel, SYS_ROOT_FS) => self.root_fs.clone(),
            // No driver among the peers, as the substrate answers then.
            (Endpoint::Blk, _) => self.blk.clone(),
            _ => Ok(Reply::ok(Vec::new())),
        }
    }

    fn reply(&mut self, request_id: u64, reply: Reply) {
        self.replies.push((request_id, reply));
    }
}

/// A file system and a kernel, driven request by request.
pub struct Harness {
    pub vfs: Vfs,
    pub kernel: FakeKernel,
    next_id: u64,
}

/// A client's view of an answer: a reply, or parked under a request id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Now(Result<Reply, Errno>),
    Parked(u64),
}

pub const INIT: Pid = 10;
pub const APP: Pid = 11;
pub const OTHER: Pid = 12;

pub fn count_of(reply: &Reply) -> u64 {
    wire::record::<Count>(&reply.payload).unwrap().count
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_vfs(Vfs::new())
    }

    pub fn with_config(config: Config) -> Harness {
        Harness::with_vfs(Vfs::with_config(config))
    }

    pub fn with_vfs(vfs: Vfs) -> Harness {
        Harness {
            vfs,
            kernel: FakeKernel::new(),
            next_id: 1,
        }
    }

    /// Sends one request and checks the invariants afterwards.
    pub fn send(&mut self, pid: Pid, opcode: u16, payload: &[u8], bulk: &[u8]) -> Answer {
        let request_id = self.next_id;
        self.next_id += 1;
        let request = Request {
            source: pid,
            opcode,
            request_id,
            payload,
            bulk,
        };
        let handled = self.vfs.handle(&request, &mut self.kernel);
        check(&self.vfs, &self.kernel);
        match handled {
            Handled::Reply(reply) if reply.status == 0 => Answer::Now(Ok(reply)),
            Handled::Reply(reply) => {
                assert!(reply.payload.is_empty() && reply.bulk.is_empty());
                Answer::Now(Err(reply.status))
            }
            Handled::Deferred => Answer::Parked(request_id),
        }
    }

    /// Sends a request that must be answered at once.
    pub fn call(
        &mut self,
        pid: Pid,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
    ) -> Result<Reply, Errno> {
        match self.send(pid, opcode, payload, bulk) {
            Answer::Now(result) => result,
            Answer::Parked(id) => panic!("request {id} parked"),
        }
    }

    /// The deferred replies sent since the last look.
    pub fn woken(&mut self) -> Vec<(u64, Reply)> {
        core::mem::take(&mut self.kernel.replies)
    }

    pub fn open(&mut self, pid: Pid, path: &str, flags: u32) -> Result<i32, Errno> {
        let open = Open { flags, mode: 0 };
        let reply = self.call(pid, VFS_OPEN, &wire::bytes(&open), &wire::join([path]))?;
        Ok(wire::record::<Fd>(&reply.payload).unwrap().fd)
    }

    pub fn close(&mut self, pid: Pid, fd: i32) -> Result<(), Errno> {
        self.call(pid, VFS_CLOSE, &fd_bytes(fd), &[]).map(drop)
    }

    pub fn read_answer(&mut self, pid: Pid, fd: i32, len: u32) -> Answer {
        let io = Io { fd, len, offset: 0 };
        self.send(pid, VFS_READ, &wire::bytes(&io), &[])
    }

    pub fn read(&mut self, pid: Pid, fd: i32, len: u32) -> Result<Vec<u8>, Errno> {
        match self.read_answer(pid, fd, len) {
            Answer::Now(result) => result.map(|reply| data_of(&reply)),
            Answer::Parked(id) => panic!("read {id} parked"),
        }
    }

    pub fn write_answer(&mut self, pid: Pid, fd: i32, data: &[u8]) -> Answer {
        self.send(pid, VFS_WRITE, &fd_bytes(fd), data)
    }

    pub fn write(&mut self, pid: Pid, fd: i32, data: &[u8]) -> Result<u64, Errno> {
        match self.write_answer(pid, fd, data) {
            Answer::Now(result) => result.map(|reply| count_of(&reply)),
            Answer::Parked(id) => panic!("write {id} parked"),
        }
    }

    pub fn pread(&mut self, pid: Pid, fd: i32, len: u32, offset: u64) -> Result<Vec<u8>, Errno> {
        let io = Io { fd, len, offset };
        let reply = self.call(pid, VFS_PREAD, &wire::bytes(&io), &[])?;
        Ok(data_of(&reply))
    }

    pub fn pwrite(&mut self, pid: Pid, fd: i32, data: &[u8], offset: u64) -> Result<u64, Errno> {
        let io = Io { fd, len: 0, offset };
        let reply = self.call(pid, VFS_PWRITE, &wire::bytes(&io), data)?;
        Ok(count_of(&reply))
    }

    pub fn lseek(&mut self, pid: Pid, fd: i32, offset: i64, whence: u32) -> Result<u64, Errno> {
        let seek = Seek { fd, whence, offset };
        let reply = self.call(pid, VFS_LSEEK, &wire::bytes(&seek), &[])?;
        Ok(wire::record::<Offset>(&reply.payload).unwrap().offset)
    }

    pub fn stat(&mut self, path: &str) -> Result<Stat, Errno> {
        let reply = self.call(APP, VFS_STAT, &[], &wire::join([path]))?;
        Ok(wire::record(&reply.payload).unwrap())
    }

    pub fn fstat(&mut self, pid: Pid, fd: i32) -> Result<Stat, Errno> {
        let reply = self.call(pid, VFS_FSTAT, &fd_bytes(fd), &[])?;
        Ok(wire::record(&reply.payload).unwrap())
    }

    fn path_op(&mut self, opcode: u16, path: &str) -> Result<(), Errno> {
        self.call(APP, opcode, &[], &wire::join([path])).map(drop)
    }

    pub fn unlink(&mut self, path: &str) -> Result<(), Errno> {
        self.path_op(VFS_UNLINK, path)
    }

    pub fn mkdir(&mut self, path: &str) -> Result<(), Errno> {
        self.path_op(VFS_MKDIR, path)
    }

    pub fn rmdir(&mut self, path: &str) -> Result<(), Errno> {
        self.path_op(VFS_RMDIR, path)
    }

    pub fn readdir(&mut self, path: &str) -> Result<Vec<String>, Errno> {
        let reply = self.call(APP, VFS_READDIR, &[], &wire::join([path]))?;
        Ok(wire::split(&reply.bulk)
            .unwrap()
            .into_iter()
            .map(String::from)
            .collect())
    }

    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), Errno> {
        self.call(APP, VFS_RENAME, &[], &wire::join([old, new]))
            .map(drop)
    }

    pub fn truncate(&mut self, path: &str, len: u64) -> Result<(), Errno> {
        let offset = Offset { offset: len };
        self.call(
            APP,
            VFS_TRUNCATE,
            &wire::bytes(&offset),
            &wire::join([path]),
        )
        .map(drop)
    }

    pub fn dup(&mut self, pid: Pid, fd: i32) -> Result<i32, Errno> {
        let reply = self.call(pid, VFS_DUP, &fd_bytes(fd), &[])?;
        Ok(wire::record::<Fd>(&reply.payload).unwrap().fd)
    }

    pub fn pipe(&mut self, pid: Pid) -> Result<(i32, i32), Errno> {
        let reply = self.call(pid, VFS_PIPE, &[], &[])?;
        let fds: PipeFds = wire::record(&reply.payload).unwrap();
        Ok((fds.read, fds.write))
    }

    pub fn spawn(&mut self, from: Pid, child: Pid, parent: Pid, flags: u32) -> Result<(), Errno> {
        let spawn = ProcSpawn {
            child,
            parent,
            flags,
            reserved: 0,
        };
        self.call(from, VFS_PROC_SPAWN, &wire::bytes(&spawn), &[])
            .map(drop)
    }

    pub fn exit(&mut self, from: Pid, pid: Pid) -> Result<(), Errno> {
        let exit = ProcExit { pid, reserved: 0 };
        self.call(from, VFS_PROC_EXIT, &wire::bytes(&exit), &[])
            .map(drop)
    }

    /// Creates a file with some contents.
    pub fn put(&mut self, path: &str, data: &[u8]) {
        let fd = self.open(INIT, path, O_CREAT | O_WRONLY | O_TRUNC).unwrap();
        assert_eq!(self.write(INIT, fd, data).unwrap(), data.len() as u64);
        self.close(INIT, fd).unwrap();
    }

    /// A whole file's contents.
    pub fn get(&mut self, path: &str) -> Result<Vec<u8>, Errno> {
        let fd = self.open(INIT, path, O_RDONLY)?;
        let data = self.read(INIT, fd, IO_MAX as u32);
        self.close(INIT, fd).unwrap();
        data
    }
}

pub fn fd_bytes(fd: i32) -> Vec<u8> {
    wire::bytes(&Fd { fd, reserved: 0 })
}

/// The data of a read reply, checked against its count.
pub fn data_of(reply: &Reply) -> Vec<u8> {
    assert_eq!(count_of(reply), reply.bulk.len() as u64);
    reply.bulk.clone()
}

/// An archive of entries.
pub fn archive(entries: &[(u8, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(kind, path, data) in entries {
        rootfs::push(&mut out, kind, path, data);
    }
    out
}

/// Checks every cross-structure invariant of a file system.
pub fn check(vfs: &Vfs, kernel: &FakeKernel) {
    vfs.fds.check();
    let mut opens = BTreeMap::new();
    let mut ends: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
    for file in vfs.fds.files() {
        match file.target {
            Target::Node(ino) => *opens.entry(ino).or_insert(0) += 1,
            Target::Pipe { pipe, end } => {
                let counts = ends.entry(pipe).or_default();
                match end {
                    End::Read => counts.0 += 1,
                    End::Write => counts.1 += 1,
                }
            }
        }
    }
    vfs.fs.check(&opens);
    assert_eq!(vfs.pipes.len(), ends.len(), "pipes without open files");
    for (id, pipe) in vfs.pipes.iter() {
        let (readers, writers) = ends[id];
        pipe.check(readers, writers);
    }
    assert!(vfs.woken.is_empty());
    if vfs.config().publish_open_files {
        let published = kernel.published();
        let last = published.last().map_or("0", String::as_str);
        assert_eq!(last, crate::server::decimal(vfs.open_files() as u64));
    }
}
