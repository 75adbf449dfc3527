//! Where file data lives: a [`Storage`] keeps the bytes of each file inode, addressed
//! by inode number and offset, so that a block-device implementation can replace the
//! in-memory one ([`MemStorage`]) without touching the tree or the descriptors.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};

/// An inode number.
pub type Ino = u64;

/// The default data budget of [`MemStorage`]: 32 MiB.
pub const DEFAULT_DATA_BUDGET: u64 = 32 << 20;

/// The data of file inodes. Offsets past the end read as nothing; writes past the end
/// fill the gap with zeros. Every method answers `ENOENT` for an inode it does not
/// hold.
pub trait Storage {
    /// Gives a new inode empty data (`EEXIST` if it already has some).
    fn create(&mut self, ino: Ino) -> Result<(), Errno>;

    /// Frees an inode's data (nothing if it has none).
    fn remove(&mut self, ino: Ino);

    /// The length of an inode's data.
    fn len(&self, ino: Ino) -> Result<u64, Errno>;

    /// Reads from `offset` into `buf`; returns the bytes read (0 at or past the end).
    fn read_at(&mut self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;

    /// Writes `data` at `offset`, growing the inode as needed; returns the bytes
    /// written, which is fewer than asked when the space runs out part way (`ENOSPC`
    /// when not even one byte fits).
    fn write_at(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, Errno>;

    /// Sets an inode's length: shrinks, or grows with zeros (`ENOSPC` when it does not
    /// fit).
    fn truncate(&mut self, ino: Ino, len: u64) -> Result<(), Errno>;

    /// Bytes in use by all inodes.
    fn used(&self) -> u64;

    /// Bytes all inodes may use together.
    fn capacity(&self) -> u64;
}

/// File data in memory, within a budget of bytes for all files together.
#[derive(Clone, Debug)]
pub struct MemStorage {
    files: BTreeMap<Ino, Vec<u8>>,
    used: u64,
    budget: u64,
}

impl MemStorage {
    /// Empty storage that holds at most `budget` bytes of file data.
    pub fn new(budget: u64) -> MemStorage {
        MemStorage {
            files: BTreeMap::new(),
            used: 0,
            budget,
        }
    }

    /// The budget in bytes.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Grows `ino`'s accounting from `old` to `new` bytes; `ENOSPC` over budget.
    fn charge(&mut self, old: u64, new: u64) -> Result<(), Errno> {
        let used = self.used - old.min(self.used);
        let total = used.checked_add(new).ok_or(errno::ENOSPC)?;
        if total > self.budget {
            return Err(errno::ENOSPC);
        }
        self.used = total;
        Ok(())
    }
}

impl Default for MemStorage {
    fn default() -> MemStorage {
        MemStorage::new(DEFAULT_DATA_BUDGET)
    }
}

/// `value` as a `usize` (`ENOSPC`: nothing that large fits in memory).
fn to_usize(value: u64) -> Result<usize, Errno> {
    usize::try_from(value).map_err(|_| errno::ENOSPC)
}

/// `value` as a `u64` (lengths of memory always fit).
fn to_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

impl Storage for MemStorage {
    fn create(&mut self, ino: Ino) -> Result<(), Errno> {
        if self.files.contains_key(&ino) {
            return Err(errno::EEXIST);
        }
        self.files.insert(ino, Vec::new());
        Ok(())
    }

    fn remove(&mut self, ino: Ino) {
        if let Some(data) = self.files.remove(&ino) {
            self.used = self.used.saturating_sub(to_u64(data.len()));
        }
    }

    fn len(&self, ino: Ino) -> Result<u64, Errno> {
        self.files
            .get(&ino)
            .map(|data| to_u64(data.len()))
            .ok_or(errno::ENOENT)
    }

    fn read_at(&mut self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let data = self.files.get(&ino).ok_or(errno::ENOENT)?;
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let Some(available) = data.get(start..) else {
            return Ok(0);
        };
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        Ok(n)
    }

    fn write_at(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let old_len = self.len(ino)?;
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset
            .checked_add(to_u64(data.len()))
            .ok_or(errno::EINVAL)?;
        // Growth is charged to the budget: write only what fits (POSIX short write).
        let room = self.budget.saturating_sub(self.used);
        let new_end = end.min(old_len.max(old_len.saturating_add(room)));
        if new_end <= offset {
            return Err(errno::ENOSPC);
        }
        let new_len = old_len.max(new_end);
        self.charge(old_len, new_len)?;
        let file = self.files.get_mut(&ino).ok_or(errno::ENOENT)?;
        let (start, stop) = (to_usize(offset)?, to_usize(new_end)?);
        if file.len() < stop {
            file.resize(stop, 0);
        }
        let n = stop - start;
        file[start..stop].copy_from_slice(&data[..n]);
        Ok(n)
    }

    fn truncate(&mut self, ino: Ino, len: u64) -> Result<(), Errno> {
        let old_len = self.len(ino)?;
        let new_len = to_usize(len)?;
        self.charge(old_len, len)?;
        if let Some(file) = self.files.get_mut(&ino) {
            file.resize(new_len, 0);
            if len < old_len {
                file.shrink_to_fit();
            }
        }
        Ok(())
    }

    fn used(&self) -> u64 {
        self.used
    }

    fn capacity(&self) -> u64 {
        self.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(storage: &mut MemStorage, ino: Ino) -> Vec<u8> {
        let mut buf = alloc::vec![0; 64];
        let n = storage.read_at(ino, 0, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn writes_grow_with_zeros_and_reads_stop_at_the_end() {
        let mut s = MemStorage::new(100);
        s.create(7).unwrap();
        assert_eq!(s.create(7), Err(errno::EEXIST));
        assert_eq!(s.write_at(7, 3, b"ab").unwrap(), 2);
        assert_eq!(read_all(&mut s, 7), b"\0\0\0ab");
        assert_eq!(s.len(7).unwrap(), 5);
        assert_eq!(s.used(), 5);
        let mut buf = [0; 4];
        assert_eq!(s.read_at(7, 5, &mut buf).unwrap(), 0);
        assert_eq!(s.read_at(7, u64::MAX, &mut buf).unwrap(), 0);
        assert_eq!(s.read_at(8, 0, &mut buf), Err(errno::ENOENT));
    }

    #[test]
    fn the_budget_gives_short_writes_then_enospc() {
        let mut s = MemStorage::new(10);
        s.create(1).unwrap();
        s.create(2).unwrap();
        assert_eq!(s.write_at(1, 0, b"0123456").unwrap(), 7);
        assert_eq!(s.write_at(2, 0, b"abcdef").unwrap(), 3);
        assert_eq!(s.write_at(2, 3, b"x"), Err(errno::ENOSPC));
        // Overwriting inside a file costs nothing.
        assert_eq!(s.write_at(1, 0, b"zz").unwrap(), 2);
        assert_eq!(s.truncate(1, 9), Err(errno::ENOSPC));
        s.truncate(1, 2).unwrap();
        assert_eq!(s.used(), 5);
        s.remove(2);
        assert_eq!(s.used(), 2);
        assert_eq!(s.write_at(1, u64::MAX, b"x"), Err(errno::EINVAL));
        assert_eq!(s.write_at(1, 1 << 40, b"x"), Err(errno::ENOSPC));
    }

    #[test]
    fn truncate_shrinks_and_grows() {
        let mut s = MemStorage::default();
        s.create(1).unwrap();
        s.write_at(1, 0, b"hello").unwrap();
        s.truncate(1, 2).unwrap();
        assert_eq!(read_all(&mut s, 1), b"he");
        s.truncate(1, 4).unwrap();
        assert_eq!(read_all(&mut s, 1), b"he\0\0");
        assert_eq!(s.budget(), DEFAULT_DATA_BUDGET);
    }
}
