//! File data: reading (runs of consecutive blocks in one device call, read-ahead for
//! sequential readers, the blocks of small files kept in the cache), writing (blocks
//! allocated contiguously where free, a bounded step at a time, short on `ENOSPC`),
//! and setting a file's length. Holes read as zeros.

use alloc::vec;
use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};

use crate::device::{BlockDevice, BLOCK_SIZE};
use crate::fs::{Ext2Fs, Ino};
use crate::inode::{Inode, Kind};
use crate::layout::{BLOCK_BYTES, JOURNAL_INO, MAX_FILE_SIZE};
use crate::runs::RUN_MAX_BLOCKS;

/// Data blocks one write step covers (see `fs::STEP_BUDGET`).
pub(crate) const WRITE_STEP_BLOCKS: u64 = 32;

/// Blocks read past the request when a file is read sequentially (128 KiB).
const READ_AHEAD_BLOCKS: u64 = 32;

/// Files up to this size keep the blocks a read fetched in the cache, so that reading
/// them again (a program started over and over) costs no device call. Larger files
/// stream past it: one read through them would evict everything else. Executables
/// travel in one message (1 MiB), so every program is a small file.
const CACHED_FILE_MAX: u64 = 1 << 20;

/// A run of consecutive disk blocks to read: `(first disk block, first logical
/// block, blocks)`.
type Run = (u64, u64, usize);

/// `usize` of a block offset or length (below [`BLOCK_SIZE`]).
fn small(value: u64) -> usize {
    usize::try_from(value).unwrap_or(BLOCK_SIZE)
}

impl Ext2Fs {
    /// A file's inode: `EISDIR` for a directory.
    fn file_inode(&mut self, dev: &mut dyn BlockDevice, ino: Ino) -> Result<(u32, Inode), Errno> {
        match self.live(dev, ino)? {
            (ino, inode, Kind::File) => Ok((ino, inode)),
            (_, _, Kind::Dir) => Err(errno::EISDIR),
        }
    }

    /// A file's length (`EISDIR` for a directory).
    pub fn len(&mut self, dev: &mut dyn BlockDevice, ino: Ino) -> Result<u64, Errno> {
        Ok(self.file_inode(dev, ino)?.1.size())
    }

    /// Reads up to `len` bytes of a file at `offset` (fewer at the end of the file).
    pub fn read(
        &mut self,
        dev: &mut dyn BlockDevice,
        ino: Ino,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        let (ino, inode) = self.file_inode(dev, ino)?;
        let size = inode.size();
        let available = size.saturating_sub(offset);
        let n = usize::try_from(available).map_or(len, |available| available.min(len));
        let mut out = vec![0; n];
        if n == 0 {
            return Ok(out);
        }
        let end = offset + n as u64;
        let first = offset / BLOCK_BYTES;
        let last = (end - 1) / BLOCK_BYTES;
        let sequential = offset == 0 || self.last_read == Some((ino, offset));
        let file_last = (size - 1) / BLOCK_BYTES;
        let ahead_last = if sequential {
            (last + READ_AHEAD_BLOCKS).min(file_last)
        } else {
            last
        };
        let keep = size <= CACHED_FILE_MAX;
        let mut run: Option<Run> = None;
        for lblk in first..=ahead_last {
            let ahead = lblk > last;
            let block = self.bmap(dev, &inode, lblk)?;
            if let Some(block) = block.filter(|&b| self.cache.peek(b).is_none()) {
                match run.as_mut() {
                    Some((start, l0, count))
                        if *start + *count as u64 == block
                            && *l0 + *count as u64 == lblk
                            && *count < RUN_MAX_BLOCKS =>
                    {
                        *count += 1;
                    }
                    _ => {
                        self.read_run(dev, run.take(), last, keep, offset, &mut out)?;
                        run = Some((block, lblk, 1));
                    }
                }
                continue;
            }
            // A hole or a cached block: read-ahead stops there.
            self.read_run(dev, run.take(), last, keep, offset, &mut out)?;
            if ahead {
                break;
            }
            if let Some(data) = block.and_then(|b| self.cache.peek(b)) {
                copy_block(lblk, data, offset, &mut out);
            }
        }
        self.read_run(dev, run, last, keep, offset, &mut out)?;
        self.last_read = Some((ino, end));
        Ok(out)
    }

    /// Reads a run in one device call: blocks up to logical block `last` go into
    /// `out` (which holds the bytes from `offset`), and into the cache too when
    /// `keep`; the rest (read-ahead) into the cache.
    fn read_run(
        &mut self,
        dev: &mut dyn BlockDevice,
        run: Option<Run>,
        last: u64,
        keep: bool,
        offset: u64,
        out: &mut [u8],
    ) -> Result<(), Errno> {
        let Some((block, lblk, count)) = run else {
            return Ok(());
        };
        let mut buf = vec![0; count * BLOCK_SIZE];
        dev.read_blocks(block, &mut buf)?;
        for (i, data) in buf.chunks_exact(BLOCK_SIZE).enumerate() {
            let l = lblk + i as u64;
            if l <= last {
                copy_block(l, data, offset, out);
            }
            if l > last || keep {
                self.cache.insert_clean(block + i as u64, data);
            }
        }
        Ok(())
    }

