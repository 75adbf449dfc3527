//! Each session's share of the file system: how much the processes of one *session*
//! (a program init started and every process it spawned, see [`fd`]) may make it
//! grow, together, while the session lives, in bytes of storage and in inodes.
//! Without it one program, or its helpers, could fill the disk (with data, or with
//! empty files that each take an inode), and every other program's writes and creates
//! would fail with `ENOSPC`.
//!
//! A session is charged what each of its requests changed the space in use by
//! (blocks allocated, directories and indirect blocks included, less blocks freed;
//! inodes made, less inodes freed), never below zero. Its share is the file system's
//! capacity, in each unit, divided by [`SESSION_SPACE_DIVISOR`]. Once a session has
//! used its share of bytes, a request that would grow the data is refused with
//! `ENOSPC`, and a write is cut short to the bytes left (POSIX allows a short write);
//! once it has used its share of inodes, so is a request that would make a file or a
//! directory. A session ends at most the metadata of one request past its share. When
//! the last process of a session ends, the session is forgotten: its files stay,
//! charged to nobody.
//!
//! [`fd`]: crate::fd

use alloc::collections::BTreeMap;

use ankh_proto::vfs::SESSION_SPACE_DIVISOR;
use ankh_proto::Pid;

/// An amount of file-system space: bytes of storage and inodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Space {
    /// Bytes of storage (whole blocks on a disk).
    pub bytes: u64,
    /// Inodes (files and directories).
    pub inodes: u64,
}

impl Space {
    /// `bytes` bytes and `inodes` inodes.
    pub fn new(bytes: u64, inodes: usize) -> Space {
        Space {
            bytes,
            inodes: u64::try_from(inodes).unwrap_or(u64::MAX),
        }
    }

    fn is_zero(self) -> bool {
        self == Space::default()
    }
}

/// The space each live session has grown the file system by (only sessions that
/// grew it: at most one entry per live session).
#[derive(Clone, Debug, Default)]
pub struct SpaceShares {
    used: BTreeMap<Pid, Space>,
}

impl SpaceShares {
    /// No session has used any space.
    pub fn new() -> SpaceShares {
        SpaceShares::default()
    }

    /// What one session may grow a file system of `capacity` by.
    pub fn share(capacity: Space) -> Space {
        Space {
            bytes: capacity.bytes / SESSION_SPACE_DIVISOR,
            inodes: capacity.inodes / SESSION_SPACE_DIVISOR,
        }
    }

    /// What `session` has grown the file system by.
    pub fn used_by(&self, session: Pid) -> Space {
        self.used.get(&session).copied().unwrap_or_default()
    }

    /// What `session` may still grow a file system of `capacity` by.
    pub fn left(&self, session: Pid, capacity: Space) -> Space {
        let (share, used) = (Self::share(capacity), self.used_by(session));
        Space {
            bytes: share.bytes.saturating_sub(used.bytes),
            inodes: share.inodes.saturating_sub(used.inodes),
        }
    }

    /// A request of `session` took the space in use from `before` to `after`.
    pub fn record(&mut self, session: Pid, before: Space, after: Space) {
        if before == after {
            return;
        }
        let used = self.used.entry(session).or_default();
        let apply = |used: u64, before: u64, after: u64| match after >= before {
            true => used.saturating_add(after - before),
            false => used.saturating_sub(before - after),
        };
        used.bytes = apply(used.bytes, before.bytes, after.bytes);
        used.inodes = apply(used.inodes, before.inodes, after.inodes);
        if used.is_zero() {
            self.used.remove(&session);
        }
    }

    /// The last process of `session` ended.
    pub fn forget(&mut self, session: Pid) {
        self.used.remove(&session);
    }

    /// Sessions charged for some space.
    pub fn sessions(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(bytes: u64) -> Space {
        Space::new(bytes, 0)
    }

    #[test]
    fn a_session_is_charged_growth_credited_frees_and_never_below_zero() {
        let mut s = SpaceShares::new();
        let capacity = Space::new(10_000, 10);
        s.record(7, Space::new(100, 1), Space::new(4196, 3));
        assert_eq!(s.used_by(7), Space::new(4096, 2));
        assert_eq!(s.left(7, capacity), Space::new(5000 - 4096, 3));
        s.record(7, bytes(4196), bytes(196));
        assert_eq!((s.used_by(7), s.sessions()), (Space::new(96, 2), 1));
        // Freeing what others made does not make a session's usage negative.
        s.record(7, Space::new(10_000, 9), Space::new(0, 0));
        assert_eq!((s.used_by(7), s.sessions()), (Space::default(), 0));
        assert_eq!(s.left(7, capacity), Space::new(5000, 5));
    }

    #[test]
    fn sessions_are_charged_apart_and_forgotten_at_their_end() {
        let mut s = SpaceShares::new();
        let capacity = Space::new(10_000, 10);
        s.record(1, bytes(0), bytes(6000));
        s.record(2, bytes(6000), bytes(7000));
        assert_eq!(s.left(1, capacity).bytes, 0);
        assert_eq!(s.left(2, capacity).bytes, 4000);
        s.forget(1);
        assert_eq!((s.used_by(1), s.sessions()), (Space::default(), 1));
    }
}
