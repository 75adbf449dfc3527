//! Descriptors: a table of descriptors per process over one system-wide table of open
//! files. An open file holds the offset and the access mode; descriptors made by
//! `dup` or inherited at spawn share it (and so share the offset), as in POSIX.
//!
//! Each open file is charged to the *session* of the process that opened it: a
//! process whose parent VFS never saw spawned (a program init started) and every
//! process it spawned, directly or not. A session holds at most `SESSION_NFILE`
//! of the `NFILE` open files, so one program's helpers cannot fill the table.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::vfs::{
    NFILE, OPEN_MAX, O_ACCMODE, O_APPEND, O_RDONLY, O_RDWR, O_SYNC, O_WRONLY, SESSION_NFILE,
};
use ankh_proto::Pid;

use crate::pipe::PipeId;
use crate::storage::Ino;

/// An index in the open-file table.
pub type FileId = usize;

/// One end of a pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The end that reads.
    Read,
    /// The end that writes.
    Write,
}

/// What an open file refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A file or directory of the tree.
    Node(Ino),
    /// One end of a pipe.
    Pipe {
        /// The pipe.
        pipe: PipeId,
        /// Which end.
        end: End,
    },
}

/// An entry of the open-file table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenFile {
    /// What it refers to.
    pub target: Target,
    /// The access mode, `O_APPEND` and `O_SYNC`.
    pub flags: u32,
    /// The offset of the next read or write (files only).
    pub offset: u64,
    /// Descriptors that refer to it.
    refs: u32,
    /// The session it is charged to (set when it is installed).
    session: Pid,
}

impl OpenFile {
    /// A new open file (not yet referred to by a descriptor).
    pub fn new(target: Target, flags: u32) -> OpenFile {
        OpenFile {
            target,
            flags: flags & (O_ACCMODE | O_APPEND | O_SYNC),
            offset: 0,
            refs: 0,
            session: 0,
        }
    }

    /// Opened for reading.
    pub fn readable(&self) -> bool {
        matches!(self.flags & O_ACCMODE, O_RDONLY | O_RDWR)
    }

    /// Opened for writing.
    pub fn writable(&self) -> bool {
        matches!(self.flags & O_ACCMODE, O_WRONLY | O_RDWR)
    }

    /// Every write goes to the end.
    pub fn append(&self) -> bool {
        self.flags & O_APPEND != 0
    }

    /// True when every write must be durable before it returns (`O_SYNC`).
    pub fn sync_writes(&self) -> bool {
        self.flags & O_SYNC == O_SYNC
    }
}

/// One process's descriptors: slot `fd` holds an open file or nothing.
#[derive(Clone, Debug, Default)]
struct FdTable {
    fds: Vec<Option<FileId>>,
}

impl FdTable {
    fn used(&self) -> usize {
        self.fds.iter().filter(|slot| slot.is_some()).count()
    }

    fn get(&self, fd: i32) -> Result<FileId, Errno> {
        let index = usize::try_from(fd).map_err(|_| errno::EBADF)?;
        self.fds.get(index).copied().flatten().ok_or(errno::EBADF)
    }

    /// Puts `file` in the lowest free slot (`EMFILE` when all are taken).
    fn install(&mut self, file: FileId) -> Result<i32, Errno> {
        let index = match self.fds.iter().position(Option::is_none) {
            Some(index) => index,
            None if self.fds.len() < OPEN_MAX => {
                self.fds.push(None);
                self.fds.len() - 1
            }
            None => return Err(errno::EMFILE),
        };
        let fd = i32::try_from(index).map_err(|_| errno::EMFILE)?;
        self.fds[index] = Some(file);
        Ok(fd)
    }

    fn remove(&mut self, fd: i32) -> Result<FileId, Errno> {
        let file = self.get(fd)?;
        let index = usize::try_from(fd).map_err(|_| errno::EBADF)?;
        self.fds[index] = None;
        while self.fds.last() == Some(&None) {
            self.fds.pop();
        }
        Ok(file)
    }
}

/// All descriptor tables and the open-file table.
#[derive(Clone, Debug, Default)]
pub struct Descriptors {
    files: Vec<Option<OpenFile>>,
    open: usize,
    tables: BTreeMap<Pid, FdTable>,
    /// The session of each process VFS saw spawned (a pid not here is its own).
    sessions: BTreeMap<Pid, Pid>,
}

impl Descriptors {
    /// No processes, no open files.
    pub fn new() -> Descriptors {
        Descriptors::default()
    }

    /// Entries in the open-file table.
    pub fn open_files(&self) -> usize {
        self.open
    }

