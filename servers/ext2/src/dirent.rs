//! Directory entries inside one directory block: walking them (every length checked,
//! so a corrupt block gives `EIO`, never a loop or an out-of-bounds slice), and
//! adding, removing and repointing one.
//!
//! An entry is `inode: u32, rec_len: u16, name_len: u8, file_type: u8, name`, padded
//! to 4 bytes; the `rec_len`s of a block's entries add up to the block. A removed
//! entry is merged into the one before it, or marked unused (inode 0) when it is the
//! first of its block.

use ankh_proto::errno::{self, Errno};

/// Bytes of an entry before its name.
const HEADER: usize = 8;

/// The smallest `rec_len` ext2 accepts.
const MIN_REC_LEN: usize = 12;

/// One entry of a directory block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Byte offset in the block.
    pub offset: usize,
    /// The entry's length, up to the next entry.
    pub rec_len: usize,
    /// The inode it names (0: unused).
    pub ino: u32,
    /// The file type recorded in the entry.
    pub file_type: u8,
    /// The name.
    pub name: &'a [u8],
}

impl Entry<'_> {
    /// Bytes the entry really needs (0 for an unused entry).
    fn used(&self) -> usize {
        if self.ino == 0 {
            0
        } else {
            entry_len(self.name.len())
        }
    }
}

/// The `rec_len` an entry with a name of `name_len` bytes needs.
pub fn entry_len(name_len: usize) -> usize {
    (HEADER + name_len).next_multiple_of(4)
}

/// Iterates the entries of a block; the first malformed one yields `EIO` and ends it.
pub struct Entries<'a> {
    block: &'a [u8],
    offset: usize,
    failed: bool,
}

/// The entries of a directory block.
pub fn entries(block: &[u8]) -> Entries<'_> {
    Entries {
        block,
        offset: 0,
        failed: false,
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, Errno>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.block.len() {
            return None;
        }
        let entry = parse(self.block, self.offset);
        match entry {
            Ok(entry) => self.offset += entry.rec_len,
            Err(_) => self.failed = true,
        }
        Some(entry)
    }
}

/// The entry at `offset`, checked: its length is a multiple of 4, at least
/// [`MIN_REC_LEN`], inside the block, and holds its name.
fn parse(block: &[u8], offset: usize) -> Result<Entry<'_>, Errno> {
    let header = block
        .get(offset..offset.checked_add(HEADER).ok_or(errno::EIO)?)
        .ok_or(errno::EIO)?;
    let ino = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let rec_len = usize::from(u16::from_le_bytes([header[4], header[5]]));
    let name_len = usize::from(header[6]);
    let file_type = header[7];
    let end = offset + rec_len;
    if rec_len < MIN_REC_LEN || rec_len % 4 != 0 || end > block.len() {
        return Err(errno::EIO);
    }
    let name = if ino == 0 {
        &[][..]
    } else {
        if name_len == 0 || entry_len(name_len) > rec_len {
            return Err(errno::EIO);
        }
        &block[offset + HEADER..offset + HEADER + name_len]
    };
    Ok(Entry {
        offset,
        rec_len,
        ino,
        file_type,
        name,
    })
}

/// The used entry named `name`, if any.
pub fn find<'a>(block: &'a [u8], name: &[u8]) -> Result<Option<Entry<'a>>, Errno> {
    for entry in entries(block) {
        let entry = entry?;
        if entry.ino != 0 && entry.name == name {
            return Ok(Some(entry));
        }
    }
    Ok(None)
}

/// Writes an entry's header and name at `offset` (the caller checked it fits).
fn write_entry(
    block: &mut [u8],
    offset: usize,
    rec_len: usize,
    ino: u32,
    name: &[u8],
    file_type: u8,
) {
    let rec_len = u16::try_from(rec_len).unwrap_or(u16::MAX);
    let name_len = u8::try_from(name.len()).unwrap_or(u8::MAX);
    block[offset..offset + 4].copy_from_slice(&ino.to_le_bytes());
    block[offset + 4..offset + 6].copy_from_slice(&rec_len.to_le_bytes());
    block[offset + 6] = name_len;
    block[offset + 7] = file_type;
    let name = &name[..usize::from(name_len)];
    block[offset + HEADER..offset + HEADER + name.len()].copy_from_slice(name);
}

/// Fills a block with one unused entry spanning it (an empty directory block).
pub fn init_empty(block: &mut [u8]) {
    block.fill(0);
    write_entry(block, 0, block.len(), 0, &[], 0);
}

/// Fills the first block of a new directory: `.` (exactly 12 bytes long, as e2fsck
/// wants) and `..` spanning the rest.
pub fn init_dir(block: &mut [u8], ino: u32, parent: u32) {
    block.fill(0);
    let dir = crate::inode::Kind::Dir.file_type();
    write_entry(block, 0, MIN_REC_LEN, ino, b".", dir);
    write_entry(
        block,
        MIN_REC_LEN,
        block.len() - MIN_REC_LEN,
        parent,
        b"..",
        dir,
    );
}

/// True when an entry for a name of `name_len` bytes fits in the block.
pub fn has_room(block: &[u8], name_len: usize) -> Result<bool, Errno> {
    Ok(find_room(block, name_len)?.is_some())
}

