//! [`Vfs`]: the file server as a [`Server`]. It owns the tree, the descriptors and
//! the pipes, dispatches each opcode to its handler (in `ops`), answers requests that
//! pipes woke, and publishes the number of open files to DS when it changes.

use alloc::string::String;
use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::opcode::{self, DS_PUBLISH, SYS_ROOT_FS};
use ankh_proto::pm::SPAWN_INHERIT_FDS;
use ankh_proto::server::{call_retrying, Endpoint, Handled, Kernel, Reply, Request, Server};
use ankh_proto::vfs::{ProcExit, ProcSpawn, DS_KEY_OPEN_FILES};
use ankh_proto::{wire, Pid};

use crate::fd::{Descriptors, OpenFile, Target};
use crate::pipe::{Pipes, Wakeup};
use ankh_ext2::BlockDevice;

use crate::backend::Backend;
use crate::blk_client::{BlkClient, NoDevice};
use crate::fs::FileSystem;
use crate::space::{Space, SpaceShares};
use crate::storage::{Ino, MemStorage, Storage, DEFAULT_DATA_BUDGET};
use crate::tree::Tree;

/// The default limit on inodes (files and directories, including removed ones that
/// are still open).
pub const DEFAULT_MAX_INODES: usize = 4096;

/// Settings of a [`Vfs`].
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Bytes of file data in all files together ([`MemStorage`] only; `ENOSPC`
    /// beyond).
    pub data_budget: u64,
    /// Most inodes (`ENOSPC` beyond).
    pub max_inodes: usize,
    /// Publish the number of open files to DS (`vfs.open-files`) when it changes. Off
    /// by default: each publication is an Update to DS, which closes VFS's recovery
    /// window for the request that made it (every open and close). With it on, VFS
    /// finished 34% of the suite's requests inside their window; with it off, 98%.
    pub publish_open_files: bool,
    /// How the domain's checkpoints take declared writes (its runtime's functions),
    /// for the block cache of a mounted disk (`ankh_ext2::DeclaredWrites`); `None`:
    /// every page is tracked by the checkpoints themselves.
    pub declared_writes: Option<ankh_ext2::DeclaredWrites>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_budget: DEFAULT_DATA_BUDGET,
            max_inodes: DEFAULT_MAX_INODES,
            publish_open_files: false,
            declared_writes: None,
        }
    }
}

/// The virtual file system server.
///
/// Processes are the `source` pids the VMM stamps on requests. A process gets its
/// descriptor table from `VFS_PROC_SPAWN` (sent by PM) or, for processes PM did not
/// spawn (init, the servers), on its first request that makes a descriptor.
///
/// Limitation: the protocol does not tell a server which role sent a request, so
/// `VFS_PROC_SPAWN`/`VFS_PROC_EXIT` are accepted from any source. What is refused:
/// a process naming itself as the child of a spawn (it would copy another
/// process's descriptors), and a spawn over a table that already has descriptors.
/// Any caller may still end another process's descriptors with `VFS_PROC_EXIT`; the
/// call graph of the system description is what keeps apps from sending it.
#[derive(Clone, Debug)]
pub struct Vfs<F = Tree<MemStorage>> {
    pub(crate) fs: F,
    pub(crate) fds: Descriptors,
    pub(crate) pipes: Pipes,
    /// What each session has grown the file system by (`crate::space`).
    pub(crate) space: SpaceShares,
    config: Config,
    /// The open-file count DS last heard of.
    published: usize,
    /// Answers to parked requests, sent when the request in hand is done.
    pub(crate) woken: Vec<Wakeup>,
    /// The next inode number of a pipe (above every file system's).
    next_pipe_ino: Ino,
    /// File-system blocks on the `blk` device, when the files live on one.
    disk_blocks: Option<u64>,
    /// The disk's driver did not answer at start: every request is `EIO`.
    disk_failed: bool,
}

/// Pipes get inode numbers from here up, clear of any file system's.
pub const PIPE_INO_BASE: Ino = 1 << 48;

impl Vfs {
    /// An empty file system in memory with the default [`Config`].
    pub fn new() -> Vfs {
        Vfs::with_config(Config::default())
    }

    /// An empty file system in memory.
    pub fn with_config(config: Config) -> Vfs {
        Vfs::with_fs(
            Tree::new(MemStorage::new(config.data_budget), config.max_inodes),
            config,
        )
    }

    /// A file system in memory holding a root file system archive (an empty root when
    /// the archive is malformed or does not fit).
    pub fn with_root(archive: &[u8]) -> Vfs {
        let mut vfs = Vfs::new();
        vfs.load_root(archive);
        vfs
    }
}

impl Default for Vfs {
    fn default() -> Vfs {
        Vfs::new()
    }
}