    /// True when `pid` has a descriptor table (it sent a request that needed one, or
    /// was spawned).
    pub fn has_table(&self, pid: Pid) -> bool {
        self.tables.contains_key(&pid)
    }

    /// The session `pid` belongs to.
    pub fn session_of(&self, pid: Pid) -> Pid {
        self.sessions.get(&pid).copied().unwrap_or(pid)
    }

    /// Whether a process VFS saw spawned into `session` is still there.
    pub fn session_alive(&self, session: Pid) -> bool {
        self.sessions.values().any(|&s| s == session)
    }

    /// Open files charged to `pid`'s session.
    pub fn session_open_files(&self, pid: Pid) -> usize {
        let session = self.session_of(pid);
        self.files
            .iter()
            .flatten()
            .filter(|file| file.session == session)
            .count()
    }

    /// Checks that `pid` can get `n` more descriptors on `n` new open files
    /// (`EMFILE`, then `ENFILE` for the whole table or the session's share).
    pub fn check_room(&self, pid: Pid, n: usize) -> Result<(), Errno> {
        let used = self.tables.get(&pid).map_or(0, FdTable::used);
        if OPEN_MAX - used.min(OPEN_MAX) < n {
            return Err(errno::EMFILE);
        }
        if NFILE - self.open.min(NFILE) < n {
            return Err(errno::ENFILE);
        }
        if SESSION_NFILE - self.session_open_files(pid).min(SESSION_NFILE) < n {
            return Err(errno::ENFILE);
        }
        Ok(())
    }

    /// Adds an open file and a descriptor of `pid` for it (the lowest free one).
    pub fn install(&mut self, pid: Pid, mut file: OpenFile) -> Result<i32, Errno> {
        self.check_room(pid, 1)?;
        file.refs = 1;
        file.session = self.session_of(pid);
        let id = match self.files.iter().position(Option::is_none) {
            Some(id) => id,
            None => {
                self.files.push(None);
                self.files.len() - 1
            }
        };
        let fd = self.tables.entry(pid).or_default().install(id)?;
        self.files[id] = Some(file);
        self.open += 1;
        Ok(fd)
    }

    fn file_id(&self, pid: Pid, fd: i32) -> Result<FileId, Errno> {
        self.tables.get(&pid).ok_or(errno::EBADF)?.get(fd)
    }

    /// The open file behind a descriptor (`EBADF` when there is none).
    pub fn get(&self, pid: Pid, fd: i32) -> Result<&OpenFile, Errno> {
        let id = self.file_id(pid, fd)?;
        self.files
            .get(id)
            .and_then(Option::as_ref)
            .ok_or(errno::EBADF)
    }

    /// The open file behind a descriptor, to change its offset.
    pub fn get_mut(&mut self, pid: Pid, fd: i32) -> Result<&mut OpenFile, Errno> {
        let id = self.file_id(pid, fd)?;
        self.files
            .get_mut(id)
            .and_then(Option::as_mut)
            .ok_or(errno::EBADF)
    }

    /// Drops one descriptor's reference; returns the open file when it was the last.
    fn release(&mut self, id: FileId) -> Option<OpenFile> {
        let slot = self.files.get_mut(id)?;
        let file = slot.as_mut()?;
        file.refs = file.refs.saturating_sub(1);
        if file.refs > 0 {
            return None;
        }
        self.open = self.open.saturating_sub(1);
        let file = slot.take();
        while self.files.last() == Some(&None) {
            self.files.pop();
        }
        file
    }

    /// Closes a descriptor; returns its open file when no descriptor refers to it any
    /// more (the caller releases what it refers to).
    pub fn close(&mut self, pid: Pid, fd: i32) -> Result<Option<OpenFile>, Errno> {
        let id = self.tables.get_mut(&pid).ok_or(errno::EBADF)?.remove(fd)?;
        Ok(self.release(id))
    }

    /// A new descriptor (the lowest free) for the open file behind `fd`.
    pub fn dup(&mut self, pid: Pid, fd: i32) -> Result<i32, Errno> {
        let id = self.file_id(pid, fd)?;
        let table = self.tables.get_mut(&pid).ok_or(errno::EBADF)?;
        let new_fd = table.install(id)?;
        if let Some(file) = self.files.get_mut(id).and_then(Option::as_mut) {
            file.refs += 1;
        }
        Ok(new_fd)
    }