/// The first entry with room for a new entry of `name_len` bytes after its own.
fn find_room(block: &[u8], name_len: usize) -> Result<Option<Entry<'_>>, Errno> {
    let needed = entry_len(name_len);
    for entry in entries(block) {
        let entry = entry?;
        if entry.rec_len - entry.used() >= needed {
            return Ok(Some(entry));
        }
    }
    Ok(None)
}

/// Adds an entry; false when the block has no room for it.
pub fn insert(block: &mut [u8], name: &[u8], ino: u32, file_type: u8) -> Result<bool, Errno> {
    let Some(slot) = find_room(block, name.len())? else {
        return Ok(false);
    };
    let (offset, rec_len, used) = (slot.offset, slot.rec_len, slot.used());
    if used == 0 {
        write_entry(block, offset, rec_len, ino, name, file_type);
    } else {
        block[offset + 4..offset + 6]
            .copy_from_slice(&u16::try_from(used).unwrap_or(0).to_le_bytes());
        write_entry(block, offset + used, rec_len - used, ino, name, file_type);
    }
    Ok(true)
}

/// Removes the entry named `name`; returns the inode it named.
pub fn remove(block: &mut [u8], name: &[u8]) -> Result<Option<u32>, Errno> {
    let mut previous: Option<Entry<'_>> = None;
    let mut found = None;
    for entry in entries(block) {
        let entry = entry?;
        if entry.ino != 0 && entry.name == name {
            found = Some((
                previous.map(|p| (p.offset, p.rec_len)),
                entry.offset,
                entry.rec_len,
                entry.ino,
            ));
            break;
        }
        previous = Some(entry);
    }
    let Some((previous, offset, rec_len, ino)) = found else {
        return Ok(None);
    };
    match previous {
        Some((prev_offset, prev_len)) => {
            let merged = u16::try_from(prev_len + rec_len).map_err(|_| errno::EIO)?;
            block[prev_offset + 4..prev_offset + 6].copy_from_slice(&merged.to_le_bytes());
        }
        None => write_entry(block, offset, rec_len, 0, &[], 0),
    }
    Ok(Some(ino))
}

/// Points the entry named `name` at another inode; false when there is none.
pub fn repoint(block: &mut [u8], name: &[u8], ino: u32, file_type: u8) -> Result<bool, Errno> {
    let Some(entry) = find(block, name)? else {
        return Ok(false);
    };
    let offset = entry.offset;
    block[offset..offset + 4].copy_from_slice(&ino.to_le_bytes());
    block[offset + 7] = file_type;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn names(block: &[u8]) -> Vec<Vec<u8>> {
        entries(block)
            .map(|e| e.unwrap())
            .filter(|e| e.ino != 0)
            .map(|e| e.name.to_vec())
            .collect()
    }

    #[test]
    fn insert_find_remove() {
        let mut block = vec![0; 4096];
        init_dir(&mut block, 5, 2);
        assert!(insert(&mut block, b"hello", 9, 1).unwrap());
        assert!(insert(&mut block, b"world", 10, 2).unwrap());
        assert_eq!(names(&block), [&b"."[..], b"..", b"hello", b"world"]);
        assert_eq!(find(&block, b"hello").unwrap().unwrap().ino, 9);
        assert_eq!(remove(&mut block, b"hello").unwrap(), Some(9));
        assert_eq!(remove(&mut block, b"hello").unwrap(), None);
        assert_eq!(names(&block), [&b"."[..], b"..", b"world"]);
        assert!(repoint(&mut block, b"world", 11, 1).unwrap());
        assert_eq!(find(&block, b"world").unwrap().unwrap().ino, 11);
        // The `.` entry stays 12 bytes long.
        assert_eq!(entries(&block).next().unwrap().unwrap().rec_len, 12);
    }

    #[test]
    fn a_block_fills_up_and_its_first_entry_can_be_unused() {
        let mut block = vec![0; 4096];
        init_empty(&mut block);
        let name = [b'x'; 60];
        let mut n = 0u32;
        while insert(&mut block, &name, 20 + n, 1).unwrap() {
            n += 1;
        }
        assert_eq!(n, 4096 / 68);
        assert!(!has_room(&block, 60).unwrap());
        assert_eq!(remove(&mut block, &name).unwrap(), Some(20));
        assert!(has_room(&block, 60).unwrap());
        assert!(insert(&mut block, b"y", 99, 1).unwrap());
        assert_eq!(find(&block, b"y").unwrap().unwrap().offset, 0);
    }

    #[test]
    fn malformed_blocks_are_errors() {
        let mut block = vec![0; 4096];
        assert_eq!(entries(&block).next(), Some(Err(errno::EIO)));
        init_empty(&mut block);
        block[4] = 13;
        assert_eq!(entries(&block).next(), Some(Err(errno::EIO)));
        init_dir(&mut block, 5, 2);
        block[6] = 200; // `.` claims a name longer than its entry
        assert!(find(&block, b"x").is_err());
        init_dir(&mut block, 5, 2);
        block[12 + 4..12 + 6].copy_from_slice(&5000u16.to_le_bytes());
        assert_eq!(find(&block, b"x"), Err(errno::EIO));
    }
}