impl Vfs<Backend> {
    /// The server of a VFS domain: its files live on the disk of its `blk` peer when
    /// it has one, else in memory, filled from the root file system archive.
    pub fn for_domain(config: Config) -> Vfs<Backend> {
        Vfs::with_fs(Backend::new(&config), config)
    }
}

impl<S: Storage> Vfs<Tree<S>> {
    /// An empty file system in memory over `storage` (whose own budget applies:
    /// `config.data_budget` is for [`MemStorage`]).
    pub fn with_storage(storage: S, config: Config) -> Vfs<Tree<S>> {
        Vfs::with_fs(Tree::new(storage, config.max_inodes), config)
    }

    /// The storage of file data.
    pub fn storage(&self) -> &S {
        self.fs.storage()
    }
}

impl<F: FileSystem> Vfs<F> {
    /// A server over the file system `fs` (which decides, when the server starts,
    /// whether to mount a disk or load the root archive).
    pub fn with_fs(fs: F, config: Config) -> Vfs<F> {
        Vfs {
            fs,
            fds: Descriptors::new(),
            pipes: Pipes::new(),
            space: SpaceShares::new(),
            config,
            published: 0,
            woken: Vec::new(),
            next_pipe_ino: PIPE_INO_BASE,
            disk_blocks: None,
            disk_failed: false,
        }
    }

    /// The file system.
    pub fn fs(&self) -> &F {
        &self.fs
    }

    /// A fresh inode number for a pipe.
    pub(crate) fn alloc_pipe_ino(&mut self) -> Ino {
        let ino = self.next_pipe_ino;
        self.next_pipe_ino = self.next_pipe_ino.wrapping_add(1).max(PIPE_INO_BASE);
        ino
    }