    /// Gives `child` a descriptor table: a copy of `parent`'s (sharing its open files)
    /// when `inherit`, else an empty one. `EEXIST` when `child` already has
    /// descriptors (a live process's table is never replaced).
    pub fn spawn(&mut self, child: Pid, parent: Pid, inherit: bool) -> Result<(), Errno> {
        if self
            .tables
            .get(&child)
            .is_some_and(|table| table.used() > 0)
        {
            return Err(errno::EEXIST);
        }
        let table = match self.tables.get(&parent) {
            Some(table) if inherit => table.clone(),
            _ => FdTable::default(),
        };
        for id in table.fds.iter().flatten() {
            if let Some(file) = self.files.get_mut(*id).and_then(Option::as_mut) {
                file.refs += 1;
            }
        }
        self.tables.insert(child, table);
        // A parent VFS never saw spawned (init): the child starts a session.
        let session = self.sessions.get(&parent).copied().unwrap_or(child);
        self.sessions.insert(child, session);
        Ok(())
    }

    /// Removes `pid`'s table; returns the open files it held the last references to.
    pub fn exit(&mut self, pid: Pid) -> Vec<OpenFile> {
        self.sessions.remove(&pid);
        let Some(table) = self.tables.remove(&pid) else {
            return Vec::new();
        };
        table
            .fds
            .iter()
            .flatten()
            .filter_map(|&id| self.release(id))
            .collect()
    }

    /// Every open file (tests: invariants).
    #[cfg(test)]
    pub fn files(&self) -> impl Iterator<Item = &OpenFile> {
        self.files.iter().flatten()
    }

    /// Checks that reference counts match the descriptor tables (tests).
    #[cfg(test)]
    pub fn check(&self) {
        let mut refs = alloc::vec![0u32; self.files.len()];
        for table in self.tables.values() {
            assert!(table.fds.len() <= OPEN_MAX);
            for &id in table.fds.iter().flatten() {
                assert!(self.files[id].is_some(), "descriptor to a closed file");
                refs[id] += 1;
            }
        }
        for (id, file) in self.files.iter().enumerate() {
            let want = file.as_ref().map_or(0, |file| file.refs);
            assert_eq!(refs[id], want, "references of open file {id}");
        }
        assert_eq!(self.open, self.files.iter().flatten().count());
        assert!(self.open <= NFILE);
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;

    const INIT: Pid = 1;

    fn open(d: &mut Descriptors, pid: Pid) -> Result<i32, Errno> {
        d.install(pid, OpenFile::new(Target::Node(2), O_RDONLY))
    }

    #[test]
    fn a_program_s_helpers_share_one_session_s_part_of_the_table() {
        let mut d = Descriptors::new();
        // Init starts a program (10), which spawns helpers (11, 12...) that each open
        // all they may: together they stop at the session's share.
        d.spawn(10, INIT, false).unwrap();
        let mut pid = 11;
        let mut opened = 0;
        let refusal = loop {
            d.spawn(pid, 10 + u32::from(pid % 2 == 0), false).unwrap();
            match (0..OPEN_MAX).try_for_each(|_| open(&mut d, pid).map(|_| opened += 1)) {
                Ok(()) => pid += 1,
                Err(errno) => break errno,
            }
        };
        assert_eq!(refusal, errno::ENFILE);
        assert_eq!(opened, SESSION_NFILE);
        assert_eq!(d.session_open_files(10), SESSION_NFILE);
        assert_eq!(open(&mut d, 10), Err(errno::ENFILE));
        // Another program still opens files, and the whole table has room left.
        d.spawn(50, INIT, false).unwrap();
        assert!(open(&mut d, 50).is_ok());
        assert!(d.open_files() < NFILE);
        // A helper's exit gives its files back to the session.
        let freed = d.exit(11).len();
        assert!(freed > 0);
        assert!(open(&mut d, 10).is_ok());
        d.check();
    }

    #[test]
    fn inherited_descriptors_stay_charged_to_who_opened_them() {
        let mut d = Descriptors::new();
        d.spawn(10, INIT, false).unwrap();
        open(&mut d, 10).unwrap();
        d.spawn(11, 10, true).unwrap();
        d.spawn(20, INIT, true).unwrap();
        assert_eq!(d.session_open_files(11), 1);
        assert_eq!(d.session_open_files(20), 0);
    }
}

#[cfg(test)]
mod open_file_tests {
    use super::*;
    use ankh_proto::vfs::{O_CREAT, O_RDWR, O_TRUNC};

    #[test]
    fn an_open_file_keeps_the_flags_that_matter_after_open() {
        let flags = O_RDWR | O_APPEND | O_SYNC | O_CREAT | O_TRUNC;
        let file = OpenFile::new(Target::Node(7), flags);
        assert!(file.readable() && file.writable() && file.append());
        assert!(file.sync_writes(), "O_SYNC must survive the open");
        assert_eq!(file.flags, O_RDWR | O_APPEND | O_SYNC);
        assert!(!OpenFile::new(Target::Node(7), O_RDWR).sync_writes());
    }
}
