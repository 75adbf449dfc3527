//! Each session's share of the file system's space: how much the processes of one
//! *session* (a program init started and every process it spawned, see [`fd`]) may
//! make the file system grow, together, while the session lives. Without it one
//! program, or its helpers, could fill the disk, and every other program's writes
//! would fail with `ENOSPC`.
//!
//! A session is charged what each of its requests changed the space in use by
//! (blocks allocated, directories and indirect blocks included, less blocks freed),
//! never below zero. Its share is the file system's capacity divided by
//! [`SESSION_SPACE_DIVISOR`]. Once a session has used its share, a request that would
//! grow the file system is refused with `ENOSPC`, and a write is cut short to the
//! bytes left (POSIX allows a short write), so a session ends at most the metadata of
//! one request past its share. When the last process of a session ends, the session
//! is forgotten: its files stay, charged to nobody.
//!
//! [`fd`]: crate::fd

use alloc::collections::BTreeMap;

use ankh_proto::vfs::SESSION_SPACE_DIVISOR;
use ankh_proto::Pid;

/// The space each live session has grown the file system by (only sessions that
/// grew it: at most one entry per live session).
#[derive(Clone, Debug, Default)]
pub struct SpaceShares {
    used: BTreeMap<Pid, u64>,
}

impl SpaceShares {
    /// No session has used any space.
    pub fn new() -> SpaceShares {
        SpaceShares::default()
    }

    /// The bytes one session may grow a file system of `capacity` bytes by.
    pub fn share(capacity: u64) -> u64 {
        capacity / SESSION_SPACE_DIVISOR
    }

    /// The bytes `session` has grown the file system by.
    pub fn used_by(&self, session: Pid) -> u64 {
        self.used.get(&session).copied().unwrap_or(0)
    }

    /// The bytes `session` may still grow a file system of `capacity` bytes by.
    pub fn left(&self, session: Pid, capacity: u64) -> u64 {
        Self::share(capacity).saturating_sub(self.used_by(session))
    }

    /// A request of `session` took the space in use from `before` to `after` bytes.
    pub fn record(&mut self, session: Pid, before: u64, after: u64) {
        if after > before {
            *self.used.entry(session).or_insert(0) += after - before;
        } else if let Some(used) = self.used.get_mut(&session) {
            *used = used.saturating_sub(before - after);
            if *used == 0 {
                self.used.remove(&session);
            }
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

    #[test]
    fn a_session_is_charged_growth_credited_frees_and_never_below_zero() {
        let mut s = SpaceShares::new();
        s.record(7, 100, 4196);
        assert_eq!(s.used_by(7), 4096);
        assert_eq!(s.left(7, 10_000), 5000 - 4096);
        s.record(7, 4196, 196);
        assert_eq!((s.used_by(7), s.sessions()), (96, 1));
        // Freeing what others wrote does not make a session's usage negative.
        s.record(7, 10_000, 0);
        assert_eq!((s.used_by(7), s.sessions()), (0, 0));
        assert_eq!(s.left(7, 10_000), 5000);
    }

    #[test]
    fn sessions_are_charged_apart_and_forgotten_at_their_end() {
        let mut s = SpaceShares::new();
        s.record(1, 0, 6000);
        s.record(2, 6000, 7000);
        assert_eq!((s.left(1, 10_000), s.left(2, 10_000)), (0, 4000));
        s.forget(1);
        assert_eq!((s.used_by(1), s.sessions()), (0, 1));
    }
}