    /// Loads a root file system archive into the (still unused) tree; on a malformed
    /// archive or one that does not fit, the root is left empty. Returns success.
    fn load_root(&mut self, archive: &[u8]) -> bool {
        self.fs.load_archive(archive).is_ok()
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Entries in the system-wide open-file table.
    pub fn open_files(&self) -> usize {
        self.fds.open_files()
    }

    /// Inodes in use.
    pub fn inodes(&self) -> usize {
        self.fs.inode_count()
    }

    /// Pipes in use.
    pub fn pipes(&self) -> usize {
        self.pipes.len()
    }

    /// Drops the last reference to an open file: closes the inode or the pipe end
    /// (which may wake the other end's parked requests).
    pub(crate) fn release(&mut self, dev: &mut dyn BlockDevice, file: OpenFile) {
        match file.target {
            Target::Node(ino) => self.fs.close(dev, ino),
            Target::Pipe { pipe, end } => self.pipes.close(pipe, end, &mut self.woken),
        }
    }

    /// `VFS_PROC_SPAWN`: gives the child its table.
    fn proc_spawn(&mut self, source: Pid, payload: &[u8]) -> Result<Reply, Errno> {
        let spawn: ProcSpawn = wire::record(payload)?;
        if spawn.flags & !SPAWN_INHERIT_FDS != 0 || spawn.child == spawn.parent {
            return Err(errno::EINVAL);
        }
        if spawn.child == source {
            return Err(errno::EPERM);
        }
        let inherit = spawn.flags & SPAWN_INHERIT_FDS != 0;
        self.fds.spawn(spawn.child, spawn.parent, inherit)?;
        Ok(Reply::ok(Vec::new()))
    }

    /// `VFS_PROC_EXIT`: forgets the process's parked requests, closes its descriptors;
    /// the end of the last process of a session ends its share of the space.
    fn proc_exit(&mut self, dev: &mut dyn BlockDevice, payload: &[u8]) -> Result<Reply, Errno> {
        let exit: ProcExit = wire::record(payload)?;
        let session = self.fds.session_of(exit.pid);
        self.pipes.drop_parked(exit.pid, &mut self.woken);
        for file in self.fds.exit(exit.pid) {
            self.release(dev, file);
        }
        if !self.fds.session_alive(session) {
            self.space.forget(session);
        }
        Ok(Reply::ok(Vec::new()))
    }

    /// What `pid`'s session may still grow the file system by (no bound while
    /// nothing is mounted: every file operation fails then anyway).
    pub(crate) fn space_left(&self, pid: Pid) -> Space {
        match self.fs.space().1 {
            capacity if capacity == Space::default() => Space {
                bytes: u64::MAX,
                inodes: u64::MAX,
            },
            capacity => self.space.left(self.fds.session_of(pid), capacity),
        }
    }

    /// What `pid`'s session has grown the file system by (tests, status).
    pub fn session_space_used(&self, pid: Pid) -> Space {
        self.space.used_by(self.fds.session_of(pid))
    }

    /// Dispatches one request, charging what it changed the space in use by to the
    /// session of its sender.
    fn dispatch(&mut self, dev: &mut dyn BlockDevice, request: &Request<'_>) -> Handled {
        let session = self.fds.session_of(request.source);
        let before = self.fs.space().0;
        let handled = self.dispatch_op(dev, request);
        self.space.record(session, before, self.fs.space().0);
        handled
    }

    /// Dispatches one request to its handler.
    fn dispatch_op(&mut self, dev: &mut dyn BlockDevice, request: &Request<'_>) -> Handled {
        let pid = request.source;
        let result = match request.opcode {
            opcode::VFS_OPEN => self.open(dev, pid, request),
            opcode::VFS_CLOSE => self.close(dev, pid, request),
            opcode::VFS_READ => return self.read(dev, pid, request),
            opcode::VFS_WRITE => return self.write(dev, pid, request),
            opcode::VFS_PREAD => self.pread(dev, pid, request),
            opcode::VFS_PWRITE => self.pwrite(dev, pid, request),
            opcode::VFS_LSEEK => self.lseek(dev, pid, request),
            opcode::VFS_STAT => self.stat(dev, request),
            opcode::VFS_FSTAT => self.fstat(dev, pid, request),
            opcode::VFS_UNLINK => self.unlink(dev, request),
            opcode::VFS_MKDIR => self.mkdir(dev, request),
            opcode::VFS_RMDIR => self.rmdir(dev, request),
            opcode::VFS_READDIR => self.readdir(dev, request),
            opcode::VFS_RENAME => self.rename(dev, request),
            opcode::VFS_TRUNCATE => self.truncate(dev, request),
            opcode::VFS_DUP => self.dup(pid, request),
            opcode::VFS_PIPE => self.pipe(pid),
            opcode::VFS_PROC_SPAWN => self.proc_spawn(pid, request.payload),
            opcode::VFS_PROC_EXIT => self.proc_exit(dev, request.payload),
            opcode::VFS_FSYNC => self.fsync(dev, pid, request),
            opcode::VFS_PREAD_PATH => self.pread_path(dev, request),
            _ => Err(errno::ENOSYS),
        };
        result.into()
    }

    /// Tells DS the number of open files if it changed since last time.
    fn publish(&mut self, kernel: &mut dyn Kernel) {
        let count = self.fds.open_files();
        if !self.config.publish_open_files || count == self.published {
            return;
        }
        self.published = count;
        let value = decimal(u64::try_from(count).unwrap_or(u64::MAX));
        let bulk = wire::join([DS_KEY_OPEN_FILES, value.as_str()]);
        // A DS that is down or full must not stop the file system; a rolled-back DS
        // gets the count again.
        let _ = call_retrying(kernel, Endpoint::Ds, DS_PUBLISH, &[], &bulk);
    }
}

impl<F: FileSystem> Server for Vfs<F> {
    fn start(&mut self, kernel: &mut dyn Kernel) {
        // With a block driver among the peers the files live on its disk; without
        // one, in memory, filled from the root file system archive.
        match BlkClient::geometry(kernel) {
            Ok(blocks) => {
                self.disk_blocks = Some(blocks);
                let mut dev = BlkClient::new(kernel, blocks);
                // A disk that does not mount answers `EIO` to every file operation
                // (`DiskFs` unmounted); the VMM checks images before booting.
                let _ = self.fs.mount(&mut dev);
                if let Some(writes) = self.config.declared_writes {
                    self.fs.declare_cache_writes(writes);
                }
                return;
            }
            // No driver among the peers: the files live in memory.
            Err(errno::ENOSYS) => {}
            // A driver that does not answer sensibly even after its re-issues: the
            // disk exists but cannot be used. Serving the root archive in memory
            // instead would hide that (programs would run and nothing they write
            // would reach the disk), so every request is answered `EIO`.
            Err(_) => {
                self.disk_failed = true;
                return;
            }
        }
        // The VMM answers with the archive (possibly empty); an error means the
        // system has none for this domain, and the root stays empty. (A kernel call
        // is never rolled back: no `ERESTART` to tell apart here.)
        match kernel.call(Endpoint::Kernel, SYS_ROOT_FS, &[], &[]) {
            Ok(reply) if reply.status == errno::OK => {
                self.load_root(&reply.bulk);
            }
            _ => {}
        }
    }

    fn handle(&mut self, request: &Request<'_>, kernel: &mut dyn Kernel) -> Handled {
        if self.disk_failed {
            return Reply::err(errno::EIO).into();
        }
        let handled = match self.disk_blocks {
            Some(blocks) => self.dispatch(&mut BlkClient::new(kernel, blocks), request),
            None => self.dispatch(&mut NoDevice, request),
        };
        for (request_id, reply) in core::mem::take(&mut self.woken) {
            kernel.reply(request_id, reply);
        }
        self.publish(kernel);
        handled
    }
}

/// `n` in decimal, without `core::fmt` (whose integer formatting the guests cannot
/// run).
pub fn decimal(mut n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits[at..]
        .iter()
        .map(|&digit| char::from(digit))
        .collect()
}