    /// Writes into a file at `offset`; returns the bytes written, fewer than asked
    /// when the disk fills up part way (`ENOSPC` when not one byte fits, or past the
    /// largest file; `EPERM` for the journal).
    pub fn write(
        &mut self,
        dev: &mut dyn BlockDevice,
        ino: Ino,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, Errno> {
        self.change(dev, |fs, dev| fs.write_inner(dev, ino, offset, data))
    }

    fn write_inner(
        &mut self,
        dev: &mut dyn BlockDevice,
        ino: Ino,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, Errno> {
        let (ino, _) = self.file_inode(dev, ino)?;
        if ino == JOURNAL_INO {
            return Err(errno::EPERM);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset.checked_add(data.len() as u64).ok_or(errno::EINVAL)?;
        if offset >= MAX_FILE_SIZE {
            return Err(errno::ENOSPC);
        }
        let end = end.min(MAX_FILE_SIZE);
        let mut at = offset;
        while at < end {
            let step_end = ((at / BLOCK_BYTES + WRITE_STEP_BLOCKS) * BLOCK_BYTES).min(end);
            let src = &data[small_len(at - offset)..small_len(step_end - offset)];
            let reached = self.write_step(dev, ino, at, src)?;
            at = reached;
            if at < step_end {
                break;
            }
            if at < end {
                self.checkpoint(dev)?;
            }
        }
        if at == offset {
            return Err(errno::ENOSPC);
        }
        Ok(small_len(at - offset))
    }

    /// Writes `src` at `at` (within one step); returns where it stopped (short of the
    /// end only when the disk is full).
    fn write_step(
        &mut self,
        dev: &mut dyn BlockDevice,
        ino: u32,
        at: u64,
        src: &[u8],
    ) -> Result<u64, Errno> {
        let mut inode = self.read_inode(dev, ino)?;
        let before = inode.clone();
        let mut pos = at;
        let end = at + src.len() as u64;
        let mut goal = match (at / BLOCK_BYTES).checked_sub(1) {
            Some(previous) => self
                .bmap(dev, &inode, previous)?
                .map_or(self.next_block, |b| b + 1),
            None => self.next_block,
        };
        let mut failure = None;
        while pos < end {
            let lblk = pos / BLOCK_BYTES;
            let within = small(pos % BLOCK_BYTES);
            let n = (BLOCK_SIZE - within).min(small_len(end - pos));
            let (block, new) = match self.bmap_alloc(dev, &mut inode, lblk, goal) {
                Ok(found) => found,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            let bytes = &src[small_len(pos - at)..small_len(pos - at) + n];
            if n == BLOCK_SIZE {
                self.cache.overwrite(block, bytes);
            } else {
                let data = if new {
                    self.cache.zeroed(block)
                } else {
                    self.cache.write(dev, block)?
                };
                data[within..within + n].copy_from_slice(bytes);
            }
            pos += n as u64;
            goal = block + 1;
        }
        if pos > inode.size() {
            inode.set_size(pos);
        }
        // Overwriting a file in place changes no inode field (there is no clock for
        // times): leave its block clean, not rewritten at every write.
        if inode != before {
            self.write_inode(dev, ino, &inode)?;
        }
        match failure {
            None | Some(errno::ENOSPC) => Ok(pos),
            Some(e) => Err(e),
        }
    }

    /// Sets a file's length: shrinks (freeing blocks) or grows with a hole (`EISDIR`
    /// for a directory, `ENOSPC` past the largest file, `EPERM` for the journal).
    pub fn truncate(&mut self, dev: &mut dyn BlockDevice, ino: Ino, len: u64) -> Result<(), Errno> {
        self.change(dev, |fs, dev| {
            let (ino, _) = fs.file_inode(dev, ino)?;
            if ino == JOURNAL_INO {
                return Err(errno::EPERM);
            }
            if len > MAX_FILE_SIZE {
                return Err(errno::ENOSPC);
            }
            fs.set_len(dev, ino, len)
        })
    }

    /// Sets a file's length, freeing a bounded step of blocks at a time with a
    /// checkpoint between steps (each step leaves a shorter, consistent file).
    pub(crate) fn set_len(
        &mut self,
        dev: &mut dyn BlockDevice,
        ino: u32,
        len: u64,
    ) -> Result<(), Errno> {
        let keep = len.div_ceil(BLOCK_BYTES);
        loop {
            let mut inode = self.read_inode(dev, ino)?;
            let old = inode.size();
            if len >= old {
                inode.set_size(len);
                return self.write_inode(dev, ino, &inode);
            }
            let step = crate::blockmap::FREE_STEP_BLOCKS;
            if let Some(low) = self.free_tail(dev, &mut inode, keep, step)? {
                inode.set_size(old.min(low * BLOCK_BYTES));
                self.write_inode(dev, ino, &inode)?;
                self.checkpoint(dev)?;
                continue;
            }
            // Bytes past the end of the last block must read as zeros if the file
            // grows again.
            let within = small(len % BLOCK_BYTES);
            if within != 0 {
                if let Some(block) = self.bmap(dev, &inode, len / BLOCK_BYTES)? {
                    self.cache.write(dev, block)?[within..].fill(0);
                }
            }
            inode.set_size(len);
            return self.write_inode(dev, ino, &inode);
        }
    }
}

/// `usize` of a length within one request (it came from a slice).
fn small_len(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// Copies the part of logical block `lblk` (contents `data`) that falls in `out`, which
/// holds the file's bytes from `offset`.
fn copy_block(lblk: u64, data: &[u8], offset: u64, out: &mut [u8]) {
    let block_start = lblk * BLOCK_BYTES;
    let from = block_start.max(offset);
    let to = (block_start + BLOCK_BYTES).min(offset + out.len() as u64);
    if from >= to {
        return;
    }
    let src = small(from - block_start);
    let dst = small_len(from - offset);
    let n = small_len(to - from);
    out[dst..dst + n].copy_from_slice(&data[src..src + n]);
}
