//! The virtual file system's protocol.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Open for reading.
pub const O_RDONLY: u32 = 0;
/// Open for writing.
pub const O_WRONLY: u32 = 1;
/// Open for both.
pub const O_RDWR: u32 = 2;
/// Mask of the access mode.
pub const O_ACCMODE: u32 = 3;
/// Create when missing.
pub const O_CREAT: u32 = 0x40;
/// With `O_CREAT`: fail if it exists.
pub const O_EXCL: u32 = 0x80;
/// Truncate to zero on open.
pub const O_TRUNC: u32 = 0x200;
/// Every write appends.
pub const O_APPEND: u32 = 0x400;
/// Every write on the descriptor is durable when it returns (as if followed by
/// `fsync`).
pub const O_SYNC: u32 = 0x10_1000;

/// Longest path, in bytes.
pub const PATH_MAX: usize = 255;
/// Longest path component.
pub const NAME_MAX: usize = 60;
/// Descriptors per process.
pub const OPEN_MAX: usize = 32;
/// Open files in the whole system.
pub const NFILE: usize = 256;
/// Most open files one *session* may hold (a program init started and every process
/// it spawned, directly or not): half the table, so that one program's helpers cannot
/// fill it for the programs beside it (`ENFILE` beyond it, as for the whole table).
pub const SESSION_NFILE: usize = NFILE / 2;
/// A session may grow the file system by at most its capacity divided by this (half
/// the disk), so that one program's writes cannot fill it for the programs beside it
/// (`ENOSPC` beyond, and a write is cut short to what is left of the share).
pub const SESSION_SPACE_DIVISOR: u64 = 2;
/// Bytes a pipe holds: all the data VFS keeps for a pipe, however large the writes
/// (a `VFS_WRITE` to a pipe moves what fits and answers that count; one that moves
/// nothing waits for room and is answered 0: the writer sends the rest again).
pub const PIPE_BUF: usize = 4096;
/// Requests one process may have parked on pipes at a time (more are `EAGAIN`): a
/// program that waits for each call has one.
pub const PIPE_PARKED_MAX: usize = 8;
/// Largest read or write in one request.
pub const IO_MAX: usize = 1 << 20;

/// `lseek` from the start.
pub const SEEK_SET: u32 = 0;
/// `lseek` from the current offset.
pub const SEEK_CUR: u32 = 1;
/// `lseek` from the end.
pub const SEEK_END: u32 = 2;

/// `VFS_OPEN` request (bulk: the path, NUL-terminated).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Open {
    /// `O_*` flags.
    pub flags: u32,
    /// Zero (no permissions yet).
    pub mode: u32,
}

/// A descriptor: `VFS_OPEN`/`VFS_DUP` reply, `VFS_CLOSE`/`VFS_FSTAT`/`VFS_DUP`/
/// `VFS_WRITE` request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Fd {
    /// The descriptor.
    pub fd: i32,
    /// Zero.
    pub reserved: u32,
}

/// `VFS_READ` / `VFS_PREAD` / `VFS_PWRITE` request (`VFS_PWRITE` data in bulk);
/// `VFS_PREAD_PATH` request with `fd` 0 (the path in bulk).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Io {
    /// The descriptor.
    pub fd: i32,
    /// Bytes to read (ignored for writes: the bulk length counts).
    pub len: u32,
    /// The offset (`VFS_PREAD`/`VFS_PWRITE` only).
    pub offset: u64,
}

/// Bytes moved: `VFS_READ`/`VFS_PREAD` (data in bulk) / `VFS_WRITE`/`VFS_PWRITE` reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Count {
    /// Bytes read or written.
    pub count: u64,
}

/// `VFS_LSEEK` request.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Seek {
    /// The descriptor.
    pub fd: i32,
    /// `SEEK_SET`, `SEEK_CUR` or `SEEK_END`.
    pub whence: u32,
    /// The offset (may be negative with `SEEK_CUR`/`SEEK_END`).
    pub offset: i64,
}

/// `VFS_LSEEK` reply, `VFS_TRUNCATE` request (bulk: the path).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Offset {
    /// An offset or a length.
    pub offset: u64,
}

/// A regular file.
pub const KIND_FILE: u32 = 1;
/// A directory.
pub const KIND_DIR: u32 = 2;
/// A pipe.
pub const KIND_PIPE: u32 = 3;

/// `VFS_STAT` / `VFS_FSTAT` / `VFS_PREAD_PATH` reply (for `VFS_PREAD_PATH`, the
/// file as it was read: the bytes are in the bulk data).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Stat {
    /// Inode number.
    pub ino: u64,
    /// Bytes (files), entries (directories), bytes buffered (pipes).
    pub size: u64,
    /// `KIND_*`.
    pub kind: u32,
    /// Links.
    pub nlink: u32,
}

/// `VFS_PIPE` reply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PipeFds {
    /// The read end.
    pub read: i32,
    /// The write end.
    pub write: i32,
}

/// `VFS_PROC_SPAWN` request (from PM).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ProcSpawn {
    /// The new process.
    pub child: u32,
    /// Its parent.
    pub parent: u32,
    /// `pm::SPAWN_INHERIT_FDS` or 0.
    pub flags: u32,
    /// Zero.
    pub reserved: u32,
}

/// `VFS_PROC_EXIT` / `MM_PROC_EXIT` request (from PM).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ProcExit {
    /// The process that ended.
    pub pid: u32,
    /// Zero.
    pub reserved: u32,
}

/// DS key under which VFS publishes the number of open files.
pub const DS_KEY_OPEN_FILES: &str = "vfs.open-files";
